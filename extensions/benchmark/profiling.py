"""Where an extension model loses time against plain YOLOv5: wall time of each swapped layer (forward hooks)
and the dominant ops (torch.profiler) of both fused models, CPU."""

from __future__ import annotations

import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from extensions.machine import Quiet

from .build import silent_stderr
from .stats import median


class LayerClock:
    """Wall time of each top-level layer of a YOLOv5 model in one forward (forward hooks; CPU is synchronous)."""

    def __init__(self, model):
        self.t0, self.dt, self.hooks = {}, {}, []
        for i, m in enumerate(model.model):
            self.hooks.append(m.register_forward_pre_hook(
                lambda mod, inp, i=i: self.t0.__setitem__(i, time.perf_counter())))
            self.hooks.append(m.register_forward_hook(
                lambda mod, inp, out, i=i: self.dt.__setitem__(i, time.perf_counter() - self.t0[i])))

    def remove(self):
        for h in self.hooks:
            h.remove()


def profiled_ops(model, x) -> dict[str, tuple[int, float]]:
    """torch.profiler over one forward: {op: (calls, self CPU ms)}."""
    with silent_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x)
    return {e.key: (e.count, e.self_cpu_time_total / 1e3) for e in prof.key_averages()}


def op_rows(runs: list[dict], top: int = 12) -> list[dict]:
    """Mean over clean forwards of each op's calls and self time, top ops first, with their share."""
    keys = {k for r in runs for k in r}
    rows = [{'op': k, 'calls': round(statistics.mean(r.get(k, (0, 0.0))[0] for r in runs)),
             'self_ms': statistics.mean(r.get(k, (0, 0.0))[1] for r in runs)} for k in keys]
    rows.sort(key=lambda r: -r['self_ms'])
    total = sum(r['self_ms'] for r in rows)
    for r in rows:
        r['share'] = r['self_ms'] / total if total else 0.0
    return rows[:top]


def _rounds(models, clocks, x, iters: int, guard: Quiet | None):
    """`iters` clean rounds of one forward of each model (layer times, then profiled ops); with a guard, a round
    during which other processes were busy is discarded and repeated once the machine is quiet.
    Returns (per model: {layer: [times]}, per model: [op dicts], rounds discarded)."""
    lt: tuple[dict, ...] = tuple({} for _ in models)
    ops: tuple[list, ...] = tuple([] for _ in models)
    discarded = kept = 0
    for m in models:
        m(x)
    while kept < iters:
        watch = guard.watch() if guard else None
        res = []
        for m, clock in zip(models, clocks):
            m(x)
            res.append((dict(clock.dt), profiled_ops(m, x)))
        if guard and guard.busy(watch) and guard.can_wait():
            discarded += 1
            guard.wait()
            continue
        for j, (d, o) in enumerate(res):
            for i, t in d.items():
                lt[j].setdefault(i, []).append(t)
            ops[j].append(o)
        kept += 1
    return lt, ops, discarded


def _layer_rows(plain_fm, ext_fm, lp: dict, le: dict, gl_plain: dict, gl_ext: dict) -> list[dict]:
    """One row per top-level position whose layer type differs (the swapped C3s): times, GFLOPs, GFLOP/s."""
    layers = []
    for i, (mp, me) in enumerate(zip(plain_fm.model, ext_fm.model)):
        tp, te = type(mp).__name__, type(me).__name__
        if tp != te:
            gp, ge = gl_plain.get(i, float('nan')), gl_ext.get(i, float('nan'))  # at imgsz
            layers.append({'i': i, 'plain': tp, 'ext': te, 'plain_ms': lp[i] * 1e3, 'ext_ms': le[i] * 1e3,
                           'plain_gflops': gp, 'ext_gflops': ge,
                           'plain_rate': gp / lp[i] if lp[i] else float('nan'),
                           'ext_rate': ge / le[i] if le[i] else float('nan')})
    return layers


def profile_pair(plain_fm, ext_fm, imgsz: int, iters: int, gl_plain: dict, gl_ext: dict,
                 guard: Quiet | None = None) -> dict:
    """Per-layer times of the swapped layers and the dominant ops of both fused models (CPU), from `iters`
    forwards of each, alternating plain and ext; with a Quiet guard, a round during which other processes were
    busy is discarded and repeated once the machine is quiet. gl_*: per-layer GFLOPs at imgsz."""
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    clocks = LayerClock(plain_fm), LayerClock(ext_fm)
    try:
        with torch.inference_mode():
            lt, ops, discarded = _rounds((plain_fm, ext_fm), clocks, x, iters, guard)
    finally:
        for c in clocks:
            c.remove()
    lp, le = ({i: median(v) for i, v in d.items()} for d in lt)
    return {'layers': _layer_rows(plain_fm, ext_fm, lp, le, gl_plain, gl_ext),
            'total_plain_ms': sum(lp.values()) * 1e3, 'total_ext_ms': sum(le.values()) * 1e3,
            'ops_plain': op_rows(ops[0]), 'ops_ext': op_rows(ops[1]), 'discarded': discarded}
