"""Batch-1 latency: timed pairs alternating plain YOLOv5 and an extension model, in PyTorch (fused, eval,
inference_mode) and in onnxruntime (the ONNX export of the fused model, as yolov5/export.py writes it).

Each extension model is timed in pairs with its plain model (plain, ext, plain, ext, ...); its ratio is the
median of the per-pair ratios, with their interquartile range as the spread.
"""

from __future__ import annotations

import time
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from models.yolo import Detect

from .build import quiet
from .machine import Quiet
from .models import Entry
from .stats import latency_percentiles, median, ratio_stats


class Timer:
    """Wall time of one call; on CUDA, synchronised before and after."""

    def __init__(self, device):
        self.sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)

    def __call__(self, fn) -> float:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0


def alternate(fa, fb, runs: int, warmup: int, timer: Timer, tick, quiet_: Quiet | None = None):
    """Warm both up, then time (a, b) pairs back to back, `runs` times. With a Quiet guard, a pair during
    which other processes were busy is discarded and measured again once the machine is quiet.
    Returns (times of a, times of b, {'discarded': n, 'kept_busy': n})."""
    for _ in range(warmup):
        fa()
        fb()
    ta, tb = [], []
    info = {'discarded': 0, 'kept_busy': 0}
    while len(ta) < runs:
        watch = quiet_.watch() if quiet_ else None
        a, b = timer(fa), timer(fb)
        if quiet_ and quiet_.busy(watch):
            if quiet_.can_wait():
                info['discarded'] += 1
                quiet_.wait()
                fa()  # warm again after the pause
                fb()
                continue
            info['kept_busy'] += 1
        ta.append(a)
        tb.append(b)
        tick()
    return ta, tb, info


@dataclass
class Pairs:
    """How one run times its pairs: the device's Timer, the guard against other processes (CPU; None on GPU)
    and the progress bar (tqdm: set_description, update) that every timed pair ticks."""

    timer: Timer
    guard: Quiet | None
    pbar: object

    def say(self, text: str) -> None:
        self.pbar.set_description(text)

    def time(self, fa, fb, runs: int, warmup: int):
        """alternate(fa, fb, ...) with this run's timer, guard and progress bar."""
        return alternate(fa, fb, runs, warmup, self.timer, lambda n=1: self.pbar.update(n), self.guard)


def record(plain: Entry, e: Entry, kind: str, ta: list, tb: list, info: dict, ratios: list) -> None:
    """Store timed pairs of (plain, e): plain's times accumulate over its extension models; e's results[kind]
    holds both series, the guard's counts and the statistics of the per-pair ratios."""
    plain.results.setdefault(kind, {}).setdefault('times', []).extend(ta)
    e.results[kind] = {'times': tb, 'plain_times': ta, **info, 'ratio': ratio_stats(ratios)}


# ------------------------------------------------------------------------------------------------ runners
def torch_runner(model, x):
    def run():
        with torch.inference_mode():
            model(x)
    return run


def export_onnx(model, imgsz: int, f: Path, device, half: bool) -> Path:
    """As yolov5/export.py run() + export_onnx() (no --dynamic, no --simplify): the fused eval model, Detect in
    export mode (inplace False, the export.py default), two dry runs, fp16 on GPU with --half, classic exporter."""
    m = deepcopy(model).to(device).eval()
    for mod in m.modules():
        if isinstance(mod, Detect):
            mod.inplace = False
            mod.dynamic = False
            mod.export = True
    im = torch.zeros(1, 3, imgsz, imgsz, device=device)
    with torch.no_grad():
        for _ in range(2):
            m(im)
    if half:
        im, m = im.half(), m.half()
    with quiet():
        torch.onnx.export(m, im, str(f), verbose=False, opset_version=17, do_constant_folding=True,
                          input_names=['images'], output_names=['output0'], dynamic_axes=None, dynamo=False)
    return f


def ort_session(f: Path, threads: int, cuda: bool):
    import onnxruntime as ort  # noqa: PLC0415  (optional: not needed with --no-onnx, nor in the memory probe)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    providers = ['CUDAExecutionProvider', 'CPUExecutionProvider'] if cuda else ['CPUExecutionProvider']
    return ort.InferenceSession(str(f), so, providers=providers)


def ort_runner(sess, x):
    feed = {sess.get_inputs()[0].name: x}

    def run():
        sess.run(None, feed)
    return run


# ------------------------------------------------------------------------------------------ measurement
def prepare(device, onnx: bool, notes: list[str]) -> bool:
    """Set up the device for timing (GPU: cuDNN autotuning for the fixed input size) and say whether ONNX is
    timed: asked for, and on GPU only with onnxruntime's CUDA provider. What applies goes into notes."""
    if device.type != 'cuda':
        return onnx
    import onnxruntime as ort  # noqa: PLC0415  (optional: see ort_session)
    ok = 'CUDAExecutionProvider' in ort.get_available_providers()
    if not ok:
        notes.append('onnxruntime has no CUDAExecutionProvider here: ONNX latency skipped on GPU.')
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels (warm-up)
    if onnx and ok:
        notes.append('GPU onnxruntime timings include the host-to-device copy of the input and the copy '
                     'of the output back (InferenceSession.run with numpy arrays).')
    return onnx and ok


def onnx_sessions(group: list[Entry], fms: dict, img: int, threads: int, device, tmp: Path, pbar,
                  notes: list[str]) -> dict:
    """{name: onnxruntime session} of each fused model's export; {} if a GPU session falls back to the CPU."""
    cuda = device.type == 'cuda'
    sess = {}
    for e in group:
        pbar.set_description(f'{e.name}: ONNX export')
        sess[e.name] = ort_session(export_onnx(fms[e.name], img, tmp / f'{e.name}.onnx', device, half=cuda),
                                   threads, cuda)
        pbar.update(1)
        if cuda and 'CUDAExecutionProvider' not in sess[e.name].get_providers():
            notes.append('onnxruntime could not create a CUDA session (it fell back to the CPU): '
                         'ONNX latency skipped on GPU.')
            return {}
    return sess


def measure_latency(group: list[Entry], fms: dict, device, img: int, threads: int, runs: int, warmup: int,
                    pairs: Pairs, tmp: Path, onnx: bool, notes: list[str]) -> bool:
    """Time each extension model of a group against its plain model (group[0]) at batch 1, img x img (fp16 on
    GPU): results['torch'] and, with onnx, results['onnx']. fms: the fused models (measure_cost).
    Returns whether ONNX timing stays on (off once a GPU session falls back to the CPU)."""
    cuda = device.type == 'cuda'
    x = torch.rand(1, 3, img, img, generator=torch.Generator().manual_seed(0))
    x = x.to(device, torch.float16 if cuda else torch.float32)
    run_fm = {}
    for e in group:
        fm = deepcopy(fms[e.name]).to(device)
        run_fm[e.name] = fm.half() if cuda else fm
    sess = onnx_sessions(group, fms, img, threads, device, tmp, pairs.pbar, notes) if onnx else {}
    xo = x.cpu().numpy().astype(np.float16 if cuda else np.float32)
    plain = group[0]
    for e in group[1:]:
        pairs.say(f'{e.name} vs {plain.name}: torch')
        ta, tb, info = pairs.time(torch_runner(run_fm[plain.name], x), torch_runner(run_fm[e.name], x), runs, warmup)
        record(plain, e, 'torch', ta, tb, info, [b / a for a, b in zip(ta, tb)])
        if sess:
            pairs.say(f'{e.name} vs {plain.name}: onnx')
            ta, tb, info = pairs.time(ort_runner(sess[plain.name], xo), ort_runner(sess[e.name], xo), runs, warmup)
            record(plain, e, 'onnx', ta, tb, info, [b / a for a, b in zip(ta, tb)])
    return bool(sess)


def summarise_latency(group: list[Entry]) -> None:
    """Median latency, its P50/P95/P99 (ms), achieved GFLOP/s and its ratio to plain (GFLOPs ratio / latency
    ratio) of each model of a group, from its timed pairs; needs results['cost'] (cost_ratios)."""
    for e in group:
        st = e.results['static']
        for kind in ('torch', 'onnx'):
            if kind not in e.results:
                continue
            r = e.results[kind]
            lat = median(r['times'])
            r['latency_ms'] = lat * 1e3
            r['percentiles_ms'] = latency_percentiles(r['times'])
            r['gflops_per_s'] = st['gflops_img'] / lat
            if e.plain:
                r['ratio'] = ratio_stats([1.0])
                r['rate_ratio'] = 1.0
            else:
                r['rate_ratio'] = e.results['cost']['gflops_ratio'] / r['ratio']['median']
