"""Warm start: put a block family into a trained plain YOLOv5 without losing what it learned.

:func:`warm_start` builds the YAML model (e.g. ``models_yaml/yolov5s-res2.yaml``), pairs it layer by layer with a
trained YOLOv5 checkpoint (:mod:`.layers`), copies every tensor that matches, fits each swapped block to
reproduce the plain layer it replaces (:mod:`.fit`), and returns a start checkpoint that
``train.py --weights start.pt --cfg <yaml>`` loads with every tensor but the anchors transferred.
``scripts/warm_start.py`` is the command line; docs/warm_start.md the guide.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from utils.general import check_dataset

from ..checkpoints import file_sha256
from ..compat import load_checkpoint
from ..pretrained import build_model
from . import fit
from .layers import Pair, WarmStartError, copy_matching, pair_layers

__all__ = ['WarmStartSettings', 'LayerFit', 'WarmStartResult', 'WarmStartError', 'warm_start', 'Pair']


@dataclass(frozen=True)
class WarmStartSettings:
    """How the swapped layers are fitted (defaults: the best measured on yolov5n, docs/warm_start.md)."""

    img: int = 320  # letterboxed image size of the fitting and of the mAP evaluation
    steps: int = 60  # layer-wise steps (teacher inputs) of the swapped layers that do not feed Detect
    head_steps: int = 250  # layer-wise steps of those that feed Detect (their errors reach the boxes directly)
    e2e_steps: int = 0  # then end-to-end steps (the student's own inputs, same per-layer targets)
    batch: int = 8  # images per step
    lr: float = 4e-3  # Adam, cosine to 0
    train_copied: bool = True  # the copied tensors of swapped layers (C3's cv1/cv2/cv3) train too
    train_images: int = 256  # at most this many train-split images are decoded and used
    pool_batches: int = 16  # augmented batches whose teacher activations are computed once and reused
    pool_mb: int = 2048  # at most this many MiB of them held (fewer batches: redrawn after each pass)
    val_images: int = 32  # held-out val-split images for the relative errors
    bn_batches: int = 16  # batches to re-estimate the swapped layers' BatchNorm statistics
    seed: int = 0  # fitting images, augmentation and the swapped blocks' initialisation
    device: str = 'cpu'  # 'cpu', 'cuda', '0', 'cuda:1'
    threads: int = 0  # CPU threads of the fitting; 0: by the work per step (fit_threads), docs/warm_start.md
    evaluate: bool = True  # mAP50-95 on the val split of the plain checkpoint and of the start model
    val_batch: int = 32

    def check(self) -> None:
        for name in ('img', 'steps', 'head_steps', 'batch', 'train_images', 'val_images', 'bn_batches', 'val_batch',
                     'pool_batches', 'pool_mb'):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                flag = '--' + name.replace('_', '-')
                raise WarmStartError(f'{name} must be a positive integer, got {v!r}. Fix: pass {flag} >= 1')
        if not isinstance(self.e2e_steps, int) or self.e2e_steps < 0:
            raise WarmStartError(f'e2e_steps must be an integer >= 0, got {self.e2e_steps!r}')
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 0:
            raise WarmStartError(f'threads must be an integer >= 0 (0: chosen by the work per step), got '
                                 f'{self.threads!r}. Fix: --threads 0')
        if self.img % 32:
            raise WarmStartError(f'img must be a multiple of 32 (the model stride), got {self.img}. Fix: --img '
                                 f'{max(32, round(self.img / 32) * 32)}')
        if not self.lr > 0:
            raise WarmStartError(f'lr must be > 0, got {self.lr}')


@dataclass(frozen=True)
class LayerFit:
    """One swapped layer: relative error ``||student - teacher|| / ||teacher||`` on held-out val images, with the
    teacher's input to the layer, after the tensor copy and after the fitting; ``chained``: after the fitting, on
    the student's own input (the whole start model, errors of earlier layers included)."""

    index: int
    teacher: str
    student: str
    before: float
    after: float
    chained: float


@dataclass(frozen=True)
class WarmStartResult:
    layers: tuple  # LayerFit per swapped layer; empty for a YAML without swapped layers
    pairs: tuple  # Pair per layer
    copied: int  # state-dict entries copied whole from the checkpoint
    partial: tuple  # entries copied in part (Detect box/objectness rows, when the class count differs)
    total: int  # state-dict entries of the start model
    transferable: int  # entries train.py --weights start.pt transfers (all but the anchors)
    nc: int  # classes of the start model (from the data yaml)
    map_plain: float | None  # val mAP50-95 of the checkpoint (None: not evaluated, or another class count)
    map_start: float | None  # val mAP50-95 of the start model, before any fine-tuning
    cpu_s: float  # CPU seconds of this process (all threads) for the whole warm start
    wall_s: float
    losses: tuple = ()  # loss of every fitting step (layer-wise, then end-to-end)
    val_cpu_s: float = 0.0  # the part of cpu_s spent on the two mAP evaluations (reporting, not the warm start)
    threads: int = 0  # torch's CPU threads it ran with
    checkpoint: dict = field(default=None, repr=False, compare=False)  # for train.py --weights (torch.save it)

    @property
    def swapped(self) -> int:
        return len(self.layers)


def _device(name: str):
    name = str(name).strip()
    if name.isdigit():
        name = f'cuda:{name}'
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise WarmStartError(f'device {name!r}: {e}. Fix: --device cpu, or a GPU index such as 0') from e
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise WarmStartError(f'device {name!r}: no CUDA GPU is available here. Fix: --device cpu')
    return dev


MIB_PER_THREAD = 20.0  # activations per fitting batch (inputs + outputs of the swapped layers) per CPU thread


def fit_threads(mib: float, available: int) -> int:
    """CPU threads for fitting batches of ``mib`` MiB of activations: one per ``MIB_PER_THREAD``, at least 1, at
    most ``available``. Small steps leave extra threads spinning between ops (yolov5n at 160 px, 10.5 MiB: 2 threads
    1.25x faster for 1.6x the CPU); large ones share well (yolov5s at 320 px, 84 MiB: 1.7x faster for 1.14x)."""
    return max(1, min(available, int(mib // MIB_PER_THREAD)))


def read_data(data) -> dict:
    """A YOLOv5 data yaml resolved as train.py resolves it (``check_dataset``: paths, ``nc`` from ``names``);
    WarmStartError for a missing file, missing fields or missing images (nothing is downloaded)."""


    data = Path(data)
    if not data.is_file():
        raise WarmStartError(f'data yaml {data} not found. Fix: pass --data with an existing YOLOv5 data yaml')
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            d = check_dataset(str(data), autodownload=False)
    except Exception as e:  # AssertionError, OfflineError, YAML errors: one line naming the file
        msg = ' '.join(str(e).split()) or type(e).__name__
        raise WarmStartError(f'data yaml {data}: {msg}') from e
    return d


def _teacher(ckpt: dict, weights: Path):
    model = ckpt.get('ema') or ckpt.get('model')
    if not hasattr(model, 'model') or not hasattr(model, 'yaml') or not len(getattr(model, 'model', ())):
        raise WarmStartError(f'{weights} holds a {type(model).__name__} under "model", not a YOLOv5 detection '
                             f'model. Fix: pass a checkpoint written by YOLOv5\'s train.py (last.pt / best.pt)')
    return model.float().eval()


def warm_start(weights: Path, cfg: Path, data: Path, settings: WarmStartSettings = WarmStartSettings(),
               progress=None) -> WarmStartResult:
    """Warm-start the YAML model ``cfg`` from the trained YOLOv5 checkpoint ``weights`` on ``data``'s images.

    Checks everything (settings, files, layer pairing) before any fitting; raises :class:`WarmStartError`
    (or :class:`~extensions.compat.CheckpointError` for an unreadable checkpoint) otherwise. Writes nothing:
    save ``result.checkpoint`` (e.g. ``extensions.outputs.save_atomic``). ``progress(stage, step, steps, loss)``
    is called after every fitting step (stages ``'layers'``, ``'e2e'``). The result carries per-layer relative
    errors, transferred tensor counts, the mAP of both models (``settings.evaluate``) and the CPU seconds.
    """


    cpu0, wall0 = time.process_time(), time.perf_counter()
    settings.check()
    threads = torch.get_num_threads()
    try:
        return _warm_start(weights, cfg, data, settings, progress, cpu0, wall0)
    finally:
        torch.set_num_threads(threads)  # the caller's, whatever the fitting used


def _warm_start(weights, cfg, data, settings: WarmStartSettings, progress, cpu0: float, wall0: float):
    weights, cfg = Path(weights), Path(cfg)
    device = _device(settings.device)
    if not cfg.is_file():
        raise WarmStartError(f'model YAML {cfg} not found. Fix: pass --cfg, e.g. models_yaml/yolov5s-res2.yaml')
    d = read_data(data)
    train_files = fit.image_files(d['train'], 'train')
    val_files = fit.image_files(d['val'], 'val')
    if not weights.is_file():
        raise WarmStartError(f'checkpoint {weights} not found. Fix: pass --weights with a trained YOLOv5 .pt '
                             f'(e.g. runs/train/exp/weights/best.pt)')
    teacher = _teacher(load_checkpoint(weights), weights)
    names = [str(d['names'][k]) for k in sorted(d['names'])]
    torch.manual_seed(settings.seed)
    student = build_model(cfg, nc=len(names)).float()
    student.names = names
    pairs = pair_layers(teacher, student, str(weights), str(cfg))
    counts = copy_matching(teacher, student, pairs)
    teacher.to(device)
    student.to(device)
    idx = [p.index for p in pairs if p.kind == 'swap']
    threads = settings.threads or (torch.get_num_threads() if device.type != 'cpu' or not idx else
                                   fit_threads(fit.activation_mib(teacher, idx, settings.img, settings.batch, device),
                                               torch.get_num_threads()))
    torch.set_num_threads(threads)

    rng = np.random.default_rng(settings.seed)
    layers, losses = (), []
    if idx:
        train = fit.Images(train_files, settings.img, settings.train_images, rng)
        held = fit.Images(val_files, settings.img, settings.val_images, np.random.default_rng(settings.seed + 1))
        before = fit.relative_errors(teacher, student, idx, held, settings.batch, device)
        parts = fit.Parts(student, idx, counts['keys'], settings.train_copied)
        pool = fit.Pool(teacher, train, idx, settings.pool_batches, settings.batch, device, settings.pool_mb)
        f = student.model[-1].f
        head = set(f if isinstance(f, list) else [f])  # the layers Detect reads
        steps = {i: settings.head_steps if i in head else settings.steps for i in idx}
        losses += fit.distil(parts, pool, steps=steps, lr=settings.lr, progress=progress, stage='layers')
        if settings.e2e_steps:
            losses += fit.distil(parts, pool, steps=settings.e2e_steps, lr=settings.lr / 4, own_inputs=True,
                                 progress=progress, stage='e2e')
        fit.recalibrate_bn(parts, pool, own_inputs=settings.e2e_steps > 0, batches=settings.bn_batches)
        del pool
        after = fit.relative_errors(teacher, student, idx, held, settings.batch, device)
        chained = fit.relative_errors(teacher, student, idx, held, settings.batch, device, own_inputs=True)
        layers = tuple(LayerFit(i, pairs[i].teacher, pairs[i].student, before[i], after[i], chained[i]) for i in idx)

    map_plain = map_start = None
    cpu_val = time.process_time()
    if settings.evaluate:
        if int(getattr(teacher.model[-1], 'nc', -1)) == len(names):
            map_plain = fit.val_map(teacher, d, settings.img, settings.val_batch)
        map_start = fit.val_map(student, d, settings.img, settings.val_batch)
    student.float().eval().cpu()
    teacher.cpu()
    anchors = sum(1 for k in student.state_dict() if 'anchor' in k)
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    val_cpu_s = time.process_time() - cpu_val
    record = {'source': str(weights), 'sha256': file_sha256(weights), 'cfg': str(cfg), 'data': str(data),
              'settings': asdict(settings), 'swapped': [asdict(layer) for layer in layers],
              'copied': counts['copied'], 'partial': list(counts['partial']), 'map_plain': map_plain,
              'map_start': map_start, 'cpu_s': cpu_s, 'val_cpu_s': val_cpu_s, 'threads': threads}
    ckpt = {'epoch': -1, 'best_fitness': None, 'model': student, 'ema': None, 'updates': None, 'optimizer': None,
            'opt': None, 'git': None, 'date': datetime.now().isoformat(), 'warm_start': record}
    return WarmStartResult(layers, tuple(pairs), counts['copied'], tuple(counts['partial']), counts['total'],
                           counts['total'] - anchors, len(names), map_plain, map_start, cpu_s, wall_s, tuple(losses),
                           val_cpu_s=val_cpu_s, threads=threads, checkpoint=ckpt)
