"""The models of a benchmark run: one Entry per YAML, grouped by scale behind the plain YOLOv5 of that scale.

A YAML is named ``yolov5<scale>[-<suffix>].yaml``; the suffix says its family (the key of the row of
``extensions.families`` whose own suffix or variant suffix it is). A YAML whose suffix is no family's is still
benchmarked, as its own row, against plain YOLOv5 of its scale. Standard library only (``--report-only`` needs
no torch); building the models is :mod:`.build`'s.
"""

from __future__ import annotations

import re
from pathlib import Path

from extensions import families

from .results import Entry
from .settings import BASE, ROOT, BenchmarkError

NAME_RE = re.compile(rf'^yolov5([{"".join(families.SCALES)}])(?:-(.+))?$')


def entry_for(cfg: Path) -> Entry:
    """The Entry of a YAML yolov5<scale>[-<suffix>].yaml: its family is the row whose suffix or variant suffix
    it is (None if none)."""
    m = NAME_RE.match(cfg.stem)
    if not m:
        raise BenchmarkError(f'{cfg}: cannot tell the scale from the file name '
                             f'(expected yolov5<{"|".join(families.SCALES)}>[-<suffix>].yaml)')
    suffix = m.group(2) or ''
    fam = families.of_suffix(suffix) if suffix else None
    return Entry(cfg.stem, str(cfg), m.group(1), suffix, fam.key if fam is not None else None)


def plain_entry(scale: str) -> Entry:
    """Plain YOLOv5 of a scale: yolov5/models/yolov5<scale>.yaml."""
    return Entry(f'yolov5{scale}', str(BASE / 'models' / f'yolov5{scale}.yaml'), scale)


def default_yaml(scale: str, name: str) -> Path:
    """The YAML of a family (by key) at a scale; a name that is no family's key is taken as a YAML suffix."""
    try:
        return families.by_key(name).yaml(scale)
    except ValueError:
        return families.MODELS_YAML / f'yolov5{scale}-{name}.yaml'


def _given_paths(cfgs: list[str]) -> list[Path]:
    paths = []
    for c in cfgs:
        p = Path(c) if Path(c).is_file() else ROOT / c
        if not p.is_file():
            raise BenchmarkError(f'cfg {c}: no such file')
        paths.append(p.resolve())
    return paths


def _default_paths(scales: list[str], names: list[str]) -> list[Path]:
    paths, missing = [], []
    for s in scales:
        for f in names:
            p = default_yaml(s, f)
            (paths if p.is_file() else missing).append(p)
    if missing:
        raise BenchmarkError('missing model YAMLs (give the YAMLs to benchmark instead, --cfg):\n  '
                             + '\n  '.join(map(str, missing)))
    return paths


def resolve_groups(cfgs: list[str] | None, scales: list[str], keys: list[str]) -> dict[str, list[Entry]]:
    """{scale: [plain entry, extension entries...]} in the order given: the YAMLs cfgs, or else the YAML of
    each family of keys (a family's key, or a YAML suffix) at each of scales."""
    paths = _given_paths(cfgs) if cfgs else _default_paths(scales, keys)
    groups: dict[str, list[Entry]] = {}
    for p in paths:
        e = entry_for(p)
        g = groups.setdefault(e.scale, [])
        if not g:
            g.append(plain_entry(e.scale))
        if not e.plain and all(x.cfg != e.cfg for x in g):
            g.append(e)
    return groups


def rel(p) -> str:
    """p relative to the repository root where it lies inside it."""
    p = Path(p)
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)
