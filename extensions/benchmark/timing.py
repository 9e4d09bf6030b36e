"""Batch-1 latency: timed pairs alternating plain YOLOv5 and an extension model, in each runtime of a run: PyTorch
(fused, eval, inference_mode), onnxruntime (the ONNX export of the fused model, as yolov5/export.py writes it) and
any other runtime that can load a model by its Entry (the OpenVINO runtimes of :mod:`.openvino`).

Each extension model is timed in pairs with its plain model (plain, ext, plain, ext, ...); its ratio is the
median of the per-pair ratios, with their interquartile range as the spread. One runtime at a time: for each
extension model, that runtime loads the two models of the pair, times them, and releases them before the next
pair or runtime (several runtimes' compiled models alive in one process moved the figures by up to 0.1).
"""

from __future__ import annotations

import time
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from models.yolo import Detect

from extensions.deploy.openvino import detect_head_name
from extensions.machine import Quiet

from . import openvino as bov  # imports openvino and nncf only when a runtime asks for them
from . import targets
from .build import quiet
from .cost import Built
from .results import Entry, Latency, Ratio, Timed
from .settings import SpeedSettings
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


def record(plain: Timed, ta: list, tb: list, info: dict, ratios: list, cls=Latency) -> Timed:
    """Timed pairs of (plain, ext): plain's times accumulate over its extension models (into plain, a record of
    cls); returns ext's record: both series, the guard's counts and the statistics of the per-pair ratios."""
    plain.times.extend(ta)
    return cls(times=tb, plain_times=ta, discarded=info['discarded'], kept_busy=info['kept_busy'],
               ratio=Ratio(**ratio_stats(ratios)))


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
    import onnxruntime as ort
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


def prepare(device, runtimes: list[str], notes: list[str]) -> list[str]:
    """Set up the device for timing (GPU: cuDNN autotuning for the fixed input size) and return the runtimes
    that are timed on it: on GPU, onnx only with onnxruntime's CUDA provider. What applies goes into notes."""
    if device.type != 'cuda':
        return list(runtimes)
    import onnxruntime as ort
    ok = 'CUDAExecutionProvider' in ort.get_available_providers()
    if not ok and 'onnx' in runtimes:
        notes.append('onnxruntime has no CUDAExecutionProvider here: ONNX latency skipped on GPU.')
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels (warm-up)
    if 'onnx' in runtimes and ok:
        notes.append('GPU onnxruntime timings include the host-to-device copy of the input and the copy '
                     'of the output back (InferenceSession.run with numpy arrays).')
    return [k for k in runtimes if k != 'onnx' or ok]


class Runtime:
    """One runtime of the latency part: load(e) -> (run: a no-argument call timing one inference of e's model,
    info: what to record beside its times, e.g. {'precision': 'f32'}); release() drops what the last loads
    built; close() everything the runtime kept for the group."""

    kind = ''

    def load(self, e: Entry):
        raise NotImplementedError

    def profile(self, plain: Entry, e: Entry, iters: int) -> dict | None:
        """Where the pair spends its time inside this runtime, if the runtime can tell (None: it cannot)."""
        return None

    def release(self) -> None:
        pass

    def close(self) -> None:
        self.release()


class TorchRuntime(Runtime):
    kind = 'torch'

    def __init__(self, fms: dict, device, x):
        self.fms, self.device, self.x = fms, device, x

    def load(self, e):
        fm = deepcopy(self.fms[e.name]).to(self.device)
        return torch_runner(fm.half() if self.device.type == 'cuda' else fm, self.x), {}


class FellBack(RuntimeError):
    """onnxruntime could not create a CUDA session and fell back to the CPU."""


class OrtRuntime(Runtime):
    kind = 'onnx'

    def __init__(self, onnx_file, threads: int, cuda: bool, x):
        self.onnx_file, self.threads, self.cuda, self.x = onnx_file, threads, cuda, x

    def load(self, e):
        sess = ort_session(self.onnx_file(e), self.threads, self.cuda)
        if self.cuda and 'CUDAExecutionProvider' not in sess.get_providers():
            raise FellBack
        return ort_runner(sess, self.x), {}


class OnnxFiles:
    """The ONNX export of each fused model of a group, written once (fp16 on GPU for onnxruntime's CUDA
    provider; the OpenVINO runtimes, CPU only, read the fp32 export)."""

    def __init__(self, fms: dict, img: int, device, tmp: Path, pbar):
        self.fms, self.img, self.device, self.tmp, self.pbar, self.files = fms, img, device, tmp, pbar, {}

    def __call__(self, e: Entry) -> Path:
        if e.name not in self.files:
            self.pbar.set_description(f'{e.name}: ONNX export')
            cuda = self.device.type == 'cuda'
            self.files[e.name] = export_onnx(self.fms[e.name], self.img, self.tmp / f'{e.name}.onnx', self.device,
                                             half=cuda)
            self.pbar.update(1)
        return self.files[e.name]


def make_runtime(kind: str, fms: dict, device, img: int, threads: int, files: OnnxFiles, pbar) -> Runtime:
    """The Runtime of a kind for one group: torch, onnx, or an OpenVINO runtime (CPU)."""
    cuda = device.type == 'cuda'
    x = torch.rand(1, 3, img, img, generator=torch.Generator().manual_seed(0))
    xo = x.numpy().astype(np.float16 if cuda else np.float32)
    if kind == 'torch':
        return TorchRuntime(fms, device, x.to(device, torch.float16 if cuda else torch.float32))
    if kind == 'onnx':
        return OrtRuntime(files, threads, cuda, xo)
    if not bov.is_openvino(kind):
        raise ValueError(f'unknown runtime {kind!r}')
    calib = bov.calibration(img) if kind == 'openvino-int8' else None
    return bov.OpenVINORuntime(kind, threads, xo, files, lambda e: detect_head_name(fms[e.name]), calib,
                               say=pbar.set_description)


def wants_profile(e: Entry, kind: str, settings: SpeedSettings) -> bool:
    """Whether to record OpenVINO's per-node counters of e's pair in runtime kind (CPU): with profile 'all', or
    'missed' when the pair misses its OpenVINO latency target."""
    if settings.cuda or settings.profile == 'off' or not kind.startswith('openvino'):
        return False
    lim = targets.openvino_latency_target(e)
    return settings.profile == 'all' or (lim is not None and e.results.latency[kind].ratio.median > lim)


def measure_latency(group: list[Entry], built: Built, runtimes: list[str], settings: SpeedSettings, pairs: Pairs,
                    tmp: Path, notes: list[str]) -> list[str]:
    """Time each extension model of a group against its plain model (group[0]) at batch 1, img x img (fp16 on
    GPU), in each runtime of runtimes in turn (results.latency[kind]; the OpenVINO runtimes' results also hold
    the precision the model ran in and its executed nodes by type and precision, and, for a pair that
    wants_profile, the runtime's own profile). Returns the runtimes still on (onnx goes off once a GPU session
    falls back to the CPU); what was skipped goes into notes."""
    device = torch.device(settings.device)
    fms = built.fused
    files = OnnxFiles(fms, settings.img, device, tmp, pairs.pbar)
    plain, on = group[0], []
    for kind in runtimes:
        rt = make_runtime(kind, fms, device, settings.img, settings.threads, files, pairs.pbar)
        try:
            for e in group[1:]:
                pairs.say(f'{e.name}: {kind} (load)')
                fa, ia = rt.load(plain)
                fb, ib = rt.load(e)
                pairs.say(f'{e.name} vs {plain.name}: {kind}')
                ta, tb, info = pairs.time(fa, fb, settings.runs, settings.warmup)
                r = e.results.latency[kind] = record(plain.results.latency.setdefault(kind, Latency()), ta, tb, info,
                                                     [b / a for a, b in zip(ta, tb)])
                for rec, extra in ((plain.results.latency[kind], ia), (r, ib)):
                    for k, v in extra.items():
                        setattr(rec, k, v)
                del fa, fb
                rt.release()
                if wants_profile(e, kind, settings):
                    pairs.say(f'{e.name} vs {plain.name}: {kind} profile')
                    r.profile = rt.profile(plain, e, settings.profile_iters)
                    rt.release()
            on.append(kind)
        except FellBack:
            notes.append('onnxruntime could not create a CUDA session (it fell back to the CPU): '
                         'ONNX latency skipped on GPU.')
            for e in group:
                e.results.latency.pop(kind, None)
        finally:
            rt.close()
    return on


def summarise_latency(group: list[Entry]) -> None:
    """Median latency, its P50/P95/P99 (ms), achieved GFLOP/s and its ratio to plain (GFLOPs ratio / latency
    ratio) of each model of a group in each runtime, from its timed pairs; needs results.cost (cost_ratios).
    The INT8 OpenVINO result also gets its speed-up over the same model in OpenVINO f32 (median latencies)."""
    for e in group:
        st = e.results.static
        for r in e.results.latency.values():
            lat = median(r.times)
            r.latency_ms = lat * 1e3
            r.percentiles_ms = latency_percentiles(r.times)
            r.gflops_per_s = st.gflops_img / lat
            if e.plain:
                r.ratio = Ratio(**ratio_stats([1.0]))
                r.rate_ratio = 1.0
            else:
                r.rate_ratio = e.results.cost.gflops_ratio / r.ratio.median
        q, f = e.results.latency.get('openvino-int8'), e.results.latency.get('openvino-f32')
        if q and f:
            q.speedup_vs_f32 = f.latency_ms / q.latency_ms
