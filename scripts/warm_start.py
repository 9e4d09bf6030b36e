#!/usr/bin/env python3
"""Warm start: a family model that starts out computing what a trained plain YOLOv5 computes (docs/warm_start.md).

    python scripts/warm_start.py --weights plain.pt --cfg models_yaml/yolov5s-res2.yaml --data data.yaml --out start.pt
    python yolov5/train.py --weights start.pt --cfg models_yaml/yolov5s-res2.yaml --data data.yaml

Copies every tensor that matches, fits each swapped block to the plain layer it replaces on the data's train
images, prints per swapped layer the relative error before and after and the val mAP50-95 of both models, and
writes the start checkpoint. Exit status 0 when written, 2 for bad input (one line, nothing written).
The logic is extensions/warm_start/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout first on sys.path: scripts/_bootstrap.py)

from extensions.compat import CheckpointError
from extensions.outputs import OutputPathError, check_output, save_atomic
from extensions.registry import ModelConfigError
from extensions.warm_start import WarmStartError, WarmStartSettings, warm_start

DEFAULTS = WarmStartSettings()


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog='warm_start.py',
        description='Warm-start a block-family YAML from a trained plain YOLOv5 checkpoint: copy every matching '
                    'tensor, fit each swapped block to the plain layer it replaces (layer-wise distillation on the '
                    'data\'s train images, no labels), and write a start checkpoint for train.py --weights.')
    p.add_argument('--weights', required=True, type=Path, help='trained YOLOv5 checkpoint (best.pt, yolov5s.pt)')
    p.add_argument('--cfg', required=True, type=Path, help='model YAML, e.g. models_yaml/yolov5s-res2.yaml')
    p.add_argument('--data', required=True, type=Path, help='YOLOv5 data yaml: images to fit on, class count')
    p.add_argument('--out', required=True, type=Path, help='start checkpoint to write, e.g. start.pt')
    p.add_argument('--exist-ok', action='store_true', help='replace --out if it exists')
    p.add_argument('--img', type=int, default=DEFAULTS.img, help='image size of the fitting and the mAP')
    p.add_argument('--steps', type=int, default=DEFAULTS.steps,
                   help='layer-wise fitting steps of the swapped layers that do not feed Detect')
    p.add_argument('--head-steps', type=int, default=DEFAULTS.head_steps,
                   help='layer-wise fitting steps of the swapped layers that feed Detect')
    p.add_argument('--e2e-steps', type=int, default=DEFAULTS.e2e_steps,
                   help='end-to-end steps after the layer-wise ones (the student\'s own inputs)')
    p.add_argument('--batch', type=int, default=DEFAULTS.batch, help='images per step')
    p.add_argument('--lr', type=float, default=DEFAULTS.lr, help='Adam learning rate (cosine to 0)')
    p.add_argument('--seed', type=int, default=DEFAULTS.seed, help='seed of the fitting')
    p.add_argument('--device', default=DEFAULTS.device, help='cpu, or a CUDA device such as 0')
    p.add_argument('--threads', type=int, default=DEFAULTS.threads,
                   help='CPU threads of the fitting (0: one per 20 MiB of activations per step, at most all '
                        'cores: small models waste extra threads; docs/warm_start.md)')
    p.add_argument('--no-val', action='store_true', help='skip the val mAP of both models')
    return p.parse_args(argv)


def _progress():
    from tqdm import tqdm  # noqa: PLC0415
    from utils.general import TQDM_BAR_FORMAT  # noqa: PLC0415

    bars = {}

    def update(stage, step, steps, loss):
        if stage not in bars:
            for b in bars.values():
                b.close()
            bars[stage] = tqdm(total=steps, bar_format=TQDM_BAR_FORMAT,
                               desc=f'{"fit layers" if stage == "layers" else "end to end":>12}')
        bar = bars[stage]
        bar.set_postfix_str(f'loss {loss:.4f}')
        bar.update(1)
        if step == steps:
            bar.close()

    return update


def main(argv=None) -> int:
    a = parse_args(argv)
    try:
        out = check_output(a.out, inputs=(a.weights, a.cfg, a.data), exist_ok=a.exist_ok)
        s = WarmStartSettings(img=a.img, steps=a.steps, head_steps=a.head_steps, e2e_steps=a.e2e_steps,
                              batch=a.batch, lr=a.lr, seed=a.seed, device=str(a.device), threads=a.threads,
                              evaluate=not a.no_val)
        r = warm_start(a.weights, a.cfg, a.data, s, progress=_progress())
        out.parent.mkdir(parents=True, exist_ok=True)
        save_atomic(r.checkpoint, out)
    except (WarmStartError, CheckpointError, FileNotFoundError, OutputPathError, ModelConfigError) as e:
        print(f'warm_start: error: {" ".join(str(e).split())}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'warm_start: error: interrupted; {a.out} was not written', file=sys.stderr)
        return 2

    if not r.layers:
        print(f'no swapped layer: every layer of {a.cfg} is the same module as in {a.weights}; the model is copied '
              f'unchanged')
    else:
        print(f'{"layer":>6} {"checkpoint":>12} {"YAML":>16} {"rel. error after copy":>22} {"after fit":>10} '
              f'{"chained":>8}')
        for f in r.layers:
            print(f'{f.index:>6} {f.teacher:>12} {f.student:>16} {f.before:>22.3f} {f.after:>10.3f} {f.chained:>8.3f}')
        print('relative error ||student - plain|| / ||plain|| of each swapped layer on held-out val images, with the '
              'plain model\'s input to the layer; chained: on the start model\'s own input')
    detect = f' (+ box/objectness rows of {len(r.partial)} Detect tensors; class rows left to train.py)' \
        if r.partial else ''
    print(f'copied {r.copied}/{r.total} tensors from {a.weights}{detect}; fitted {r.swapped} swapped layers')
    if r.map_start is not None:
        plain = 'n/a (another class count)' if r.map_plain is None else f'{r.map_plain:.3f}'
        ratio = f' ({r.map_start / r.map_plain:.2f}x plain)' if r.map_plain else ''
        print(f'val mAP50-95 at {a.img}: plain checkpoint {plain}, start checkpoint {r.map_start:.3f}{ratio} '
              f'(before fine-tuning)')
    print(f'warm start took {(r.cpu_s - r.val_cpu_s) / 60:.2f} CPU min, plus {r.val_cpu_s / 60:.2f} for the mAP '
          f'evaluations ({r.wall_s / 60:.1f} min wall in all, {r.threads} CPU thread{"s" * (r.threads > 1)})\n'
          f'wrote {out} (nc={r.nc}; train.py transfers {r.transferable}/{r.total} items: all but the anchors). '
          f'Fine-tune with:\n  python yolov5/train.py --weights {out} --cfg {a.cfg} --data {a.data}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
