#!/usr/bin/env python3
"""How much each speed measure in Bottle2neck buys, measured side by side (for docs/benchmark_notes.md).

    python scripts/res2_variants.py [--cfg models_yaml/yolov5s-res2.yaml] [--img 640] [--runs 15] [--threads 2]

Every variant computes the same values as extensions.blocks.Bottle2neck (checked before timing); only how
the forward is written differs. Each is timed in pairs alternating with plain YOLOv5 of the same scale (fused,
batch 1), as scripts/benchmark.py does, and the median of the per-pair ratios is printed:

* ``current``: the block as shipped (conv1 output split into views; in-place adds at inference; ONNX export
  writes conv1 as one Conv per split, so the graph has no Split node);
* ``no-inplace``: ``y_{i-1} + x_i`` out of place;
* ``naive``: the straightforward transcription (``torch.split`` + ``.contiguous()`` per split, out-of-place
  adds, and a Split node in the ONNX graph).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'scripts'))
import benchmark as bm  # noqa: E402  (puts yolov5/ and the overlay on sys.path)


def _chain(self, x, xs):
    """The rest of Bottle2neck.forward from the splits xs, with out-of-place adds."""
    import torch  # noqa: PLC0415
    ys, y = [], None
    for i, conv in enumerate(self.convs):
        y = conv(xs[i] if (i == 0 or self.stage) else y + xs[i])
        ys.append(y)
    ys.append(self.pool(xs[-1]))
    y = self.conv3(torch.cat(ys, 1))
    return self.act(y + self.shortcut(x)) if self.residual else y


def naive_forward(self, x):
    return _chain(self, x, [t.contiguous() for t in self.conv1(x).split(self.width, 1)])


def no_inplace_forward(self, x):
    return _chain(self, x, self.conv1(x).split(self.width, 1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--cfg', default=str(ROOT / 'models_yaml' / 'yolov5s-res2.yaml'))
    ap.add_argument('--img', type=int, default=640)
    ap.add_argument('--runs', type=int, default=15)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    opt = ap.parse_args(argv)

    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from extensions.blocks import Bottle2neck  # noqa: PLC0415
    torch.set_num_threads(opt.threads)
    cfg = Path(opt.cfg).resolve()
    scale = bm.entry_for(cfg).scale
    plain = bm.fused(bm.build(str(ROOT / 'yolov5' / 'models' / f'yolov5{scale}.yaml')))
    ext = bm.fused(bm.build(str(cfg)))
    x = torch.rand(1, 3, opt.img, opt.img)
    timer = bm.Timer(torch.device('cpu'))
    shipped = Bottle2neck.forward
    variants = {'current': shipped, 'no-inplace': no_inplace_forward, 'naive': naive_forward}
    with torch.inference_mode():
        ref = ext(x)[0]
    tmp = Path(tempfile.mkdtemp(prefix='res2_variants_'))
    print(f'{cfg.name} vs yolov5{scale}, img {opt.img}, {opt.threads} threads, {opt.runs} pairs, '
          f'load average {bm.loadavg()}')
    print(f'{"variant":<12}{"PyTorch x":>10}{"IQR":>14}{"ORT x":>8}{"IQR":>14}')
    f_plain = bm.export_onnx(plain, opt.img, tmp / 'plain.onnx', torch.device('cpu'), False)
    s_plain = bm.ort_session(f_plain, opt.threads, False)
    xn = x.numpy()
    try:
        for name, fwd in variants.items():
            Bottle2neck.forward = fwd
            with torch.inference_mode():
                out = ext(x)[0]
            assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4), f'{name}: output differs from the block'
            tp, te, _ = bm.alternate(bm.torch_runner(plain, x), bm.torch_runner(ext, x), opt.runs, opt.warmup,
                                     timer, lambda: None)
            pt = bm.ratio_stats([b / a for a, b in zip(tp, te)])
            f = bm.export_onnx(ext, opt.img, tmp / f'{name}.onnx', torch.device('cpu'), False)
            s = bm.ort_session(f, opt.threads, False)
            o = s.run(None, {s.get_inputs()[0].name: xn})[0]
            assert np.allclose(o, ref.numpy(), rtol=1e-3, atol=1e-3), f'{name}: ONNX output differs'
            tp, te, _ = bm.alternate(bm.ort_runner(s_plain, xn), bm.ort_runner(s, xn), opt.runs, opt.warmup,
                                     timer, lambda: None)
            ort = bm.ratio_stats([b / a for a, b in zip(tp, te)])
            print(f'{name:<12}{pt["median"]:>10.3f}{pt["p25"]:>8.3f}-{pt["p75"]:.3f}'
                  f'{ort["median"]:>8.3f}{ort["p25"]:>8.3f}-{ort["p75"]:.3f}', flush=True)
    finally:
        Bottle2neck.forward = shipped
    print(f'load average at the end {bm.loadavg()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
