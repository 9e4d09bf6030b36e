"""What users pay where they train: each model against its plain reference on a GPU, in alternating pairs.

Models (:data:`~.settings.GPU_MODELS`): YOLOv5 with the family blocks against plain YOLOv5 of its scale, the
full-backbone YAMLs and yolov5l against yolov5m, at ``img``; and timm's own classifiers (res2net50d, resnest50d
against resnet50d; seresnet50, resnetrs50 against resnet50; ``pretrained=False``) at ``timm_img``, whose ratio is
the design's own cost outside this repository. Passes (:data:`~.settings.GPU_PASSES`):

* ``infer-b1``: batch 1, eval (YOLOv5: fused), ``inference_mode``, eager;
* ``infer-b1-graph``: the same forward captured once as a CUDA graph (after warm-up on a side stream, on a static
  input) and replayed; CUDA only, recorded as skipped on the CPU or where capture fails;
* ``infer-batch``: batch ``batch``, as throughput (images/s);
* ``train-deterministic``: one training step at ``batch`` as yolov5/train.py runs it (:class:`.training.Trainer`:
  autocast, model, ComputeLoss, scaled backward, unscale, clip, SGD step, EMA; timm: cross-entropy, scaled
  backward, SGD step) under train.py's ``init_seeds(deterministic=True)`` flags;
* ``train-benchmark``: the same step with ``cudnn.benchmark`` on and deterministic algorithms off.

Inference passes run with cudnn.benchmark on. AMP (fp16 autocast, GradScaler) on CUDA with ``amp``; on the CPU
float32, with a note. Each pass is ``pairs`` timed (model, reference) pairs in alternating order after ``warmup``
pairs (:func:`.reference._pairs`; CUDA: synchronised wall time); the ratio model/reference is the median of the
per-pair ratios, with quartiles. torch's global flags, threads and CUBLAS_WORKSPACE_CONFIG are restored after.
:func:`run` raises ValueError on a CUDA device torch cannot see, ImportError without timm; it prints nothing.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics

import torch
import torch.nn.functional as F

from .build import build, fused
from .reference import _pairs, _quartiles, _timm
from .results import GpuCase, GpuPass, GpuResult
from .settings import BASE, GPU_CUDA_ONLY, GPU_PASSES, ROOT, GpuSettings, gpu_reference
from .training import Trainer, loss_hyp

CUBLAS = ':4096:8'  # train.py's CUBLAS_WORKSPACE_CONFIG (utils/general.py init_seeds)


# ---------------------------------------------------------------------------------------------------- flags
def flags() -> tuple:
    """torch's global determinism flags: deterministic algorithms (and warn-only), cudnn deterministic, benchmark."""
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)


@contextlib.contextmanager
def determinism(deterministic: bool):
    """train.py's flags (use_deterministic_algorithms, cudnn.deterministic, cudnn.benchmark off), or cudnn.benchmark
    on and non-deterministic; the previous flags restored on exit."""
    saved = flags()
    try:
        torch.use_deterministic_algorithms(deterministic)
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


# --------------------------------------------------------------------------------------------------- models
def is_yolo(name: str) -> bool:
    return name.startswith('yolov5')


def cfg(name: str) -> str:
    """yolov5<scale>: the pinned YOLOv5's YAML; yolov5<scale>-<suffix>: models_yaml/."""
    return str((ROOT / 'models_yaml' if '-' in name else BASE / 'models') / f'{name}.yaml')


def eval_model(name: str, dev: torch.device, seed: int):
    """The inference model: YOLOv5 fused and eval, timm's eval (random weights)."""
    torch.manual_seed(seed)
    with torch.no_grad():  # fused weights without an autograd history
        m = fused(build(cfg(name))) if is_yolo(name) else _timm().create_model(name, pretrained=False).eval()
    return m.to(dev)


class ClsTrainer:
    """A timm classifier's training step, as Trainer's: autocast, cross-entropy on a fixed batch, scaled backward,
    SGD step, zero_grad."""

    def __init__(self, name: str, dev: torch.device, img: int, batch: int, amp: bool, seed: int):
        torch.manual_seed(seed)
        self.model = _timm().create_model(name, pretrained=False).to(dev).train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.937, weight_decay=5e-4)
        self.amp = amp
        self.scaler = torch.amp.GradScaler('cuda', enabled=amp)
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(batch, 3, img, img, generator=g).to(dev)
        self.y = torch.randint(0, 1000, (batch,), generator=g).to(dev)

    def step(self):
        with torch.amp.autocast('cuda', enabled=self.amp):
            loss = F.cross_entropy(self.model(self.x), self.y)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad()


def trainer(name: str, dev: torch.device, img: int, batch: int, amp: bool, seed: int):
    if is_yolo(name):
        return Trainer(cfg(name), dev, img, batch, loss_hyp(), amp=amp)
    return ClsTrainer(name, dev, img, batch, amp, seed)


# ---------------------------------------------------------------------------------------------------- passes
def _infer(m, x: torch.Tensor, amp: bool):
    def run():
        with torch.inference_mode(), torch.autocast(x.device.type, torch.float16, enabled=amp, cache_enabled=False):
            m(x)
    return run


def _graph(m, x: torch.Tensor, amp: bool, warmup: int):
    """The replay of m(x) captured as a CUDA graph, after warm-up on a side stream (as torch's docs do)."""
    run = _infer(m, x, amp)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(max(3, warmup)):
            run()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.autocast('cuda', torch.float16, enabled=amp, cache_enabled=False), \
            torch.cuda.graph(g):
        m(x)
    return g.replay


def _record(name: str, batch: int, ta: list, tb: list) -> GpuPass:
    r = [a / b for a, b in zip(ta, tb)]
    q1, q3 = _quartiles(r)
    ma, mb = statistics.median(ta), statistics.median(tb)
    return GpuPass(name, batch, ma * 1e3, mb * 1e3, batch / ma, batch / mb, statistics.median(r), q1, q3, len(r))


def _first(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _free(dev: torch.device) -> None:
    gc.collect()
    if dev.type == 'cuda':
        torch.cuda.empty_cache()


def _case(model: str, s: GpuSettings, dev: torch.device, tick) -> GpuCase:
    ref, yolo = gpu_reference(model), is_yolo(model)
    img, cuda = (s.img if yolo else s.timm_img), dev.type == 'cuda'
    amp, sync = s.amp and cuda, torch.cuda.synchronize if cuda else (lambda: None)
    todo = [p for p in GPU_PASSES if p in s.passes]
    out = []
    infer = [p for p in todo if p.startswith('infer')]
    if infer:
        pm, pr = eval_model(model, dev, s.seed), eval_model(ref, dev, s.seed)
        g = torch.Generator().manual_seed(s.seed)
        x1, xb = (torch.rand(b, 3, img, img, generator=g).to(dev) for b in (1, s.batch))
        for p in infer:
            batch, x = (s.batch, xb) if p == 'infer-batch' else (1, x1)
            if p in GPU_CUDA_ONLY and not cuda:
                out.append(GpuPass(p, batch, skipped='CUDA only'))
            else:
                with determinism(False):
                    try:
                        fm, fr = ((_graph(pm, x.clone(), amp, s.warmup), _graph(pr, x.clone(), amp, s.warmup))
                                  if p == 'infer-b1-graph' else (_infer(pm, x, amp), _infer(pr, x, amp)))
                    except RuntimeError as e:  # a capture that fails is the finding, not a crash of the part
                        out.append(GpuPass(p, batch, skipped=f'CUDA graph capture failed: {_first(e)}'))
                    else:
                        out.append(_record(p, batch, *_pairs(fm, fr, s.pairs, s.warmup, sync)))
                    fm = fr = None
            tick()
        del pm, pr, x1, xb
        _free(dev)
    train = [p for p in todo if p.startswith('train')]
    if train:
        tm, tr = trainer(model, dev, img, s.batch, amp, s.seed), trainer(ref, dev, img, s.batch, amp, s.seed)
        for p in train:
            det = p == 'train-deterministic'
            with determinism(det):
                try:
                    out.append(_record(p, s.batch, *_pairs(tm.step, tr.step, s.pairs, s.warmup, sync)))
                except RuntimeError as e:  # an op without a deterministic kernel: train.py would stop there too
                    if not (det and 'deterministic' in str(e)):
                        raise
                    out.append(GpuPass(p, s.batch, skipped=f'fails under use_deterministic_algorithms: {_first(e)}'))
            tick()
        del tm, tr
        _free(dev)
    return GpuCase(model, ref, 'yolo' if yolo else 'timm', img, tuple(out))


def run(s: GpuSettings, progress=None) -> GpuResult:
    """Time every model of ``s`` against its reference (see the module docstring). ``progress``: an optional
    tqdm-like bar, one step per model and pass."""
    dev = torch.device(s.device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f"GpuSettings.device={s.device!r}: this torch sees no CUDA device. Fix: run on a machine "
                         "with a GPU, or device='cpu' with small settings (a check of the plumbing, not a timing)")
    timm = _timm()
    cuda = dev.type == 'cuda'
    notes = ['fp16 autocast and GradScaler (AMP)' if s.amp and cuda else
             'float32' + (' (AMP asked for: skipped, CUDA only)' if s.amp else '')]
    if cuda:
        notes.append('inference: cudnn.benchmark on, non-deterministic')
    if cuda and 'train-deterministic' in s.passes:
        notes.append(f'CUBLAS_WORKSPACE_CONFIG={CUBLAS} for the whole part (train.py sets it; torch reads it at '
                     'first cuBLAS use)')
    if not cuda and any(p in s.passes for p in GPU_CUDA_ONLY):
        notes.append(f'{", ".join(p for p in GPU_CUDA_ONLY if p in s.passes)}: skipped, CUDA only')
    threads, env = torch.get_num_threads(), os.environ.get('CUBLAS_WORKSPACE_CONFIG')  # flags: determinism()
    if progress is not None:
        progress.total = len(s.models) * len(s.passes)
        progress.refresh()
    tick = progress.update if progress is not None else (lambda n=1: None)
    try:
        if s.threads is not None:
            torch.set_num_threads(s.threads)
        if 'train-deterministic' in s.passes:
            os.environ['CUBLAS_WORKSPACE_CONFIG'] = CUBLAS
        if cuda and dev.index is not None:
            torch.cuda.set_device(dev)
        cases = []
        for m in s.models:
            if progress is not None:
                progress.set_description(f'gpu: {m} vs {gpu_reference(m)}')
            cases.append(_case(m, s, dev, tick))
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
        if env is None:
            os.environ.pop('CUBLAS_WORKSPACE_CONFIG', None)
        else:
            os.environ['CUBLAS_WORKSPACE_CONFIG'] = env
    name = torch.cuda.get_device_name(dev) if cuda else 'CPU'
    return GpuResult(name, used, torch.__version__, timm.__version__,
                     torch.backends.cudnn.version() if cuda else None, tuple(cases), tuple(notes))
