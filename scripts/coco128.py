#!/usr/bin/env python3
"""Make a YOLOv5 data yaml for a coco128 copy on disk (default: ../shared/data/coco128) without touching it.

    python scripts/coco128.py                         # -> datasets/coco128/coco128.yaml
    python scripts/coco128.py --src /data/coco128 --out datasets/my-coco128

YOLOv5 writes a label cache (labels/<split>.cache) next to the label files, so pointing it straight at a
read-only or shared copy either fails to cache or writes into someone else's directory. This script builds
datasets/coco128/ with real folders holding a symbolic link per image (not a linked folder: YOLOv5 resolves
the dataset folders, which would lead it back to the source) and the (small) label files copied, so caches
land in datasets/ only. Splits: train2017 and the disjoint val2017; names from names.txt (one a line).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = ROOT.parent / 'shared' / 'data' / 'coco128'
SPLITS = ('train2017', 'val2017')


def link_coco128(src: Path = DEFAULT_SRC, out: Path = ROOT / 'datasets' / 'coco128') -> Path:
    """Build (or refresh) the link farm at ``out`` and return the data yaml path."""
    import yaml  # noqa: PLC0415

    src, out = Path(src).resolve(), Path(out).absolute()
    names_file = src / 'names.txt'
    missing = [p for p in [names_file] + [src / k / s for k in ('images', 'labels') for s in SPLITS] if not p.exists()]
    if missing:
        raise FileNotFoundError(f'{src} is not a coco128 copy: missing {", ".join(str(m) for m in missing)}')
    names = [n.strip() for n in names_file.read_text().splitlines() if n.strip()]
    for split in SPLITS:
        images = out / 'images' / split
        if images.is_symlink():  # made by an earlier version of this script
            images.unlink()
        images.mkdir(parents=True, exist_ok=True)
        for f in sorted((src / 'images' / split).iterdir()):
            link = images / f.name
            if link.is_symlink() and Path(os.readlink(link)) != f:
                link.unlink()
            if not link.is_symlink():
                link.symlink_to(f)
        labels = out / 'labels' / split
        labels.mkdir(parents=True, exist_ok=True)
        for f in (src / 'labels' / split).glob('*.txt'):
            dst = labels / f.name
            if not dst.exists() or dst.read_bytes() != f.read_bytes():
                shutil.copyfile(f, dst)
    data = {'path': str(out), 'train': 'images/train2017', 'val': 'images/val2017', 'names': dict(enumerate(names))}
    yaml_path = out / 'coco128.yaml'
    yaml_path.write_text(f'# coco128 from {src} (images linked, labels copied) by scripts/coco128.py\n'
                         + yaml.safe_dump(data, sort_keys=False))
    return yaml_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--src', type=Path, default=DEFAULT_SRC, help='coco128 with images/ labels/ names.txt')
    ap.add_argument('--out', type=Path, default=ROOT / 'datasets' / 'coco128')
    opt = ap.parse_args(argv)
    try:
        print(link_coco128(opt.src, opt.out))
    except FileNotFoundError as e:
        print(f'coco128: ERROR: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
