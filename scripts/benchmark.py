#!/usr/bin/env python3
"""Benchmark: plain YOLOv5 against the Res2Net, ResNeSt and SE-ResNet-D families at the same scale.

    python scripts/benchmark.py                                   # n and s: cost, latency, training throughput
    python scripts/benchmark.py --accuracy --wait-idle 30         # + short-schedule mAP (shapes, coco128): slow
    python scripts/benchmark.py --cfg models_yaml/yolov5s-rs.yaml models_yaml/yolov5m-res2.yaml
    python scripts/benchmark.py --quick --out /tmp/bench          # smoke test (n scale, small image, 3 runs)
    python scripts/benchmark.py --device cuda                     # GPU: fp16, synchronised CUDA timing
    python scripts/benchmark.py --report-only                     # rewrite docs/benchmark.md from benchmark.json

--reuse-accuracy reuses a finished training run (runs/benchmark/<data>-<model>) whose settings and model are
unchanged (same YAML, data, hyp, epochs, ...; same parameter shapes and seeded outputs), so the slow accuracy
part can be done once and the timing part repeated on an idle machine; the report says which runs were reused.

Every model is compared with plain YOLOv5 of its scale (yolov5/models/yolov5<scale>.yaml, the scale being the
letter in the file name: yolov5s-res2.yaml -> yolov5s.yaml), measured in the same run:

* params and GFLOPs at 640 of the fused model (YOLOv5's own count, thop, taken at 640 itself);
* latency at batch 1 (fused eval PyTorch model under torch.inference_mode, and the ONNX export of it in
  onnxruntime, exported as yolov5/export.py does), with a fixed thread count. Each extension model is timed in
  pairs alternating with its plain model (plain, ext, plain, ext, ...); its ratio is the median of the per-pair
  ratios, with their interquartile range as the spread. Achieved GFLOP/s = GFLOPs / latency;
* training throughput (images/s of forward + ComputeLoss + backward + clip + SGD step + EMA, as train.py does,
  on a fixed synthetic batch), alternated with the plain model in the same way; peak memory of training
  (CPU: growth of the peak resident set over two iterations, in a fresh process; GPU: max_memory_allocated);
* with --accuracy: a SHORT-SCHEDULE accuracy comparison, every model trained from scratch by yolov5/train.py
  with the same seed, epochs, optimizer and hyperparameters (the demo's recipe: AdamW with
  scripts/hyps/hyp.short-cpu.yaml, 30 epochs, batch 16), on the built-in shapes data (img 160) and on coco128
  (img 320); mAP from the final row of each run's results.csv. It says which model learns faster in a few
  CPU epochs; it is not a claim about COCO.

Writes <out>/benchmark.md (tables, machine, date, command, targets met/missed, profile of missed targets),
<out>/benchmark.json (every number) and PNG plots, and prints the targets. Timing runs are only meaningful on
an otherwise idle machine: the load average at the start and the end goes into the report.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / 'yolov5'
for _p in (str(ROOT / 'scripts'), str(BASE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

FAMILIES = ('res2', 'resnest', 'serd')  # the default configs: models_yaml/yolov5<scale>-<family>.yaml
FAMILY_NAMES = {'res2': 'Res2Net', 'resnest': 'ResNeSt', 'serd': 'SE-ResNet-D', 'rs': 'ResNet-RS'}
DEFAULT_HYP = ROOT / 'scripts' / 'hyps' / 'hyp.short-cpu.yaml'
LOSS_HYP = BASE / 'data' / 'hyps' / 'hyp.scratch-low.yaml'  # hyp for the training-throughput loss
ACC_IMG = {'shapes': 160, 'coco128': 320}  # shapes: the demo's img (docs/demo.md); coco128 at 320 as the issue asks

# The targets, for the default configs at TARGET_SCALE.
TARGET_SCALE = 's'
TARGET_COST_BAND = 0.15  # params and GFLOPs within +-15% of plain
TARGET_LATENCY = {'res2': 1.05, 'serd': 1.10, 'resnest': 1.15}  # latency ratio, PyTorch fused and onnxruntime
TARGET_FLOP_RATE = 0.90  # achieved GFLOP/s at least this share of plain's
TARGET_TRAIN = 0.80  # training throughput ratio


# --------------------------------------------------------------------------------------------------- helpers
def median(x):
    return statistics.median(x) if x else float('nan')


def quantile(x, q):
    """Linear-interpolated quantile (numpy's default) without numpy."""
    s = sorted(x)
    if not s:
        return float('nan')
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ratio_stats(r):
    """median and interquartile range of per-pair ratios."""
    return {'median': median(r), 'p25': quantile(r, 0.25), 'p75': quantile(r, 0.75),
            'min': min(r) if r else float('nan'), 'max': max(r) if r else float('nan'), 'n': len(r)}


def loadavg():
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return None


def proc_field(path: str, key: str) -> str | None:
    """The value of the first 'key: value' line of a /proc file (Linux), or None."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return proc_field('/proc/cpuinfo', 'model name') or platform.processor() or platform.machine()


def cpu_flags() -> str:
    flags = set((proc_field('/proc/cpuinfo', 'flags') or '').split())
    return ', '.join(f for f in ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'amx_tile') if f in flags)


class CpuWatch:
    """Cores used by OTHER processes over an interval: system-wide busy CPU time (steal time of the hypervisor
    included) minus this process's own (and its waited-for children's), per second of wall time. 0 on an idle
    machine; 1.0 = one core taken."""

    def __init__(self):
        import psutil  # noqa: PLC0415
        self.psutil, self.proc = psutil, psutil.Process()
        self.t0, self.sys0, self.own0 = time.time(), self._busy(), self._own()

    def _busy(self):
        t = self.psutil.cpu_times()
        return sum(getattr(t, k, 0.0) for k in ('user', 'nice', 'system', 'irq', 'softirq', 'steal'))

    def _own(self):
        t = self.proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def others(self) -> float:
        wall = time.time() - self.t0
        return max(0.0, ((self._busy() - self.sys0) - (self._own() - self.own0)) / wall) if wall > 0 else 0.0


def wait_idle(max_minutes: float, threshold: float = 0.5) -> None:
    """Wait (up to max_minutes) until the 1-minute load average drops below threshold."""
    t_end = time.time() + 60 * max_minutes
    la = loadavg()
    while la and la[0] >= threshold and time.time() < t_end:
        print(f'waiting for an idle machine: load average {la} (>= {threshold}) ...', flush=True)
        time.sleep(30)
        la = loadavg()


def rss_bytes() -> int:
    import psutil  # noqa: PLC0415
    return psutil.Process().memory_info().rss


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (VmHWM) to the current RSS (Linux)."""
    try:
        Path('/proc/self/clear_refs').write_text('5')
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    hwm = proc_field('/proc/self/status', 'VmHWM:')  # e.g. '123456 kB'
    if hwm:
        return int(hwm.split()[0]) * 1024
    import resource  # noqa: PLC0415
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextlib.contextmanager
def quiet():
    """Silence YOLOv5's layer tables, 'Fusing layers', exporter chatter and tracer warnings."""
    from utils.general import LOGGER  # noqa: PLC0415
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter('ignore')
            yield
    finally:
        LOGGER.setLevel(level)


@contextlib.contextmanager
def silent_stderr():
    """Silence file descriptor 2 (the profiler's C++ backend logs there, e.g. a CUDA build without a GPU)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# ------------------------------------------------------------------------------------------- model entries
@dataclass
class Entry:
    name: str  # file stem, e.g. yolov5s-res2
    cfg: str
    scale: str
    family: str  # '' for plain YOLOv5, else the part after 'yolov5<scale>-'
    results: dict = field(default_factory=dict)

    @property
    def plain(self) -> bool:
        return not self.family

    @property
    def target_family(self) -> str | None:
        """Family whose targets apply (the issue's default configs at the target scale)."""
        return self.family if self.family in TARGET_LATENCY else None


NAME_RE = re.compile(r'^yolov5([nsmlx])(?:-(.+))?$')


def entry_for(cfg: Path) -> Entry:
    m = NAME_RE.match(cfg.stem)
    if not m:
        raise SystemExit(f'{cfg}: cannot tell the scale from the file name '
                         '(expected yolov5<n|s|m|l|x>[-<family>].yaml)')
    return Entry(cfg.stem, str(cfg), m.group(1), m.group(2) or '')


def resolve_groups(cfgs: list[str] | None, scales: list[str], families: list[str]) -> dict[str, list[Entry]]:
    """{scale: [plain entry, extension entries...]} in the order given."""
    paths: list[Path] = []
    if cfgs:
        for c in cfgs:
            p = Path(c) if Path(c).is_file() else ROOT / c
            if not p.is_file():
                raise SystemExit(f'--cfg {c}: no such file')
            paths.append(p.resolve())
    else:
        missing = []
        for s in scales:
            for f in families:
                p = ROOT / 'models_yaml' / f'yolov5{s}-{f}.yaml'
                (paths if p.is_file() else missing).append(p)
        if missing:
            raise SystemExit('missing model YAMLs (pass --cfg to choose others):\n  ' + '\n  '.join(map(str, missing)))
    groups: dict[str, list[Entry]] = {}
    for p in paths:
        e = entry_for(p)
        g = groups.setdefault(e.scale, [])
        if not g:
            g.append(Entry(f'yolov5{e.scale}', str(BASE / 'models' / f'yolov5{e.scale}.yaml'), e.scale, ''))
        if not e.plain and all(x.cfg != e.cfg for x in g):
            g.append(e)
    return groups


def build(cfg: str, nc: int = 80):
    from models.yolo import Model  # noqa: PLC0415
    import torch  # noqa: PLC0415
    torch.manual_seed(0)
    with quiet():
        return Model(cfg, ch=3, nc=nc)


def fused(model):
    with quiet():
        return deepcopy(model).eval().fuse()


def gflops_at(model, imgsz: int = 640) -> tuple[float, dict]:
    """GFLOPs (thop, 2 FLOPs per MAC, as YOLOv5 counts them) of one forward at (1, 3, imgsz, imgsz), and GFLOPs of
    each top-level layer. Counted at the real size rather than YOLOv5's model_info shortcut (a stride-size input,
    scaled): that shortcut scales the squeeze-excitation / split-attention FCs on pooled 1x1 features by
    (imgsz/32)^2 too, which overstates SE and ResNeSt models by 1-2%."""
    import thop  # noqa: PLC0415
    import torch  # noqa: PLC0415
    p = next(model.parameters())
    im = torch.zeros((1, 3, imgsz, imgsz), device=p.device, dtype=p.dtype)
    with quiet():
        macs, _, layers = thop.profile(deepcopy(model), inputs=(im,), verbose=False, ret_layer_info=True)
    per_layer = {int(i): v[0] * 2 / 1e9 for i, v in layers['model'][2].items()} if 'model' in layers else {}
    return macs * 2 / 1e9, per_layer


# ------------------------------------------------------------------------------------------------- timing
class Timer:
    """Wall time of one call; on CUDA, synchronised before and after."""

    def __init__(self, device):
        import torch  # noqa: PLC0415
        self.sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)

    def __call__(self, fn) -> float:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0


class Quiet:
    """Guards CPU timings against other processes: a measurement during which they used more than max_other
    cores (see CpuWatch) is discarded, and the next one waits until the machine is quiet again, within a total
    waiting budget for the whole run; once that is spent, busy measurements are kept (and counted)."""

    def __init__(self, max_other: float, budget_min: float, pbar=None):
        self.max_other, self.budget, self.waited, self.pbar = max_other, 60 * budget_min, 0.0, pbar

    @property
    def active(self) -> bool:
        return self.max_other > 0

    def watch(self):
        return CpuWatch() if self.active else None

    def busy(self, watch) -> bool:
        return watch is not None and watch.others() > self.max_other

    def can_wait(self) -> bool:
        return self.waited < self.budget

    def wait(self) -> None:
        """Sleep in 2 s windows until other processes use at most max_other cores (or the budget is spent)."""
        if self.pbar is not None:
            self.pbar.set_postfix_str('other processes busy: waiting')
        try:
            while self.can_wait():
                w = CpuWatch()
                time.sleep(2.0)
                self.waited += 2.0
                if w.others() <= self.max_other:
                    return
        finally:
            if self.pbar is not None:
                self.pbar.set_postfix_str('')


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


def torch_runner(model, x):
    import torch  # noqa: PLC0415

    def run():
        with torch.inference_mode():
            model(x)
    return run


def export_onnx(model, imgsz: int, f: Path, device, half: bool) -> Path:
    """As yolov5/export.py run() + export_onnx() (no --dynamic, no --simplify): the fused eval model, Detect in
    export mode (inplace False, the export.py default), two dry runs, fp16 on GPU with --half, classic exporter."""
    import torch  # noqa: PLC0415
    from models.yolo import Detect  # noqa: PLC0415
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
    import onnxruntime as ort  # noqa: PLC0415
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


# ------------------------------------------------------------------------------------------------ training
def synthetic_batch(batch: int, imgsz: int, nc: int = 80, seed: int = 0):
    """A fixed batch: uniform images and 1-6 boxes per image, targets as YOLOv5's dataloader gives them
    (image index, class, xc, yc, w, h normalised)."""
    import torch  # noqa: PLC0415
    g = torch.Generator().manual_seed(seed)
    imgs = torch.rand(batch, 3, imgsz, imgsz, generator=g)
    rows = []
    for i in range(batch):
        for _ in range(int(torch.randint(1, 7, (1,), generator=g))):
            wh = 0.05 + 0.4 * torch.rand(2, generator=g)
            xy = wh / 2 + (1 - wh) * torch.rand(2, generator=g)
            rows.append([i, int(torch.randint(0, nc, (1,), generator=g)), *xy.tolist(), *wh.tolist()])
    return imgs, torch.tensor(rows, dtype=torch.float32)


class Trainer:
    """One training iteration as yolov5/train.py does it: autocast (CUDA), model(imgs), ComputeLoss, backward,
    unscale + clip_grad_norm(10), SGD step (smart_optimizer's 3 groups), zero_grad, EMA update."""

    def __init__(self, cfg: str, device, imgsz: int, batch: int, hyp: dict, nc: int = 80):
        import torch  # noqa: PLC0415
        from utils.loss import ComputeLoss  # noqa: PLC0415
        from utils.torch_utils import ModelEMA, smart_optimizer  # noqa: PLC0415
        self.cuda = device.type == 'cuda'
        self.model = build(cfg, nc).to(device).train()
        nl = self.model.model[-1].nl
        h = dict(hyp)
        h['box'] *= 3 / nl  # as train.py scales them
        h['cls'] *= nc / 80 * 3 / nl
        h['obj'] *= (imgsz / 640) ** 2 * 3 / nl
        h['label_smoothing'] = 0.0
        self.model.nc, self.model.hyp = nc, h
        self.loss = ComputeLoss(self.model)
        with quiet():
            self.opt = smart_optimizer(self.model, 'SGD', h['lr0'], h['momentum'], h['weight_decay'])
        self.ema = ModelEMA(self.model)
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.cuda)
        imgs, targets = synthetic_batch(batch, imgsz, nc)
        self.imgs, self.targets = imgs.to(device), targets.to(device)

    def step(self):
        import torch  # noqa: PLC0415
        with torch.amp.autocast('cuda', enabled=self.cuda):
            pred = self.model(self.imgs)
            loss, _ = self.loss(pred, self.targets)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=10.0)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad()
        self.ema.update(self.model)


def train_memory_probe(cfg: str, imgsz: int, batch: int, threads: int) -> dict:
    """Run in a fresh process: peak resident-set growth over two training iterations (CPU)."""
    import gc  # noqa: PLC0415
    import torch  # noqa: PLC0415
    import yaml  # noqa: PLC0415
    torch.set_num_threads(threads)
    hyp = yaml.safe_load(LOSS_HYP.read_text())
    tr = Trainer(cfg, torch.device('cpu'), imgsz, batch, hyp)
    gc.collect()
    base = rss_bytes()
    exact = reset_peak_rss()
    for _ in range(2):
        tr.step()
    peak = peak_rss_bytes()
    return {'base_mb': base / 2**20, 'peak_mb': peak / 2**20, 'delta_mb': (peak - base) / 2**20, 'exact': exact}


def memory_subprocess(cfg: str, imgsz: int, batch: int, threads: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), '--memory-probe', cfg, '--train-img', str(imgsz),
           '--train-batch', str(batch), '--threads', str(threads)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith('{')]
    if r.returncode or not lines:
        return {'error': (r.stderr or r.stdout).strip().splitlines()[-1:] or ['failed']}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------------------------- profiling
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
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415
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


def profile_pair(plain_fm, ext_fm, imgsz: int, iters: int, gl_plain: dict, gl_ext: dict,
                 guard: Quiet | None = None) -> dict:
    """Per-layer times of the swapped layers and the dominant ops of both fused models (CPU), from `iters`
    forwards of each, alternating plain and ext; with a Quiet guard, a round during which other processes were
    busy is discarded and repeated once the machine is quiet."""
    import torch  # noqa: PLC0415
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    clocks = LayerClock(plain_fm), LayerClock(ext_fm)
    lt: tuple[dict, dict] = ({}, {})
    ops: tuple[list, list] = ([], [])
    discarded = 0
    try:
        with torch.inference_mode():
            plain_fm(x)
            ext_fm(x)
            kept = 0
            while kept < iters:
                watch = guard.watch() if guard else None
                res = []
                for m, clock in zip((plain_fm, ext_fm), clocks):
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
    finally:
        for c in clocks:
            c.remove()
    lp, le = ({i: median(v) for i, v in d.items()} for d in lt)
    layers = []
    for i, (mp, me) in enumerate(zip(plain_fm.model, ext_fm.model)):
        tp, te = type(mp).__name__, type(me).__name__
        if tp != te:
            gp, ge = gl_plain.get(i, float('nan')), gl_ext.get(i, float('nan'))  # at imgsz
            layers.append({'i': i, 'plain': tp, 'ext': te, 'plain_ms': lp[i] * 1e3, 'ext_ms': le[i] * 1e3,
                           'plain_gflops': gp, 'ext_gflops': ge,
                           'plain_rate': gp / lp[i] if lp[i] else float('nan'),
                           'ext_rate': ge / le[i] if le[i] else float('nan')})
    return {'layers': layers, 'total_plain_ms': sum(lp.values()) * 1e3, 'total_ext_ms': sum(le.values()) * 1e3,
            'ops_plain': op_rows(ops[0]), 'ops_ext': op_rows(ops[1]), 'discarded': discarded}


# ------------------------------------------------------------------------------------------------ accuracy
def results_csv_final(f: Path) -> tuple[dict, int]:
    with open(f) as fh:
        rows = [{k.strip(): v.strip() for k, v in r.items()} for r in csv.DictReader(fh)]
    if not rows:
        raise ValueError(f'{f}: no rows')
    last = rows[-1]
    return {'mAP50': float(last['metrics/mAP_0.5']), 'mAP50-95': float(last['metrics/mAP_0.5:0.95']),
            'P': float(last['metrics/precision']), 'R': float(last['metrics/recall'])}, len(rows)


def csv_rows(f: Path) -> int:
    try:
        return max(0, len(f.read_text().strip().splitlines()) - 1)
    except OSError:
        return 0


def file_hash(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16]


def model_fingerprint(cfg: str) -> dict:
    """What decides a from-scratch training run besides data and settings: the shapes of the parameters and
    buffers in creation order (hence the seeded initialisation) and the output of the seeded model on a fixed
    input. A block rewritten for speed with the same math keeps it; a changed block does not."""
    import torch  # noqa: PLC0415
    model = build(cfg).eval()
    shapes = [list(t.shape) for t in (*model.parameters(), *model.buffers())]
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)[0].flatten()
    step = max(1, y.numel() // 256)
    return {'shapes': hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16],
            'out': [round(v, 6) for v in y[::step][:256].tolist()]}


def same_model(a: dict | None, b: dict) -> bool:
    if not a or a.get('shapes') != b['shapes'] or len(a.get('out', [])) != len(b['out']):
        return False
    return all(abs(u - v) <= 1e-3 * max(1.0, abs(v)) for u, v in zip(a['out'], b['out']))


def train_accuracy(e: Entry, data_name: str, data_yaml: Path, opt, project: Path, tick) -> dict:
    """Train e from scratch with yolov5/train.py (a subprocess) and read the final epoch's mAP."""
    import torch  # noqa: PLC0415
    imgsz = opt.acc_img or ACC_IMG.get(data_name, 320)
    run = project / f'{data_name}-{e.name}'
    key = {'cfg': file_hash(e.cfg), 'data': str(data_yaml), 'data_yaml': file_hash(data_yaml),
           'hyp': file_hash(opt.hyp), 'optimizer': opt.optimizer, 'epochs': opt.epochs, 'img': imgsz,
           'batch': opt.acc_batch, 'seed': opt.seed, 'device': opt.device, 'torch': torch.__version__}
    fp = model_fingerprint(e.cfg)
    stamp = run / 'benchmark_stamp.json'
    if opt.reuse_accuracy and stamp.is_file() and (run / 'results.csv').is_file():
        old = json.loads(stamp.read_text())
        if old.get('key') == key and same_model(old.get('model'), fp):
            metrics, n = results_csv_final(run / 'results.csv')
            tick(opt.epochs)
            return {**metrics, 'epochs': n, 'img': imgsz, 'seconds': old.get('seconds'), 'run': str(run),
                    'reused': old.get('date')}
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    device = 'cpu' if opt.device == 'cpu' else str(torch.device(opt.device).index or 0)
    cmd = [sys.executable, str(BASE / 'train.py'), '--cfg', e.cfg, '--data', str(data_yaml), '--hyp', str(opt.hyp),
           '--weights', '', '--optimizer', opt.optimizer, '--epochs', str(opt.epochs), '--img', str(imgsz),
           '--batch-size', str(opt.acc_batch), '--workers', str(opt.workers), '--seed', str(opt.seed), '--cache', 'ram',
           '--project', str(project), '--name', run.name, '--exist-ok', '--device', device, '--noplots']
    log = run / 'benchmark_train.log'
    t0, done = time.time(), 0
    with open(log, 'w') as fh:
        fh.write(' '.join(shlex.quote(c) for c in cmd) + '\n')
        fh.flush()
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                             env=dict(os.environ, PYTHONUNBUFFERED='1'))
        try:
            while p.poll() is None:
                time.sleep(2)
                n = min(csv_rows(run / 'results.csv'), opt.epochs)
                if n > done:
                    tick(n - done)
                    done = n
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): do not leave train.py running
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
            raise
    tick(opt.epochs - done)
    seconds = time.time() - t0
    if p.returncode:
        tail = log.read_text().strip().splitlines()[-3:]
        return {'error': f'train.py exit {p.returncode}: ' + ' | '.join(tail), 'run': str(run)}
    metrics, n = results_csv_final(run / 'results.csv')
    now = dt.datetime.now().isoformat(timespec='seconds')
    stamp.write_text(json.dumps({'key': key, 'model': fp, 'seconds': seconds, 'date': now}, indent=1))
    return {**metrics, 'epochs': n, 'img': imgsz, 'seconds': seconds, 'run': str(run)}


def accuracy_scales(spec: list[str] | None, data_name: str, groups: dict) -> list[str]:
    """The scales to train on data_name: every scale of the run by default; 'n' for every dataset;
    'coco128:n' for that dataset only."""
    if not spec:
        return list(groups)
    scales = []
    for item in spec:
        d, _, s = item.rpartition(':')
        if s not in groups:
            raise SystemExit(f'--acc-scales {item}: scale {s!r} is not in this run (scales: {", ".join(groups)})')
        if d in ('', data_name) and s not in scales:
            scales.append(s)
    return scales


def accuracy_datasets(opt) -> tuple[dict[str, Path], list[str]]:
    data, notes = {}, []
    for name in opt.acc_data:
        if name == 'shapes':
            from make_shapes import ensure_shapes  # noqa: PLC0415
            data['shapes'] = Path(ensure_shapes())
        elif name == 'coco128':
            from coco128 import DEFAULT_SRC, link_coco128  # noqa: PLC0415
            try:
                data['coco128'] = Path(link_coco128())
            except FileNotFoundError as err:
                notes.append(f'coco128 skipped: no coco128 copy at {DEFAULT_SRC} ({err}).')
        else:
            p = Path(name)
            if not p.is_file():
                raise SystemExit(f'--acc-data {name}: not shapes, coco128 or a data yaml')
            data[p.stem] = p.resolve()
    return data, notes


# --------------------------------------------------------------------------------------------- measurement
def measure_latency(groups, opt, device, pbar) -> float:
    """Static cost, alternated PyTorch/onnxruntime latency, training throughput and memory, per scale."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415
    import yaml  # noqa: PLC0415

    cuda = device.type == 'cuda'
    timer = Timer(device)
    tick = lambda n=1: pbar.update(n)  # noqa: E731
    guard = None if cuda else Quiet(opt.max_other, opt.max_wait, pbar)
    loss_hyp = yaml.safe_load(LOSS_HYP.read_text())
    ort_ok = True
    if cuda:
        import onnxruntime as ort  # noqa: PLC0415
        ort_ok = 'CUDAExecutionProvider' in ort.get_available_providers()
        if not ort_ok:
            opt.notes.append('onnxruntime has no CUDAExecutionProvider here: ONNX latency skipped on GPU.')
    dtype = torch.float16 if cuda else torch.float32
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels (warm-up)
        if not opt.no_onnx and ort_ok:
            opt.notes.append('GPU onnxruntime timings include the host-to-device copy of the input and the copy '
                             'of the output back (InferenceSession.run with numpy arrays).')
    x = torch.rand(1, 3, opt.img, opt.img, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    tmp = Path(tempfile.mkdtemp(prefix='yolo-bench-'))
    try:
        for scale, group in groups.items():
            plain = group[0]
            models, fms = {}, {}
            for e in group:  # static cost on CPU fp32
                pbar.set_description(f'{e.name}: build, fuse, GFLOPs')
                m = build(e.cfg)
                fm = fused(m)
                g640, per_layer = gflops_at(fm, 640)
                if opt.img != 640:
                    gimg, per_layer = gflops_at(fm, opt.img)
                else:
                    gimg = g640
                e.results['static'] = {'params': sum(p.numel() for p in fm.parameters()),
                                       'params_train': sum(p.numel() for p in m.parameters()),
                                       'gflops': g640, 'gflops_img': gimg}
                e.results['_layer_gflops'] = per_layer
                models[e.name], fms[e.name] = m, fm
                tick()
            # PyTorch (fused, eval, inference_mode)
            run_fm = {}
            for e in group:
                fm = deepcopy(fms[e.name]).to(device)
                run_fm[e.name] = fm.half() if cuda else fm
            sess = {}
            if ort_ok and not opt.no_onnx:
                for e in group:
                    pbar.set_description(f'{e.name}: ONNX export')
                    f = export_onnx(fms[e.name], opt.img, tmp / f'{e.name}.onnx', device, half=cuda)
                    sess[e.name] = ort_session(f, opt.threads, cuda)
                    tick()
                    if cuda and 'CUDAExecutionProvider' not in sess[e.name].get_providers():
                        opt.notes.append('onnxruntime could not create a CUDA session (it fell back to the CPU): '
                                         'ONNX latency skipped on GPU.')
                        sess, ort_ok = {}, False
                        break
            xo = x.cpu().numpy().astype(np.float16 if cuda else np.float32)
            trainers = {}
            for e in group[1:]:
                for kind in ('torch', 'onnx', 'train'):
                    pbar.set_description(f'{e.name} vs {plain.name}: {kind}')
                    if kind == 'torch':
                        fa, fb = torch_runner(run_fm[plain.name], x), torch_runner(run_fm[e.name], x)
                        runs, warm = opt.runs, opt.warmup
                    elif kind == 'onnx':
                        if not sess:
                            continue
                        fa, fb = ort_runner(sess[plain.name], xo), ort_runner(sess[e.name], xo)
                        runs, warm = opt.runs, opt.warmup
                    else:
                        for n in (plain.name, e.name):
                            if n not in trainers:
                                trainers[n] = Trainer((plain if n == plain.name else e).cfg, device, opt.train_img,
                                                      opt.train_batch, loss_hyp)
                        fa, fb = trainers[plain.name].step, trainers[e.name].step
                        runs, warm = opt.train_iters, opt.train_warmup
                    ta, tb, info = alternate(fa, fb, runs, warm, timer, tick, guard)
                    plain.results.setdefault(kind, {}).setdefault('times', []).extend(ta)
                    e.results[kind] = {'times': tb, 'plain_times': ta, **info,
                                       'ratio': ratio_stats([b / a for a, b in zip(ta, tb)])}
                trainers.pop(e.name, None)
            del trainers
            # training memory
            for e in group:
                pbar.set_description(f'{e.name}: training memory')
                if cuda:
                    import gc  # noqa: PLC0415
                    gc.collect()
                    torch.cuda.empty_cache()
                    tr = Trainer(e.cfg, device, opt.train_img, opt.train_batch, loss_hyp)
                    torch.cuda.synchronize()
                    base = torch.cuda.memory_allocated()
                    torch.cuda.reset_peak_memory_stats()
                    for _ in range(2):
                        tr.step()
                    torch.cuda.synchronize()
                    peak = torch.cuda.max_memory_allocated()
                    e.results['memory'] = {'base_mb': base / 2**20, 'peak_mb': peak / 2**20,
                                           'delta_mb': (peak - base) / 2**20, 'exact': True}
                    del tr
                else:
                    e.results['memory'] = memory_subprocess(e.cfg, opt.train_img, opt.train_batch, opt.threads)
                tick()
            # derived numbers
            pst = plain.results['static']
            for e in group:
                st = e.results['static']
                e.results['cost'] = {'params_ratio': st['params'] / pst['params'],
                                     'gflops_ratio': st['gflops'] / pst['gflops']}
                for kind in ('torch', 'onnx'):
                    if kind not in e.results:
                        continue
                    r = e.results[kind]
                    lat = median(r['times'])
                    r['latency_ms'] = lat * 1e3
                    r['gflops_per_s'] = st['gflops_img'] / lat
                    if e.plain:
                        r['ratio'] = ratio_stats([1.0])
                        r['rate_ratio'] = 1.0
                    else:
                        r['rate_ratio'] = e.results['cost']['gflops_ratio'] / r['ratio']['median']
                if 'train' in e.results:
                    r = e.results['train']
                    r['images_per_s'] = opt.train_batch / median(r['times'])
                    if e.plain:
                        r['ratio'] = ratio_stats([1.0])
                    else:  # throughput ratio = plain time / ext time, per pair
                        r['ratio'] = ratio_stats([a / b for a, b in zip(r['plain_times'], r['times'])])
            # profile the blocks that miss a latency or FLOP-rate target (or all of them with --profile)
            if opt.profile != 'off' and not cuda:
                for e in group[1:]:
                    if opt.profile == 'all' or any(t['status'] == 'missed' and t['kind'] in ('latency', 'rate')
                                                   for t in targets_for(e, force=True)):
                        pbar.set_description(f'{e.name}: profile')
                        e.results['profile'] = profile_pair(fms[plain.name], fms[e.name], opt.img, opt.profile_iters,
                                                            plain.results['_layer_gflops'],
                                                            e.results['_layer_gflops'], guard)
            del models, fms, run_fm, sess
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return guard.waited / 60 if guard else 0.0


# ------------------------------------------------------------------------------------------------- targets
def targets_for(e: Entry, force: bool = False) -> list[dict]:
    """The issue's targets for one extension model (its family's default config); [] for others."""
    fam = e.target_family
    if e.plain or fam is None or (e.scale != TARGET_SCALE and not force):
        return []
    out = []

    def add(kind, what, value, op, limit):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append({'kind': kind, 'what': what, 'value': None, 'limit': limit, 'op': op, 'status': 'not measured'})
            return
        ok = value <= limit if op == '<=' else value >= limit if op == '>=' else abs(value - 1) <= limit
        out.append({'kind': kind, 'what': what, 'value': value, 'limit': limit, 'op': op,
                    'status': 'met' if ok else 'missed'})

    c = e.results.get('cost', {})
    add('cost', 'params vs plain', c.get('params_ratio'), 'band', TARGET_COST_BAND)
    add('cost', 'GFLOPs vs plain', c.get('gflops_ratio'), 'band', TARGET_COST_BAND)
    for kind, label in (('torch', 'PyTorch fused'), ('onnx', 'onnxruntime')):
        r = e.results.get(kind)
        add('latency', f'latency ratio, {label}', r['ratio']['median'] if r else None, '<=', TARGET_LATENCY[fam])
        add('rate', f'achieved GFLOP/s vs plain, {label}', r.get('rate_ratio') if r else None, '>=', TARGET_FLOP_RATE)
    r = e.results.get('train')
    add('train', 'training throughput ratio', r['ratio']['median'] if r else None, '>=', TARGET_TRAIN)
    return out


def fmt_target(t: dict) -> str:
    if t['value'] is None:
        cond = f'{t["op"]} {t["limit"]}' if t['op'] != 'band' else f'within +-{t["limit"]:.0%}'
        return f'{t["what"]}: not measured (target {cond})'
    if t['op'] == 'band':
        return f'{t["what"]}: {t["value"]:.3f}x (target within +-{t["limit"]:.0%})'
    return f'{t["what"]}: {t["value"]:.3f} (target {t["op"]} {t["limit"]:.2f})'


def target_scale_entries(groups) -> tuple[list[Entry], bool]:
    """Entries whose targets are reported: the issue's scale if present, else every scale (informational)."""
    ents = [e for g in groups.values() for e in g if e.target_family]
    at = [e for e in ents if e.scale == TARGET_SCALE]
    return (at, True) if at else (ents, False)


# -------------------------------------------------------------------------------------------------- report
def rel(p) -> str:
    """p relative to the repository root where it lies inside it."""
    p = Path(p)
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def fla(la) -> str:
    return ', '.join(f'{x:.2f}' for x in la) if la else 'n/a'


def fr(x, nd=2):
    return '-' if x is None or (isinstance(x, float) and math.isnan(x)) else f'{x:.{nd}f}'


def fratio(r: dict | None) -> str:
    if not r:
        return '-'
    if r['n'] <= 1 and r['median'] == 1.0:
        return '1.00'
    return f'{r["median"]:.2f} ({r["p25"]:.2f}-{r["p75"]:.2f})'


def plots(groups, acc: dict, out: Path) -> list[str]:
    import matplotlib  # noqa: PLC0415
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # noqa: PLC0415

    ents = [e for g in groups.values() for e in g]
    names = [e.name for e in ents]
    colors = {'': '#555555', 'res2': '#1f77b4', 'resnest': '#ff7f0e', 'serd': '#2ca02c'}
    col = [colors.get(e.family, '#9467bd') for e in ents]
    files = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)

    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.3 * len(ents) + 4), 4.2))
    for ax, key, label in ((axes[0], 'params', 'params (M, fused)'), (axes[1], 'gflops', 'GFLOPs at 640')):
        vals = [e.results['static'][key] / (1e6 if key == 'params' else 1) for e in ents]
        bars = ax.bar(range(len(ents)), vals, color=col)
        for b, e in zip(bars, ents):
            r = e.results['cost']['params_ratio' if key == 'params' else 'gflops_ratio']
            ax.annotate(f'{r:.2f}x', (b.get_x() + b.get_width() / 2, b.get_height()), ha='center', va='bottom',
                        fontsize=8)
        ax.set_xticks(range(len(ents)), names, rotation=35, ha='right', fontsize=8)
        ax.set_ylabel(label)
        ax.set_title(label + ' (ratio to plain of the same scale)', fontsize=9)
        ax.margins(y=0.12)
    save(fig, 'benchmark_params_gflops.png')

    ext = [e for e in ents if not e.plain]
    if ext and any(k in e.results for e in ext for k in ('torch', 'onnx', 'train')):
        panels = [(('torch', 'PyTorch fused'), ('onnx', 'onnxruntime')), (('train', 'training'),)]
        fig, axes = plt.subplots(1, 2, figsize=(max(9, 1.2 * len(ext) + 6), 4.4),
                                 gridspec_kw={'width_ratios': [2, 1]})
        for ax, kinds in zip(axes, panels):
            w = 0.8 / len(kinds)
            for j, (k, label) in enumerate(kinds):
                med, lo, hi = [], [], []
                for e in ext:
                    r = e.results.get(k, {}).get('ratio')
                    m = r['median'] if r else float('nan')
                    med.append(m)
                    lo.append(m - r['p25'] if r else 0)
                    hi.append(r['p75'] - m if r else 0)
                ax.bar([i + (j - (len(kinds) - 1) / 2) * w for i in range(len(ext))], med, w, yerr=[lo, hi],
                       capsize=3, label=label)
            for i, e in enumerate(ext):
                if e.target_family:
                    lim = TARGET_TRAIN if kinds[0][0] == 'train' else TARGET_LATENCY[e.target_family]
                    ax.hlines(lim, i - 0.45, i + 0.45, colors='k', linestyles='--', lw=0.9)
            ax.axhline(1.0, color='grey', lw=0.6)
            ax.set_xticks(range(len(ext)), [e.name for e in ext], rotation=30, ha='right', fontsize=8)
            if kinds[0][0] == 'train':
                ax.set_ylabel('throughput ratio to plain (higher is better)')
                ax.set_title('Training images/s, alternated pairs (median, IQR)', fontsize=9)
            else:
                ax.set_ylabel('latency ratio to plain (lower is better)')
                ax.set_title('Batch-1 latency, alternated pairs (median, IQR)', fontsize=9)
                ax.legend(fontsize=8)
        fig.text(0.01, 0.01, 'dashed: the issue\'s target for the family', fontsize=7)
        save(fig, 'benchmark_ratios.png')

    if acc:
        dsets = list(acc)
        fig, axes = plt.subplots(1, len(dsets), figsize=(5.5 * len(dsets), 4.4), squeeze=False)
        for ax, d in zip(axes[0], dsets):
            for e in ents:
                a = acc[d].get(e.name)
                if not a or 'mAP50-95' not in a or 'torch' not in e.results:
                    continue
                ax.scatter(e.results['torch']['latency_ms'], a['mAP50-95'], color=colors.get(e.family, '#9467bd'),
                           marker='o' if e.scale == 'n' else 's' if e.scale == 's' else '^', s=50)
                ax.annotate(e.name, (e.results['torch']['latency_ms'], a['mAP50-95']), fontsize=7,
                            xytext=(4, 3), textcoords='offset points')
            ep = next((a['epochs'] for a in acc[d].values() if 'epochs' in a), '?')
            from matplotlib.lines import Line2D  # noqa: PLC0415
            fams = sorted({e.family for e in ents}, key=lambda f: (f != '', f))
            ax.legend(handles=[Line2D([], [], ls='', marker='o', color=colors.get(f, '#9467bd'),
                                      label=FAMILY_NAMES.get(f, f or 'YOLOv5')) for f in fams], fontsize=7)
            ax.set_xlabel('PyTorch fused latency, batch 1 (ms)')
            ax.set_ylabel('mAP50-95 (final epoch)')
            ax.set_title(f'{d}: SHORT schedule ({ep} epoch{"s" if ep != 1 else ""} from scratch), not a COCO claim',
                         fontsize=9)
            ax.grid(alpha=0.3)
        save(fig, 'benchmark_latency_map.png')
    return files


def write_report(groups, acc, acc_notes, meta, opt, out: Path, files: list[str]) -> Path:
    ents = [e for g in groups.values() for e in g]
    dev = 'GPU' if meta['device'] == 'cuda' else 'CPU'
    L = ['# Benchmark: YOLOv5 with Res2Net, ResNeSt and SE-ResNet-D blocks against plain YOLOv5', '',
         f'Generated by `scripts/benchmark.py` on {meta["date"]} ({meta["duration_min"]:.1f} min).'
         + (' **Quick smoke-test mode: tiny settings, numbers are not meaningful.**' if opt.quick else ''), '',
         'Command:', '', '```', meta['command'], '```', '',
         '## Machine', '',
         f'- {dev}: {meta["cpu"]}' + (f' ({meta["cpu_flags"]})' if meta['cpu_flags'] else '')
         + f', {meta["cores"]} logical cores; {meta["threads"]} threads (torch.set_num_threads, onnxruntime '
           f'intra_op_num_threads)' + (f'; GPU: {meta["gpu"]}' if meta.get('gpu') else ''),
         f'- Python {meta["python"]}, torch {meta["torch"]}, onnxruntime {meta["onnxruntime"]}, onnx {meta["onnx"]}, '
         f'{meta["os"]}',
         f'- load average (1, 5, 15 min) at the start: {fla(meta["load_start"])}; after the timing part: '
         f'{fla(meta["load_after_timing"])} (includes this benchmark); at the end: {fla(meta["load_end"])}',
         f'- CPU used by other processes during the timing part ({meta["timing_min"]:.1f} min): '
         f'{meta["other_cores"]:.2f} cores on average (system busy time minus this process\'s own)', '',
         '## How it was measured', '',
         '- Every extension model is compared with plain YOLOv5 of its scale, built from '
         '`yolov5/models/yolov5<scale>.yaml`, nc=80, in the same process.',
         '- **Cost**: params of the fused model (BN folded; a few thousand fewer than YOLOv5\'s training summary); '
         'GFLOPs of the fused model at 640x640 as YOLOv5 counts them (thop, 2 FLOPs per MAC), counted at 640 itself '
         '(YOLOv5\'s stride-size shortcut overstates SE/split-attention FCs).',
         f'- **Latency**: batch 1, {opt.img}x{opt.img}, ' + ('fp16 (`model.half()`), CUDA-synchronised wall time'
                                                             if meta['device'] == 'cuda' else 'fp32')
         + f'; the fused eval model under `torch.inference_mode()`, and its ONNX export (opset 17, classic '
           f'exporter, Detect in export mode, as `yolov5/export.py` without --dynamic/--simplify) in onnxruntime '
           f'{meta["onnxruntime"]}. {opt.warmup} warm-up pairs, then {opt.runs} timed pairs alternating plain and '
           f'extension (plain, ext, plain, ext, ...). Latency = median; **ratio = median of the per-pair ratios**, '
           f'in brackets their interquartile range. Achieved GFLOP/s = GFLOPs at {opt.img} / median latency; its '
           f'ratio to plain = GFLOPs ratio / latency ratio.'
         + (f' A pair during which other processes used more than {opt.max_other} cores (system CPU time minus '
            f'this process\'s) is discarded and measured again.' if opt.max_other > 0 and meta['device'] != 'cuda'
            else ''),
         '- **Training**: images/s of one iteration as `train.py` does it (forward, ComputeLoss with '
         'hyp.scratch-low, backward, clip, SGD step, EMA' + (', AMP' if meta['device'] == 'cuda' else '')
         + f') at img {opt.train_img}, batch {opt.train_batch}, on a fixed synthetic batch; {opt.train_warmup} warm-up '
           f'and {opt.train_iters} timed iterations alternating with plain; ratio = median of per-pair throughput '
           f'ratios. Peak memory: '
         + ('`torch.cuda.max_memory_allocated()` growth over two iterations.' if meta['device'] == 'cuda' else
            'growth of the peak resident set (VmHWM) over two iterations, in a fresh process per model.'), '']
    if meta['other_cores'] > 0.1 or (meta['load_start'] and meta['load_start'][0] > 0.5):
        L += [f'> **Warning**: the machine was not idle (load average {fla(meta["load_start"])} at the start, other '
              f'processes used {meta["other_cores"]:.2f} cores during timing). Alternated pairs cancel slow drifts, '
              'not a concurrent load: with all cores in use by the benchmark, a competing process can slow '
              'multi-threaded PyTorch many times over. Treat these timings with care.', '']

    dsets = list(acc)
    S = ['## Summary (ratios to plain YOLOv5 of the same scale)', '',
          '| model | params | GFLOPs | latency PyTorch | latency ORT | GFLOP/s PyTorch | GFLOP/s ORT | train img/s |'
          + ''.join(f' mAP50-95 {d} |' for d in dsets),
          '|---|---:|---:|---:|---:|---:|---:|---:|' + '---:|' * len(dsets)]
    for e in ents:
        c, g = e.results['cost'], e.results.get
        cells = [e.name, f'{c["params_ratio"]:.2f}', f'{c["gflops_ratio"]:.2f}',
                 *(fr(g(k)['ratio']['median']) if g(k) else '-' for k in ('torch', 'onnx')),
                 *(fr(g(k)['rate_ratio']) if g(k) else '-' for k in ('torch', 'onnx')),
                 fr(g('train')['ratio']['median']) if g('train') else '-']
        cells += [fr(acc[d].get(e.name, {}).get('mAP50-95'), 3) for d in dsets]
        S.append('| ' + ' | '.join(cells) + ' |')
    S += ['', 'Latency: lower is better; GFLOP/s and training images/s: higher is better.'
          + (' mAP: short schedule, see below.' if dsets else ''), '']
    tents, official = target_scale_entries(groups)
    tl = [t for e in tents for t in targets_for(e, force=True)]
    missed = [f'{e.name} ({"; ".join(t["what"] for t in targets_for(e, force=True) if t["status"] == "missed")})'
              for e in tents if any(t['status'] == 'missed' for t in targets_for(e, force=True))]
    S += [f'**Targets** ({"yolov5" + TARGET_SCALE if official else "informational, not at the issue scale"}): '
          f'{sum(t["status"] == "met" for t in tl)} of {len(tl)} met' + (f'; missed: {", ".join(missed)}.' if missed
                                                                         else '.'), '']
    i = L.index('## Machine')
    L[i:i] = S
    L += ['## Cost', '', '| model | params (M) | x plain | GFLOPs@640 | x plain |', '|---|---:|---:|---:|---:|']
    for e in ents:
        s, c = e.results['static'], e.results['cost']
        L.append(f'| {e.name} | {s["params"] / 1e6:.2f} | {c["params_ratio"]:.3f} | {s["gflops"]:.1f} | '
                 f'{c["gflops_ratio"]:.3f} |')
    L += ['', f'## Latency (batch 1, {opt.img}x{opt.img}, {meta["threads"]} threads)', '',
          '| model | PyTorch ms | ratio (IQR) | GFLOP/s | rate x plain '
          '| ORT ms | ratio (IQR) | GFLOP/s | rate x plain |',
          '|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for e in ents:
        cells = [e.name]
        for k in ('torch', 'onnx'):
            r = e.results.get(k)
            cells += ([fr(r['latency_ms'], 1), fratio(r['ratio']), fr(r['gflops_per_s'], 1), fr(r['rate_ratio'])]
                      if r else ['-'] * 4)
        L.append('| ' + ' | '.join(cells) + ' |')
    busy = [(e.name, k, e.results[k]['discarded'], e.results[k]['kept_busy']) for e in ents
            for k in ('torch', 'onnx', 'train') if k in e.results and 'discarded' in e.results[k]]
    if any(d or b for _, _, d, b in busy):
        L += ['', 'Timed pairs re-measured because other processes used more than '
              f'{opt.max_other} cores during them: ' + '; '.join(
                  f'{n} {k} {d}' + (f' ({b} kept although busy: waiting budget spent)' if b else '')
                  for n, k, d, b in busy if d or b) + f'; {meta.get("waited_min", 0):.1f} min spent waiting for a '
              'quiet machine.']
    elif busy and opt.max_other > 0:
        L += ['', f'No timed pair had other processes using more than {opt.max_other} cores.']
    L += ['', f'## Training (img {opt.train_img}, batch {opt.train_batch})', '',
          '| model | images/s | throughput ratio (IQR) | peak memory growth (MB) |', '|---|---:|---:|---:|']
    for e in ents:
        r, m = e.results.get('train'), e.results.get('memory', {})
        L.append(f'| {e.name} | {fr(r["images_per_s"]) if r else "-"} | {fratio(r["ratio"]) if r else "-"} | '
                 f'{fr(m.get("delta_mb"), 0) if "delta_mb" in m else "error: " + str(m.get("error"))} |')
    L.append('')

    if acc or acc_notes:
        L += ['## Accuracy: SHORT SCHEDULE (not a claim about COCO)', '',
              f'Every model trained **from scratch** by `yolov5/train.py` with the same seed ({opt.seed}), epochs '
              f'({opt.epochs}), batch ({opt.acc_batch}), optimizer ({opt.optimizer}) and hyperparameters '
              f'(`{rel(opt.hyp)}`), `--cache ram`, the recipe of the demo (docs/demo.md); '
              'mAP of the final epoch (results.csv), on the dataset\'s val split. A few CPU epochs only show which '
              'model learns faster early; rankings after a full schedule can differ.', '']
        for d, rows in acc.items():
            img = next((a['img'] for a in rows.values() if 'img' in a), '?')
            L += [f'### {d} (img {img})', '', '| model | mAP50 | mAP50-95 | P | R | train time (min) |',
                  '|---|---:|---:|---:|---:|---:|']
            for e in ents:
                a = rows.get(e.name)
                if not a:
                    continue
                if 'error' in a:
                    L.append(f'| {e.name} | error: {a["error"]} | | | | |')
                    continue
                note = f' (reused from {a["reused"]})' if a.get('reused') else ''
                L.append(f'| {e.name} | {a["mAP50"]:.3f} | {a["mAP50-95"]:.3f} | {a["P"]:.3f} | {a["R"]:.3f} | '
                         f'{(a["seconds"] or 0) / 60:.1f}{note} |')
            L.append('')
        L += [f'- {n}' for n in acc_notes] + ([''] if acc_notes else [])

    tents, official = target_scale_entries(groups)
    L += ['## Targets', '']
    if not official:
        L += [f'No yolov5{TARGET_SCALE}-scale default config in this run: the lines below apply the issue\'s '
              f'targets (defined at yolov5{TARGET_SCALE}) to the scales that were measured, for information.', '']
    L += ['| model | target | value | status |', '|---|---|---|---|']
    n_met = n_all = 0
    for e in tents:
        for t in targets_for(e, force=True):
            n_all += 1
            n_met += t['status'] == 'met'
            L.append(f'| {e.name} | {t["what"]} | {fmt_target(t).split(": ", 1)[1]} | **{t["status"]}** |')
    L += ['', f'{n_met} of {n_all} targets met.', '']

    prof = [e for e in ents if 'profile' in e.results]
    if prof:
        L += ['## Profile of the blocks that miss a target', '',
              f'Fused models, batch 1, {opt.img}x{opt.img}, {opt.profile_iters} forwards, same threads. Per layer: '
              'wall time of each swapped C3 position (forward hooks, median) and its achieved GFLOP/s; per op: '
              'self CPU time (torch.profiler) per forward.', '']
        for e in prof:
            p = e.results['profile']
            plain = groups[e.scale][0].name
            L += [f'### {e.name} vs {plain}', '',
                  f'Sum of top-level layers: {p["total_ext_ms"]:.1f} ms vs {p["total_plain_ms"]:.1f} ms'
                  + (f' ({p["discarded"]} rounds re-measured: other processes busy).' if p.get('discarded') else '.'),
                  '',
                  '| layer | plain | ms | GFLOP/s | ext | ms | GFLOP/s | time x plain |',
                  '|---:|---|---:|---:|---|---:|---:|---:|']
            for r in p['layers']:
                L.append(f'| {r["i"]} | {r["plain"]} | {r["plain_ms"]:.1f} | {r["plain_rate"]:.0f} | {r["ext"]} | '
                         f'{r["ext_ms"]:.1f} | {r["ext_rate"]:.0f} | {r["ext_ms"] / r["plain_ms"]:.2f} |')
            L += ['', '| op (ext) | calls | self ms | share | op (plain) | calls | self ms | share |',
                  '|---|---:|---:|---:|---|---:|---:|---:|']
            for a, b in zip(p['ops_ext'], p['ops_plain']):
                L.append(f'| {a["op"]} | {a["calls"]} | {a["self_ms"]:.1f} | {a["share"]:.0%} | {b["op"]} | '
                         f'{b["calls"]} | {b["self_ms"]:.1f} | {b["share"]:.0%} |')
            L.append('')

    if opt.notes:
        L += ['## Notes', ''] + [f'- {n}' for n in opt.notes] + ['']
    notes_file = Path(opt.notes_file) if opt.notes_file else out / 'benchmark_notes.md'
    if notes_file.is_file():
        L += [notes_file.read_text().rstrip(), '']
    if files:
        L += ['## Plots', ''] + [f'![{f}]({f})' for f in files] + ['']
    f = out / 'benchmark.md'
    f.write_text('\n'.join(L))
    return f


# ---------------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__.split('\n', 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cfg', nargs='+', default=None,
                    help='model YAMLs (default: models_yaml/yolov5<scale>-<family>.yaml for --scales x --families)')
    ap.add_argument('--scales', nargs='+', default=None, help='default: n s (--quick: n)')
    ap.add_argument('--families', nargs='+', default=list(FAMILIES))
    ap.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    ap.add_argument('--threads', type=int, default=None, help='CPU threads (default: all cores)')
    ap.add_argument('--img', type=int, default=None, help='latency image size (default 640; --quick: 320)')
    ap.add_argument('--runs', type=int, default=None, help='timed pairs per model and runtime (default 20, >= 10)')
    ap.add_argument('--warmup', type=int, default=None, help='warm-up pairs (default 3)')
    ap.add_argument('--train-img', type=int, default=320)
    ap.add_argument('--train-batch', type=int, default=8)
    ap.add_argument('--train-iters', type=int, default=None, help='timed training pairs (default 6)')
    ap.add_argument('--train-warmup', type=int, default=None, help='warm-up training pairs (default 2)')
    ap.add_argument('--no-onnx', action='store_true', help='skip onnxruntime')
    ap.add_argument('--max-other', type=float, default=None, metavar='CORES',
                    help='re-measure a timed pair during which other processes used more than CORES cores, once '
                         'the machine is quiet again (default 0.2; --quick: 0 = keep every pair)')
    ap.add_argument('--max-wait', type=float, default=60, metavar='MIN',
                    help='total minutes the run may wait for a quiet machine before keeping busy pairs (default 60)')
    ap.add_argument('--profile', choices=('missed', 'all', 'off'), default=None,
                    help='profile extension models that miss a latency/FLOP-rate target (default), all, or none')
    ap.add_argument('--profile-iters', type=int, default=5)
    ap.add_argument('--accuracy', action='store_true', help='also train every model for a short schedule (slow)')
    ap.add_argument('--epochs', type=int, default=30, help='accuracy: epochs (default 30, as the demo)')
    ap.add_argument('--optimizer', default='AdamW', choices=['SGD', 'Adam', 'AdamW'],
                    help='accuracy: train.py optimizer (default AdamW, what hyp.short-cpu.yaml is for)')
    ap.add_argument('--acc-data', nargs='+', default=['shapes', 'coco128'], help='shapes, coco128 and/or data yamls')
    ap.add_argument('--acc-scales', nargs='+', default=None,
                    help='scales to train (default: all in the run); DATA:SCALE limits one dataset, e.g. '
                         'shapes:n shapes:s coco128:n')
    ap.add_argument('--acc-img', type=int, default=None, help='default: 160 for shapes (as the demo), 320 otherwise')
    ap.add_argument('--acc-batch', type=int, default=16)
    ap.add_argument('--hyp', default=str(DEFAULT_HYP))
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--project', default=str(ROOT / 'runs' / 'benchmark'), help='accuracy training runs go here')
    ap.add_argument('--reuse-accuracy', action='store_true',
                    help='reuse a finished accuracy run with identical settings (cfg, data, hyp, epochs, ...)')
    ap.add_argument('--quick', action='store_true', help='smoke test: n scale (or --cfg), img 320, 3 runs, no accuracy')
    ap.add_argument('--wait-idle', type=float, default=0, metavar='MIN',
                    help='first wait up to MIN minutes for the 1-minute load average to drop below 0.5')
    ap.add_argument('--out', default=str(ROOT / 'docs'), help='report and plots go here')
    ap.add_argument('--notes-file', default=None,
                    help='Markdown appended to the report (default: <out>/benchmark_notes.md)')
    ap.add_argument('--report-only', action='store_true',
                    help='only rewrite the report and plots from <out>/benchmark.json (measures nothing)')
    ap.add_argument('--memory-probe', default=None, help=argparse.SUPPRESS)
    opt = ap.parse_args(argv)
    q = opt.quick
    opt.scales = opt.scales or (['n'] if q else ['n', 's'])
    opt.img = opt.img or (320 if q else 640)
    opt.runs = opt.runs or (3 if q else 20)
    opt.warmup = opt.warmup if opt.warmup is not None else (1 if q else 3)
    opt.train_iters = opt.train_iters or (2 if q else 6)
    opt.train_warmup = opt.train_warmup if opt.train_warmup is not None else (1 if q else 2)
    opt.profile = opt.profile or ('off' if q else 'missed')
    opt.max_other = opt.max_other if opt.max_other is not None else (0.0 if q else 0.2)
    if q:
        opt.accuracy = False
    opt.threads = opt.threads or os.cpu_count() or 1
    opt.hyp = str(Path(opt.hyp).resolve() if Path(opt.hyp).is_file() else ROOT / opt.hyp)
    opt.notes = []
    return opt


def main(argv=None) -> int:
    opt = parse_args(argv)
    if opt.report_only:
        return report_only(opt)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run cleanups (temp files, train.py) on kill
    import torch  # noqa: PLC0415

    torch.set_num_threads(opt.threads)
    if opt.memory_probe:  # internal: one model's training memory, in a fresh process
        print(json.dumps(train_memory_probe(opt.memory_probe, opt.train_img, opt.train_batch, opt.threads)))
        return 0

    from tqdm import tqdm  # noqa: PLC0415
    import extensions  # noqa: F401,PLC0415  (registers the blocks)
    import onnx  # noqa: PLC0415
    import onnxruntime  # noqa: PLC0415

    device = torch.device(opt.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device available')
    if device.type == 'cuda' and device.index is not None:
        torch.cuda.set_device(device)
    groups = resolve_groups(opt.cfg, opt.scales, opt.families)
    out = Path(opt.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if opt.wait_idle:
        wait_idle(opt.wait_idle)
    t_start = time.time()
    meta = {'date': dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
            'command': 'python scripts/benchmark.py ' + ' '.join(
                shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
            'cpu': cpu_model(), 'cpu_flags': cpu_flags(), 'cores': os.cpu_count(), 'threads': opt.threads,
            'device': device.type, 'gpu': torch.cuda.get_device_name(device) if device.type == 'cuda' else None,
            'python': platform.python_version(), 'torch': torch.__version__, 'onnxruntime': onnxruntime.__version__,
            'onnx': onnx.__version__, 'os': platform.platform(terse=True), 'load_start': loadavg()}
    print(f'benchmark: {", ".join(e.name for g in groups.values() for e in g)}; {meta["cpu"]}, {opt.threads} threads, '
          f'device {device}, load average {meta["load_start"]}', flush=True)
    if meta['load_start'] and meta['load_start'][0] > 0.5:
        print(f'WARNING: load average {meta["load_start"]}: the machine is busy, timings will be disturbed '
              '(--wait-idle MIN waits for it to calm down)', flush=True)

    n_ext = sum(len(g) - 1 for g in groups.values())
    n_all = sum(len(g) for g in groups.values())
    n_onnx = 0 if opt.no_onnx else 1
    total = n_all * (2 + n_onnx) + n_ext * (opt.runs * (1 + n_onnx) + opt.train_iters)
    watch = CpuWatch()
    with tqdm(total=total, desc='latency', unit='step', file=sys.stderr, dynamic_ncols=True) as pbar:
        meta['waited_min'] = measure_latency(groups, opt, device, pbar)
    meta['load_after_timing'] = loadavg()
    meta['other_cores'] = round(watch.others(), 3)
    meta['timing_min'] = (time.time() - t_start) / 60

    acc, acc_notes = {}, []
    if opt.accuracy:
        data, acc_notes = accuracy_datasets(opt)
        todo = [(d, e) for d in data for s in accuracy_scales(opt.acc_scales, d, groups) for e in groups[s]]
        project = Path(opt.project).resolve()
        with tqdm(total=len(todo) * opt.epochs, desc='accuracy', unit='epoch', file=sys.stderr,
                  dynamic_ncols=True) as pbar:
            for d, e in todo:
                pbar.set_description(f'accuracy {d}: {e.name}')
                acc.setdefault(d, {})[e.name] = train_accuracy(e, d, data[d], opt, project, pbar.update)
    meta['load_end'] = loadavg()
    meta['duration_min'] = (time.time() - t_start) / 60

    finish(groups, acc, acc_notes, meta, opt, out)
    return 0


def finish(groups, acc, acc_notes, meta, opt, out: Path) -> None:
    """Plots, report and JSON into out; the table and the targets on stdout."""
    files = plots(groups, acc, out)
    report = write_report(groups, acc, acc_notes, meta, opt, out, files)
    dump = {'meta': meta, 'options': {k: v for k, v in vars(opt).items() if k not in ('memory_probe', 'report_only')},
            'models': [{**{k: v for k, v in asdict(e).items() if k != 'results'},
                        'results': {k: v for k, v in e.results.items() if not k.startswith('_')}}
                       for g in groups.values() for e in g],
            'accuracy': acc, 'accuracy_notes': acc_notes,
            'targets': {e.name: targets_for(e, force=True) for g in groups.values() for e in g}}
    (out / 'benchmark.json').write_text(json.dumps(dump, indent=1, default=str) + '\n')

    print(f'\nreport: {report}\nplots: {", ".join(str(out / f) for f in files)}\n')
    print(f'{"model":<18}{"params":>8}{"GFLOPs":>8}{"PT lat":>9}{"PT x":>7}{"ORT lat":>9}{"ORT x":>7}{"train x":>9}')
    for g in groups.values():
        for e in g:
            c, tr, on, tt = e.results['cost'], e.results.get('torch'), e.results.get('onnx'), e.results.get('train')
            print(f'{e.name:<18}{c["params_ratio"]:>8.3f}{c["gflops_ratio"]:>8.3f}'
                  f'{(fr(tr["latency_ms"], 1) + "ms") if tr else "-":>9}{fr(tr["ratio"]["median"]) if tr else "-":>7}'
                  f'{(fr(on["latency_ms"], 1) + "ms") if on else "-":>9}{fr(on["ratio"]["median"]) if on else "-":>7}'
                  f'{fr(tt["ratio"]["median"]) if tt else "-":>9}')
    tents, official = target_scale_entries(groups)
    print('\ntargets' + ('' if official else f' (no yolov5{TARGET_SCALE} configs in this run: informational, '
                                               f'at the measured scales)') + ':')
    for e in tents:
        for t in targets_for(e, force=True):
            print(f'  {t["status"].upper():<12} {e.name}: {fmt_target(t)}')
    if meta['other_cores'] > 0.1:
        print(f'WARNING: other processes used {meta["other_cores"]:.2f} cores during timing: timings disturbed')
    print(f'\ndone in {meta["duration_min"]:.1f} min')


def report_only(opt) -> int:
    """Rewrite the report and plots from <out>/benchmark.json (e.g. after editing benchmark_notes.md)."""
    out = Path(opt.out).resolve()
    f = out / 'benchmark.json'
    if not f.is_file():
        raise SystemExit(f'--report-only: no {f}')
    d = json.loads(f.read_text())
    old = parse_args([])  # defaults for options an older JSON may lack
    vars(old).update(d['options'])
    old.notes_file = opt.notes_file
    groups: dict[str, list[Entry]] = {}
    for m in d['models']:
        groups.setdefault(m['scale'], []).append(Entry(**m))
    finish(groups, d['accuracy'], d.get('accuracy_notes', []), d['meta'], old, out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
