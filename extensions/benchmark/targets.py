"""The project's targets for each block family, met or missed.

They apply to a family's own YAML (``yolov5<scale>-<suffix>.yaml``, not its variants) at TARGET_SCALE: params
and GFLOPs close to plain YOLOv5's, a latency ratio per family (the slowdown the project accepts for what the
family adds), most of plain's achieved GFLOP/s, and most of its training throughput. A family without an
entry in TARGET_LATENCY has no latency target; the other targets apply to every family of
``extensions.families``.

OpenVINO has latency targets of its own (TARGET_LATENCY_OPENVINO), for each OpenVINO runtime a run measured
(f32, default precision, INT8): a family's GFLOPs ratio to plain at yolov5s divided by 0.95, i.e. the extension
may run its convolutions at no less than 95% of plain YOLOv5's FLOP rate. OpenVINO fuses and quantizes the
convolutions of every family alike, so what a block adds beyond its FLOPs (splits, softmax, pools, Reorders) is
what these targets bound.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import Entry

TARGET_SCALE = 's'
TARGET_COST_BAND = 0.15  # params and GFLOPs within +-15% of plain
TARGET_LATENCY = {'res2': 1.05, 'serd': 1.10, 'resnest': 1.15}  # latency ratio, PyTorch fused and onnxruntime
TARGET_FLOP_RATE = 0.90  # achieved GFLOP/s at least this share of plain's
TARGET_TRAIN = 0.80  # training throughput ratio
RUNTIMES = (('torch', 'PyTorch fused'), ('onnx', 'onnxruntime'))  # the runtimes of TARGET_LATENCY and TARGET_FLOP_RATE
# GFLOPs ratio at yolov5s (res2 1.026, resnest 1.040, serd 1.040) / 0.95, rounded down to two decimals
TARGET_LATENCY_OPENVINO = {'res2': 1.08, 'resnest': 1.09, 'serd': 1.09}
OPENVINO_RUNTIMES = (('openvino-f32', 'OpenVINO f32'), ('openvino', 'OpenVINO default precision'),
                     ('openvino-int8', 'OpenVINO INT8'))
ALL_RUNTIMES = RUNTIMES + OPENVINO_RUNTIMES  # every runtime the latency part knows, with its title


def latency_target(e: Entry) -> float | None:
    """The project's latency-ratio target for e's family; None if e has no targets or its family no latency
    target."""
    return TARGET_LATENCY.get(e.target_family) if e.target_family else None


def openvino_latency_target(e: Entry) -> float | None:
    """The OpenVINO latency-ratio target for e's family (any OpenVINO runtime); None if it has none."""
    return TARGET_LATENCY_OPENVINO.get(e.target_family) if e.target_family else None


def _target(kind: str, what: str, value, op: str, limit: float, runtime: str | None = None) -> dict:
    rt = {'runtime': runtime} if runtime else {}
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {'kind': kind, 'what': what, 'value': None, 'limit': limit, 'op': op, 'status': 'not measured', **rt}
    ok = value <= limit if op == '<=' else value >= limit if op == '>=' else abs(value - 1) <= limit
    return {'kind': kind, 'what': what, 'value': value, 'limit': limit, 'op': op, 'status': 'met' if ok else 'missed',
            **rt}


def targets_for(e: Entry, force: bool = False) -> list[dict]:
    """The project's targets for one extension model (its family's own YAML) at TARGET_SCALE, or at any scale
    with force; [] for plain YOLOv5, variants and YAMLs of no family."""
    if e.plain or e.target_family is None or (e.scale != TARGET_SCALE and not force):
        return []
    c = e.results.cost
    out = [_target('cost', 'params vs plain', c.params_ratio if c else None, 'band', TARGET_COST_BAND),
           _target('cost', 'GFLOPs vs plain', c.gflops_ratio if c else None, 'band', TARGET_COST_BAND)]
    lat = latency_target(e)
    for kind, label in RUNTIMES:
        r = e.results.latency.get(kind)
        if lat is not None:
            out.append(_target('latency', f'latency ratio, {label}', r.ratio.median if r and r.ratio else None, '<=',
                               lat, kind))
        out.append(_target('rate', f'achieved GFLOP/s vs plain, {label}', r.rate_ratio if r else None, '>=',
                           TARGET_FLOP_RATE, kind))
    r = e.results.train
    out.append(_target('train', 'training throughput ratio', r.ratio.median if r and r.ratio else None, '>=',
                       TARGET_TRAIN))
    ov = openvino_latency_target(e)
    for kind, label in OPENVINO_RUNTIMES:  # the OpenVINO runtimes this run measured
        r = e.results.latency.get(kind)
        if ov is not None and r and r.ratio:
            out.append(_target('latency', f'latency ratio, {label}', r.ratio.median, '<=', ov, kind))
    return out


def misses_speed(e: Entry, runtimes=('torch', 'onnx')) -> bool:
    """Whether e misses a latency or FLOP-rate target in one of runtimes (at whatever scale it was measured):
    worth a profile (PyTorch's for torch and onnx, OpenVINO's per-node counters for an OpenVINO runtime)."""
    return any(t['status'] == 'missed' and t['kind'] in ('latency', 'rate') and t.get('runtime') in runtimes
               for t in targets_for(e, force=True))


def fmt_target(t: dict) -> str:
    if t['value'] is None:
        cond = f'{t["op"]} {t["limit"]}' if t['op'] != 'band' else f'within +-{t["limit"]:.0%}'
        return f'{t["what"]}: not measured (target {cond})'
    if t['op'] == 'band':
        return f'{t["what"]}: {t["value"]:.3f}x (target within +-{t["limit"]:.0%})'
    return f'{t["what"]}: {t["value"]:.3f} (target {t["op"]} {t["limit"]:.2f})'


def target_scale_entries(groups) -> tuple[list[Entry], bool]:
    """Entries whose targets are reported: those at TARGET_SCALE if any, else every scale (informational)."""
    ents = [e for g in groups.values() for e in g if e.target_family]
    at = [e for e in ents if e.scale == TARGET_SCALE]
    return (at, True) if at else (ents, False)
