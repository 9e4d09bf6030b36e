#!/usr/bin/env python3
"""How much each speed measure in Bottle2neck buys, measured side by side (for docs/benchmark_notes.md).

    python scripts/dev/res2_variants.py [--cfg models_yaml/yolov5s-res2.yaml] [--img 640] [--runs 15] [--threads 2]

Every variant computes the same values as extensions.res2net.Bottle2neck (checked before timing); only how
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

from _bootstrap import ROOT  # this checkout first on sys.path (scripts/_bootstrap.py)

import numpy as np
import torch

from extensions.benchmark.build import build, fused
from extensions.benchmark.models import entry_for, plain_entry
from extensions.benchmark.stats import ratio_stats
from extensions.benchmark.timing import (
    Timer,
    alternate,
    export_onnx,
    ort_runner,
    ort_session,
    torch_runner,
)
from extensions.machine import loadavg
from extensions.res2net import Bottle2neck

CPU = torch.device('cpu')


def _chain(self, x, xs):
    """The rest of Bottle2neck.forward from the splits xs, with out-of-place adds."""
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


def pair_ratios(fa, fb, opt) -> dict:
    """Median and IQR of per-pair latency ratios b / a, pairs alternating a and b."""
    ta, tb, _ = alternate(fa, fb, opt.runs, opt.warmup, Timer(CPU), lambda: None)
    return ratio_stats([b / a for a, b in zip(ta, tb)])


def time_variant(name: str, plain, ext, s_plain, x, ref, opt, tmp: Path) -> tuple[dict, dict]:
    """(PyTorch, onnxruntime) ratio stats of ext against plain with the current forward, after checking its
    outputs against the shipped block's."""
    with torch.inference_mode():
        out = ext(x)[0]
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4), f'{name}: output differs from the block'
    pt = pair_ratios(torch_runner(plain, x), torch_runner(ext, x), opt)
    s = ort_session(export_onnx(ext, opt.img, tmp / f'{name}.onnx', CPU, False), opt.threads, False)
    xn = x.numpy()
    o = s.run(None, {s.get_inputs()[0].name: xn})[0]
    assert np.allclose(o, ref.numpy(), rtol=1e-3, atol=1e-3), f'{name}: ONNX output differs'
    return pt, pair_ratios(ort_runner(s_plain, xn), ort_runner(s, xn), opt)


def variants_table(variants: dict, plain, ext, x, ref, opt, tmp: Path) -> None:
    """One printed row per variant of Bottle2neck.forward; the shipped forward is restored afterwards."""
    shipped = Bottle2neck.forward
    s_plain = ort_session(export_onnx(plain, opt.img, tmp / 'plain.onnx', CPU, False), opt.threads, False)
    try:
        for name, fwd in variants.items():
            Bottle2neck.forward = fwd
            pt, ort = time_variant(name, plain, ext, s_plain, x, ref, opt, tmp)
            print(f'{name:<12}{pt["median"]:>10.3f}{pt["p25"]:>8.3f}-{pt["p75"]:.3f}'
                  f'{ort["median"]:>8.3f}{ort["p25"]:>8.3f}-{ort["p75"]:.3f}', flush=True)
    finally:
        Bottle2neck.forward = shipped



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--cfg', default=str(ROOT / 'models_yaml' / 'yolov5s-res2.yaml'))
    ap.add_argument('--img', type=int, default=640)
    ap.add_argument('--runs', type=int, default=15)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    opt = ap.parse_args(argv)

    torch.set_num_threads(opt.threads)
    cfg = Path(opt.cfg).resolve()
    scale = entry_for(cfg).scale
    plain = fused(build(plain_entry(scale).cfg))
    ext = fused(build(str(cfg)))
    x = torch.rand(1, 3, opt.img, opt.img)
    variants = {'current': Bottle2neck.forward, 'no-inplace': no_inplace_forward, 'naive': naive_forward}
    with torch.inference_mode():
        ref = ext(x)[0]
    print(f'{cfg.name} vs yolov5{scale}, img {opt.img}, {opt.threads} threads, {opt.runs} pairs, '
          f'load average {loadavg()}')
    print(f'{"variant":<12}{"PyTorch x":>10}{"IQR":>14}{"ORT x":>8}{"IQR":>14}')
    with tempfile.TemporaryDirectory(prefix='res2_variants_') as tmp:
        variants_table(variants, plain, ext, x, ref, opt, Path(tmp))
    print(f'load average at the end {loadavg()}')
    return 0

if __name__ == '__main__':
    sys.exit(main())
