#!/usr/bin/env python3
"""Start checkpoint for a pretrained-backbone YAML from a timm weights file (offline; docs/pretrained.md).

    python scripts/init_backbone.py --cfg models_yaml/yolov5m-res2net50d.yaml --weights res2net50d.safetensors \\
        --out start.pt [--data data.yaml | --nc 3] [--exist-ok]
    python yolov5/train.py --weights start.pt --cfg models_yaml/yolov5m-res2net50d.yaml --data data.yaml

The logic is extensions/pretrained.py. Exit status 2, with nothing written, when the file does not fit the YAML
or --out is refused (an existing file without --exist-ok, a directory, or one of the inputs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout first on sys.path: scripts/_bootstrap.py)

from extensions.outputs import OutputPathError, check_output, save_atomic
from extensions.pretrained import (  # the package puts yolov5/ on sys.path
    IMAGENET_MEAN,
    IMAGENET_STD,
    BackboneWeightsError,
    data_names,
    start_checkpoint,
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog='init_backbone.py',
        description='Initialise the backbone of a pretrained-backbone YAML (models_yaml/yolov5m-<timm>.yaml) from a '
                    'timm checkpoint file and write a YOLOv5 start checkpoint for train.py --weights. Every '
                    'backbone tensor of the file is placed (the classifier fc.* is skipped); the ImageNet '
                    'normalisation is folded into the stem. Offline: nothing is downloaded. See docs/pretrained.md.')
    p.add_argument('--cfg', required=True, type=Path, help='model YAML, e.g. models_yaml/yolov5m-res2net50d.yaml')
    p.add_argument('--weights', required=True, type=Path,
                   help='timm weights of the same model: .safetensors, or .pth/.pt/.bin (a state dict)')
    p.add_argument('--out', required=True, type=Path, help='start checkpoint to write, e.g. start.pt')
    p.add_argument('--exist-ok', action='store_true', help='replace --out if it exists (never an input)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--data', type=Path, help='YOLOv5 data yaml: class count and names for the detection head')
    g.add_argument('--nc', type=int, help='number of classes (default: the YAML\'s nc)')
    p.add_argument('--mean', type=float, nargs=3, default=IMAGENET_MEAN, metavar=('R', 'G', 'B'),
                   help='input mean the weights were trained with, for RGB in [0, 1]')
    p.add_argument('--std', type=float, nargs=3, default=IMAGENET_STD, metavar=('R', 'G', 'B'),
                   help='input std the weights were trained with, for RGB in [0, 1]')
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    try:
        check_output(a.out, inputs=(a.weights, a.cfg, a.data), exist_ok=a.exist_ok)  # before any work
        if not a.cfg.is_file():
            raise BackboneWeightsError(f'{a.cfg}: no such model YAML')
        names = data_names(a.data) if a.data else None
        ckpt, s = start_checkpoint(a.cfg, a.weights, nc=a.nc, names=names, mean=tuple(a.mean), std=tuple(a.std))
        a.out.parent.mkdir(parents=True, exist_ok=True)
        save_atomic(ckpt, a.out)
    except (OutputPathError, BackboneWeightsError) as e:
        print(f'init_backbone: error: {e}', file=sys.stderr)
        return 2
    skipped = (f'skipped the classifier ({", ".join(s["skipped"])}): not part of the backbone'
               if s['skipped'] else 'no classifier tensors in the file')
    print(f'{s["timm"]}: placed all {s["placed"]} backbone tensors of {s["source"]} into layers 0-'
          f'{s["freeze_backbone"] - 1} of {a.cfg}; {skipped}\n'
          f'folded input normalisation into layer 0: mean {s["mean"]}, std {s["std"]} (input stays RGB in [0, 1])\n'
          f'wrote {a.out} (nc={s["nc"]}). Train with:\n'
          f'  python yolov5/train.py --weights {a.out} --cfg {a.cfg} --data <data.yaml>\n'
          f'  (--freeze 2: stem + stage 1 frozen ... --freeze {s["freeze_backbone"]}: the whole backbone; '
          f'docs/pretrained.md)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
