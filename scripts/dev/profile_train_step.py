"""Where a training step of an extension model spends its CPU time, and what a change to the blocks gains.

    python scripts/dev/profile_train_step.py --cfg models_yaml/yolov5s-resnest.yaml --profile
    python scripts/dev/profile_train_step.py --cfg models_yaml/yolov5s-res2.yaml --pairs 6
    python scripts/dev/profile_train_step.py --cfg models_yaml/yolov5s-res2.yaml --pairs 6 --against main

--profile: torch.profiler over one training step (as extensions.benchmark.training.Trainer does it) of the model
and of plain yolov5s; the ops with the most self CPU time, side by side. --pairs N: training steps alternating
plain yolov5s and the model, N timed pairs after 2 warm-up pairs; the median of the per-pair throughput ratios
(plain time / model time), as the committed benchmark measures it, in wall time and in the process's CPU
time (user + system of all its threads: much less sensitive to other processes on a shared machine); the order
within a pair alternates. --against REV: the model with the block
forwards of git revision REV (its extensions/{_layers,res2net,resnest,resnet_rs}.py, same weights) instead of
plain yolov5s, so the ratio is the speed-up of this working tree's forwards over REV's. --forwards REV: the model
uses REV's block forwards (e.g. to time the code before a change against plain yolov5s in the same run).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

from _bootstrap import ROOT  # this checkout first on sys.path (scripts/_bootstrap.py)

import numpy as np
import torch
from models.yolo import Detect  # the base: on sys.path once _bootstrap imported extensions
from torch.profiler import ProfilerActivity, profile

import extensions.registry as reg
from extensions.benchmark.build import fused, quiet
from extensions.benchmark.timing import ort_session
from extensions.benchmark.training import Trainer, loss_hyp

PLAIN = str(ROOT / 'yolov5' / 'models' / 'yolov5s.yaml')
FORWARD_FILES = ('_layers', 'res2net', 'resnest', 'resnet_rs')


def old_modules(rev: str) -> dict:
    """{class name: class} of the block modules at git revision ``rev``, loaded beside the current ones (as
    ``extensions._at_<module>``; registration disabled while loading)."""
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
    """Bind the methods of ``classes`` (by class name) to the modules of ``model``, except where the module has its
    own (``Model.fuse()`` sets ``forward = forward_fuse``); returns how many modules."""
    n = 0
    for m in model.modules():
        old = classes.get(type(m).__name__)
        if old is None or old.__module__ == type(m).__module__:
            continue
        for k, v in vars(old).items():
            if isinstance(v, types.FunctionType) and not k.startswith('__') and k not in vars(m):  # fuse() set it
                setattr(m, k, types.MethodType(v, m))
        n += 1
    return n


def onnx_session(model, imgsz: int, f: Path, threads: int):
    """The fused eval model exported as yolov5/export.py does (Detect in export mode, opset 17, static shape),
    without copying it (a copy would drop forwards bound by use_forwards), and an onnxruntime session of it."""

    for m in model.modules():
        if isinstance(m, Detect):
            m.inplace, m.dynamic, m.export = False, False, True
    im = torch.zeros(1, 3, imgsz, imgsz)
    with torch.no_grad(), quiet():
        model(im)
        torch.onnx.export(model, im, str(f), opset_version=17, do_constant_folding=True, input_names=['images'],
                          output_names=['output0'], dynamo=False)
    return ort_session(f, threads, False)


def onnx_pairs(ref_model, ext_model, imgsz: int, threads: int, pairs: int, names: tuple[str, str]) -> None:
    """Batch-1 onnxruntime latency of two fused models, alternating; prints the median ratio ref/ext."""

    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        sess = [onnx_session(m, imgsz, Path(tmp) / f'{i}.onnx', threads) for i, m in enumerate((ref_model, ext_model))]
        import onnx  # noqa: PLC0415  (only --onnx needs it)
        ops = [[n.op_type for n in onnx.load(str(Path(tmp) / f'{i}.onnx')).graph.node] for i in range(2)]
        print(f'onnx graphs: {len(ops[0])} and {len(ops[1])} nodes, node types in order '
              f'{"the same" if ops[0] == ops[1] else "different"}')
        outs = [s.run(None, {'images': x})[0] for s in sess]
        print(f'onnx outputs max abs difference {float(np.abs(outs[0] - outs[1]).max()):.2e}')
        t: tuple[list, list] = ([], [])
        for _ in range(3):
            for s in sess:
                s.run(None, {'images': x})
        for i in range(pairs):
            for j in ((0, 1) if i % 2 == 0 else (1, 0)):
                c0 = time.process_time()
                sess[j].run(None, {'images': x})
                t[j].append(time.process_time() - c0)
        r = [a / b for a, b in zip(*t)]
        print(f'onnxruntime batch 1 {imgsz}: {names[1]} {statistics.median(t[1]) * 1e3:.1f} ms CPU, {names[0]} '
              f'{statistics.median(t[0]) * 1e3:.1f} ms CPU; speed ratio {names[0]}/{names[1]} median '
              f'{statistics.median(r):.3f} ({pairs} pairs, CPU time)')


def time_rounds(runs: list, rounds: int, warmup: int, pairs: list | None = None) -> None:
    """Training steps of every (name, Trainer) in turn, the order rotated each round; prints the throughput ratio
    ``t_a / t_b`` of each (a, b) of ``pairs`` (default: every model against the first and, with three models, the
    last against the second), as medians of per-round ratios in wall time and in CPU time."""
    for _ in range(warmup):
        for _, tr in runs:
            tr.step()
    k = len(runs)
    wall, cpu = [[] for _ in runs], [[] for _ in runs]
    for i in range(rounds):
        for j in [(i + o) % k for o in range(k)]:
            c0, t0 = time.process_time(), time.perf_counter()
            runs[j][1].step()
            wall[j].append(time.perf_counter() - t0)
            cpu[j].append(time.process_time() - c0)
        print(f'  round {i}: ' + '  '.join(f'{n} {w[-1]:.2f}s wall {c[-1]:.2f}s CPU' for (n, _), w, c in
                                            zip(runs, wall, cpu)) + f'  load {os.getloadavg()[0]:.1f}', flush=True)
    pairs = pairs or [(0, j) for j in range(1, k)] + ([(k - 2, k - 1)] if k > 2 else [])
    for a, b in pairs:
        for what, t in (('wall', wall), ('CPU', cpu)):
            r = [u / v for u, v in zip(t[a], t[b])]
            q = statistics.quantiles(r, n=4, method='inclusive') if len(r) > 1 else [r[0]] * 3
            print(f'{runs[b][0]} vs {runs[a][0]}: {what}-time throughput ratio median {statistics.median(r):.3f} '
                  f'(IQR {q[0]:.3f}-{q[2]:.3f}, {rounds} rounds; medians {statistics.median(t[a]):.2f}s / '
                  f'{statistics.median(t[b]):.2f}s)')


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
    ap.add_argument('--onnx', type=int, default=0, help='also N pairs of onnxruntime batch-1 latency (fused models)')
    ap.add_argument('--onnx-img', type=int, default=640)
    ap.add_argument('--against', default='', help='git revision whose block forwards the model is timed against')
    ap.add_argument('--forwards', default='', help='git revision whose block forwards the model uses (vs plain)')
    ap.add_argument('--no-plain', action='store_true', help='with --against: leave plain yolov5s out')
    ap.add_argument('--channels-last', action='store_true', help='also a channels_last copy of each model')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev, hyp = torch.device('cpu'), loss_hyp()
    stem = Path(a.cfg).stem
    ext = Trainer(a.cfg, dev, a.img, a.batch, hyp)
    if a.forwards:
        use_forwards(ext.model, old_modules(a.forwards))
        stem = f'{stem}@{a.forwards}'
    runs = [] if a.no_plain else [('yolov5s', Trainer(PLAIN, dev, a.img, a.batch, hyp))]
    if a.against:
        old = Trainer(a.cfg, dev, a.img, a.batch, hyp)
        old.model.load_state_dict(ext.model.state_dict())
        use_forwards(old.model, old_modules(a.against))
        runs.append((f'{stem}@{a.against}', old))
    runs.append((stem, ext))
    if len(runs) < 2:
        ap.error('--no-plain needs --against')
    if a.profile:
        for name, tr in runs:
            rows = step_ops(tr, a.top)
            total = sum(r[2] for r in rows)
            print(f'\n{name}: top {a.top} ops of one training step, self CPU ms (sum {total:.0f})')
            for k, c, ms in rows:
                print(f'  {k:<42} {c:>6} {ms:>9.1f}')
    if a.onnx:
        (n0, r0), (n1, r1) = runs[-2:]
        f0, f1 = fused(r0.model), fused(r1.model)
        if a.against:
            use_forwards(f0, old_modules(a.against))
        onnx_pairs(f0, f1, a.onnx_img, a.threads, a.onnx, (n0, n1))
    pairs = None
    if a.channels_last:  # a channels_last copy of each model (same weights) in the same rotation
        n = len(runs)
        for name, tr in list(runs):
            cl = Trainer(a.cfg if name != 'yolov5s' else PLAIN, dev, a.img, a.batch, hyp)
            cl.model.load_state_dict(tr.model.state_dict())
            cl.model.to(memory_format=torch.channels_last)
            cl.imgs = cl.imgs.contiguous(memory_format=torch.channels_last)
            runs.append((f'{name} channels_last', cl))
        pairs = [(0, j) for j in range(1, n)] + [(j, j + n) for j in range(n)]
    if a.pairs:
        time_rounds(runs, a.pairs, a.warmup, pairs)
    return 0


if __name__ == '__main__':
    sys.exit(main())
