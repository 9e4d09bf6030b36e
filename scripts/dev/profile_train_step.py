"""Where a training step of an extension model spends its CPU time, and what a change to the blocks gains.

    python scripts/dev/profile_train_step.py --cfg models_yaml/yolov5s-resnest.yaml --profile
    python scripts/dev/profile_train_step.py --cfg models_yaml/yolov5s-res2.yaml --pairs 6
    python scripts/dev/profile_train_step.py --cfg models_yaml/yolov5s-res2.yaml --pairs 6 --against main

--profile: torch.profiler over one training step (as extensions.benchmark.training.Trainer does it) of the model
and of plain yolov5s; the ops with the most self CPU time, side by side. --pairs N: training steps alternating
plain yolov5s and the model, N timed pairs after 2 warm-up pairs; the median of the per-pair throughput ratios
(plain time / model time), as the committed benchmark measures it. --against REV: the model with the block
forwards of git revision REV (its extensions/{_layers,res2net,resnest,resnet_rs}.py, same weights) instead of
plain yolov5s, so the ratio is the speed-up of this working tree's forwards over REV's. --forwards REV: the model
uses REV's block forwards (e.g. to time the code before a change against plain yolov5s in the same run).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / 'yolov5')]

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from extensions.benchmark.training import Trainer, loss_hyp  # noqa: E402

PLAIN = str(ROOT / 'yolov5' / 'models' / 'yolov5s.yaml')
FORWARD_FILES = ('_layers', 'res2net', 'resnest', 'resnet_rs')


def old_modules(rev: str) -> dict:
    """{class name: class} of the block modules at git revision ``rev``, loaded beside the current ones (as
    ``extensions._at_<module>``; registration disabled while loading)."""
    import extensions.registry as reg  # noqa: PLC0415
    saved, classes = reg.register, {}
    reg.register = lambda cls=None, **kw: (lambda c: c) if cls is None else cls
    try:
        for name in FORWARD_FILES:
            src = subprocess.run(['git', 'show', f'{rev}:extensions/{name}.py'], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout
            src = src.replace('from ._layers import', 'from ._at__layers import')
            mod_name = f'extensions._at_{name}'
            spec = importlib.util.spec_from_loader(mod_name, loader=None)
            mod = importlib.util.module_from_spec(spec)
            mod.__package__ = 'extensions'
            sys.modules[mod_name] = mod
            exec(compile(src, f'{rev}:extensions/{name}.py', 'exec'), mod.__dict__)
            classes.update({k: v for k, v in vars(mod).items() if isinstance(v, type) and v.__module__ == mod_name})
    finally:
        reg.register = saved
    return classes


def use_forwards(model, classes: dict) -> int:
    """Bind the methods of ``classes`` (by class name) to the modules of ``model``; returns how many modules."""
    n = 0
    for m in model.modules():
        old = classes.get(type(m).__name__)
        if old is None or old.__module__ == type(m).__module__:
            continue
        for k, v in vars(old).items():
            if isinstance(v, types.FunctionType) and not k.startswith('__'):
                setattr(m, k, types.MethodType(v, m))
        n += 1
    return n


def step_ops(tr: Trainer, top: int) -> list[tuple[str, int, float]]:
    tr.step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        tr.step()
    rows = [(e.key, e.count, e.self_cpu_time_total / 1e3) for e in prof.key_averages()]
    return sorted(rows, key=lambda r: -r[2])[:top]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--cfg', required=True)
    ap.add_argument('--img', type=int, default=320)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--profile', action='store_true')
    ap.add_argument('--top', type=int, default=25)
    ap.add_argument('--pairs', type=int, default=0)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--against', default='', help='git revision whose block forwards the model is timed against')
    ap.add_argument('--forwards', default='', help='git revision whose block forwards the model uses (vs plain)')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev, hyp = torch.device('cpu'), loss_hyp()
    ext = Trainer(a.cfg, dev, a.img, a.batch, hyp)
    if a.forwards:
        use_forwards(ext.model, old_modules(a.forwards))
    if a.against:
        ref = Trainer(a.cfg, dev, a.img, a.batch, hyp)
        ref.model.load_state_dict(ext.model.state_dict())
        n = use_forwards(ref.model, old_modules(a.against))
        ref_name = f'{Path(a.cfg).stem}@{a.against} ({n} modules)'
    else:
        ref, ref_name = Trainer(PLAIN, dev, a.img, a.batch, hyp), 'yolov5s'
    if a.profile:
        for name, tr in ((ref_name, ref), (Path(a.cfg).stem, ext)):
            rows = step_ops(tr, a.top)
            total = sum(r[2] for r in rows)
            print(f'\n{name}: top {a.top} ops of one training step, self CPU ms (sum {total:.0f})')
            for k, c, ms in rows:
                print(f'  {k:<42} {c:>6} {ms:>9.1f}')
    if a.pairs:
        for _ in range(a.warmup):
            ref.step()
            ext.step()
        tr_, te_ = [], []
        for i in range(a.pairs):
            t0 = time.perf_counter()
            ref.step()
            t1 = time.perf_counter()
            ext.step()
            t2 = time.perf_counter()
            tr_.append(t1 - t0)
            te_.append(t2 - t1)
            print(f'  pair {i}: {ref_name} {tr_[-1]:.3f}s  {Path(a.cfg).stem} {te_[-1]:.3f}s  '
                  f'ratio {tr_[-1] / te_[-1]:.3f}', flush=True)
        ratios = sorted(x / y for x, y in zip(tr_, te_))
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(f'{Path(a.cfg).stem} vs {ref_name}: throughput ratio median {statistics.median(ratios):.3f} '
              f'(IQR {q[0]:.3f}-{q[2]:.3f}, {a.pairs} pairs)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
