"""The models of a benchmark run: one Entry per YAML, grouped by scale behind the plain YOLOv5 of that scale.

A YAML is named ``yolov5<scale>[-<suffix>].yaml``; the suffix says its block family (``extensions.families``:
a family's own suffix or one of its variants). A YAML whose suffix is no family's is still benchmarked, as its
own row, against plain YOLOv5 of its scale. Standard library only (``--report-only`` needs no torch); building
the models is :mod:`.build`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from extensions import families
from extensions.families import Family

ROOT = Path(__file__).resolve().parents[2]  # the overlay's repository root
BASE = ROOT / 'yolov5'  # the pinned YOLOv5


@dataclass
class Entry:
    name: str  # file stem, e.g. yolov5s-res2
    cfg: str
    scale: str
    family: str  # '' for plain YOLOv5, else the YAML's suffix: the part after 'yolov5<scale>-'
    results: dict = field(default_factory=dict)

    @property
    def plain(self) -> bool:
        return not self.family

    @property
    def block_family(self) -> Family | None:
        """The row of extensions.families this YAML belongs to (its own suffix or a variant's); None if none."""
        return families.of_suffix(self.family) if self.family else None

    @property
    def target_family(self) -> str | None:
        """Key of the family whose targets apply: set for a family's own YAMLs (``yolov5<scale>-<suffix>.yaml``),
        None for plain YOLOv5, a family's variants and YAMLs of no family."""
        fam = self.block_family
        return fam.key if fam is not None and fam.suffix == self.family else None


NAME_RE = re.compile(rf'^yolov5([{"".join(families.SCALES)}])(?:-(.+))?$')


def entry_for(cfg: Path) -> Entry:
    m = NAME_RE.match(cfg.stem)
    if not m:
        raise SystemExit(f'{cfg}: cannot tell the scale from the file name '
                         f'(expected yolov5<{"|".join(families.SCALES)}>[-<family>].yaml)')
    return Entry(cfg.stem, str(cfg), m.group(1), m.group(2) or '')


def plain_entry(scale: str) -> Entry:
    """Plain YOLOv5 of a scale: yolov5/models/yolov5<scale>.yaml."""
    return Entry(f'yolov5{scale}', str(BASE / 'models' / f'yolov5{scale}.yaml'), scale, '')


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
            raise SystemExit(f'--cfg {c}: no such file')
        paths.append(p.resolve())
    return paths


def _default_paths(scales: list[str], names: list[str]) -> list[Path]:
    paths, missing = [], []
    for s in scales:
        for f in names:
            p = default_yaml(s, f)
            (paths if p.is_file() else missing).append(p)
    if missing:
        raise SystemExit('missing model YAMLs (pass --cfg to choose others):\n  ' + '\n  '.join(map(str, missing)))
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


def groups_from_json(models: list[dict]) -> dict[str, list[Entry]]:
    """The groups of a run from the 'models' list of its benchmark.json."""
    groups: dict[str, list[Entry]] = {}
    for m in models:
        groups.setdefault(m['scale'], []).append(Entry(**m))
    return groups


def rel(p) -> str:
    """p relative to the repository root where it lies inside it."""
    p = Path(p)
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)
