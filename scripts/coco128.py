#!/usr/bin/env python3
"""Make a YOLOv5 data yaml for a coco128 copy on disk (default: ../shared/data/coco128) without touching it.

    python scripts/coco128.py                         # -> datasets/coco128/coco128.yaml
    python scripts/coco128.py --src /data/coco128 --out datasets/my-coco128

The images are linked one by one and the labels copied into datasets/coco128/, so YOLOv5's label caches land
there and never in the source; the logic is extensions/datasets/coco128.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout first on sys.path: scripts/_bootstrap.py)

from extensions.datasets.coco128 import DEFAULT_OUT, DEFAULT_SRC, link_coco128


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--src', type=Path, default=DEFAULT_SRC, help='coco128 with images/ labels/ names.txt')
    ap.add_argument('--out', type=Path, default=DEFAULT_OUT)
    opt = ap.parse_args(argv)
    try:
        print(link_coco128(opt.src, opt.out))
    except FileNotFoundError as e:
        print(f'coco128: ERROR: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
