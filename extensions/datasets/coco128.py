"""A YOLOv5 data yaml for a coco128 copy on disk (default: ../shared/data/coco128), without writing into it.

YOLOv5 writes a label cache (labels/<split>.cache) next to the label files, so pointing it straight at a
read-only or shared copy either fails to cache or writes into someone else's directory. :func:`link_coco128`
builds datasets/coco128/ with real folders holding a symbolic link per image (not a linked folder: YOLOv5
resolves the dataset folders, which would lead it back to the source) and the (small) label files copied, so
caches land in datasets/ only. Splits: train2017 and the disjoint val2017; names from names.txt (one a line).
Command line: ``python scripts/coco128.py``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]  # the repository root
DEFAULT_SRC = ROOT.parent / 'shared' / 'data' / 'coco128'
DEFAULT_OUT = ROOT / 'datasets' / 'coco128'
SPLITS = ('train2017', 'val2017')


def link_coco128(src: Path = DEFAULT_SRC, out: Path = DEFAULT_OUT) -> Path:
    """Build (or refresh) the link farm at ``out`` and return the data yaml path.

    Raises FileNotFoundError naming what is missing when ``src`` is not a coco128 copy (images/ and labels/
    with both splits, names.txt).
    """
    src, out = Path(src).resolve(), Path(out).absolute()
    names_file = src / 'names.txt'
    missing = [p for p in [names_file] + [src / k / s for k in ('images', 'labels') for s in SPLITS] if not p.exists()]
    if missing:
        raise FileNotFoundError(f'{src} is not a coco128 copy: missing {", ".join(str(m) for m in missing)}')
    names = [n.strip() for n in names_file.read_text().splitlines() if n.strip()]
    for split in SPLITS:
        images = out / 'images' / split
        if images.is_symlink():  # a linked folder, as an earlier version of this module made it
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
