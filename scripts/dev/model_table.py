"""Params and GFLOPs of every extension YAML against the plain YOLOv5 model of the same scale.

    python scripts/dev/model_table.py                      # every family's C3-swap YAML, Markdown table on stdout
    python scripts/dev/model_table.py --cfg models_yaml/yolov5s-res2.yaml --imgsz 640
    python scripts/dev/model_table.py --check 0.15         # exit 1 if any ratio leaves the +-15% band

Params are those of the model as built (trainable parameters, BN included, as YOLOv5's summary prints them);
GFLOPs are YOLOv5's own count (thop, 2 FLOPs per MAC) of the fused model at ``imgsz x imgsz``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout first on sys.path: scripts/_bootstrap.py)

from extensions.benchmark.build import build, fused
from extensions.benchmark.cost import gflops_at, param_count
from extensions.benchmark.models import entry_for, plain_entry
from extensions.families import FAMILIES, MODELS_YAML, SCALES


def params_gflops(cfg: str | Path, imgsz: int = 640) -> tuple[int, float]:
    """(params of the model as built, GFLOPs of the fused model at imgsz x imgsz), counted as
    scripts/benchmark.py counts them."""
    model = build(str(cfg)).eval()
    return param_count(model), gflops_at(fused(model), imgsz)[0]


def plain_for(cfg: Path) -> Path:
    """The upstream YAML of the same scale: yolov5s-res2.yaml -> yolov5/models/yolov5s.yaml."""
    return Path(plain_entry(entry_for(Path(cfg)).scale).cfg)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cfg', nargs='*', default=None,
                    help="YAMLs (default: each family's models_yaml/yolov5<scale>-<suffix>.yaml and its variants')")
    ap.add_argument('--imgsz', type=int, default=640)
    ap.add_argument('--check', type=float, default=None, help='fail if |ratio - 1| exceeds this (e.g. 0.15)')
    a = ap.parse_args(argv)
    swaps = [p for f in FAMILIES for sfx in (f.suffix, *f.variants) for p in MODELS_YAML.glob(f'yolov5?-{sfx}.yaml')]
    order = lambda p: (SCALES.index(entry_for(p).scale), p.stem)  # noqa: E731
    cfgs = [Path(c) for c in a.cfg] if a.cfg else sorted(swaps, key=order)
    plain: dict[Path, tuple[int, float]] = {}
    rows, bad = [], []
    for cfg in cfgs:
        ref = plain_for(cfg)
        if ref not in plain:
            plain[ref] = params_gflops(ref, a.imgsz)
            p0, g0 = plain[ref]
            rows.append(f'| {ref.stem} (plain) | {p0 / 1e6:.3f} | {g0:.2f} | 1.00 | 1.00 |')
        p0, g0 = plain[ref]
        p, g = params_gflops(cfg, a.imgsz)
        rp, rg = p / p0, g / g0
        rows.append(f'| {cfg.stem} | {p / 1e6:.3f} | {g:.2f} | {rp:.3f} | {rg:.3f} |')
        if a.check is not None and (abs(rp - 1) > a.check or abs(rg - 1) > a.check):
            bad.append(f'{cfg.stem}: params {rp:.3f}x, GFLOPs {rg:.3f}x')
    print(f'| model | params (M) | GFLOPs @{a.imgsz} (fused) | params ratio | GFLOPs ratio |')
    print('|---|---|---|---|---|')
    print('\n'.join(rows))
    if bad:
        print(f'\noutside the +-{a.check:.0%} band: ' + '; '.join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
