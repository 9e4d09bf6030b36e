"""Fitting the swapped layers of a YAML model to the trained plain model's layers (layer-wise distillation).

Every swapped layer learns from the teacher's own input to that layer (so errors do not compound), its target
the teacher layer's output, its loss the MSE divided by the target's variance; only the swapped layers'
parameters train. An optional end-to-end pass then runs the student on its own inputs with the same per-layer
losses, so each layer also corrects what the layers before it still get wrong. At the end the swapped layers'
BatchNorm statistics are re-estimated on the data (as the student computes them).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn

from .layers import WarmStartError

IMG_SUFFIXES = ('.bmp', '.dng', '.jpeg', '.jpg', '.mpo', '.png', '.tif', '.tiff', '.webp', '.pfm')  # YOLOv5's


# ---------------------------------------------------------------------------------------------------- images
def image_files(source, what: str) -> list[Path]:
    """Image paths of a split as YOLOv5 lists them: a directory (searched recursively), a .txt of paths (relative
    to the file's folder), a single image, or a list of those. WarmStartError if there are none."""
    files = []
    for s in source if isinstance(source, (list, tuple)) else [source]:
        p = Path(s)
        if p.is_dir():
            files += sorted(f for f in p.rglob('*.*') if f.suffix.lower() in IMG_SUFFIXES)
        elif p.is_file() and p.suffix == '.txt':
            for line in p.read_text().splitlines():
                f = Path(line.strip())
                if line.strip():
                    files.append(f if f.is_absolute() else (p.parent / f).resolve())
        elif p.is_file() and p.suffix.lower() in IMG_SUFFIXES:
            files.append(p)
    files = [f for f in files if f.suffix.lower() in IMG_SUFFIXES]
    if not files:
        raise WarmStartError(f'no images in the {what} split ({source}). Fix: point the data yaml\'s {what}: at a '
                             f'folder (or .txt list) of images')
    return files


class Images:
    """Images of one split, decoded once and resized so that the long side is ``img``; batches are letterboxed to
    ``img`` x ``img`` (grey 114, as YOLOv5), with random scale jitter and left-right flips when ``augment``."""

    def __init__(self, files: list[Path], img: int, limit: int, rng: np.random.Generator):
        if len(files) > limit:
            files = [files[i] for i in sorted(rng.choice(len(files), limit, replace=False))]
        self.img, self.rng, self.images = img, rng, []
        for f in files:
            im = cv2.imread(str(f))
            if im is None:
                raise WarmStartError(f'{f}: cannot read this image (OpenCV). Fix: remove or replace the file')
            r = img / max(im.shape[:2])
            h, w = max(1, round(im.shape[0] * r)), max(1, round(im.shape[1] * r))
            self.images.append(cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR))

    def __len__(self) -> int:
        return len(self.images)

    def _letterbox(self, im, scale: float, flip: bool) -> np.ndarray:
        if scale != 1.0:
            im = cv2.resize(im, (max(1, round(im.shape[1] * scale)), max(1, round(im.shape[0] * scale))))
        if flip:
            im = im[:, ::-1]
        out = np.full((self.img, self.img, 3), 114, np.uint8)
        h, w = im.shape[:2]
        top, left = (self.img - h) // 2, (self.img - w) // 2
        out[top:top + h, left:left + w] = im
        return out

    def batch(self, idx, augment: bool) -> torch.Tensor:
        """Float RGB batch ``[B, 3, img, img]`` in [0, 1] of the images ``idx``."""
        ims = []
        for i in idx:
            scale = float(self.rng.uniform(0.7, 1.0)) if augment else 1.0
            flip = bool(self.rng.random() < 0.5) if augment else False
            ims.append(self._letterbox(self.images[i], scale, flip))
        x = np.ascontiguousarray(np.stack(ims)[..., ::-1].transpose(0, 3, 1, 2))  # BGR -> RGB, HWC -> CHW
        return torch.from_numpy(x).float().div_(255)

    def batches(self, batch: int):
        """Every image once, in order, without augmentation."""
        for i in range(0, len(self), batch):
            yield self.batch(range(i, min(i + batch, len(self))), False)


# ------------------------------------------------------------------------------------------- layer activations
class Recorder:
    """Forward hooks on layers ``idx`` of a YOLOv5 model: their inputs and outputs of the last forward."""

    def __init__(self, model, idx):
        self.inputs, self.outputs = {}, {}
        self.hooks = [model.model[i].register_forward_hook(self._hook(i)) for i in idx]

    def _hook(self, i):
        def hook(_m, args, out):
            self.inputs[i], self.outputs[i] = args[0], out
        return hook

    def remove(self):
        for h in self.hooks:
            h.remove()


def teacher_run(teacher, x, idx) -> tuple[dict, dict]:
    """Inputs and outputs of the teacher's layers ``idx`` for the batch ``x`` (eval, no grad)."""
    rec = Recorder(teacher, idx)
    try:
        with torch.no_grad():
            teacher(x)
    finally:
        rec.remove()
    return rec.inputs, rec.outputs


def activation_mib(teacher, idx, img: int, batch: int, device) -> float:
    """MiB of the teacher's inputs and outputs of layers ``idx`` for one batch of ``batch`` images at ``img``: the
    size of one fitting step's work (a blank batch; shapes do not depend on the pixels)."""
    tin, tout = teacher_run(teacher, torch.zeros(batch, 3, img, img, device=device), idx)
    return sum(t.numel() * t.element_size() for d in (tin, tout) for t in d.values()) / 2 ** 20


def norm_mse(y, t) -> torch.Tensor:
    """MSE divided by the target's variance: 1.0 for a constant prediction of the target's mean."""
    return (y - t).pow(2).mean() / t.var().clamp_min(1e-8)


def relative_errors(teacher, student, idx, images: Images, batch: int, device, own_inputs: bool = False) -> dict:
    """``||student - teacher|| / ||teacher||`` of each layer in ``idx`` over ``images`` (eval). With teacher inputs
    (each layer alone), or with ``own_inputs`` the student's (the whole model: errors compound)."""
    num, den = dict.fromkeys(idx, 0.0), dict.fromkeys(idx, 0.0)
    was = student.training
    student.eval()
    try:
        with torch.no_grad():
            for x in images.batches(batch):
                x = x.to(device)
                tin, tout = teacher_run(teacher, x, idx)
                sout = teacher_run(student, x, idx)[1] if own_inputs else {i: student.model[i](tin[i]) for i in idx}
                for i in idx:
                    num[i] += float((sout[i] - tout[i]).pow(2).sum())
                    den[i] += float(tout[i].pow(2).sum())
    finally:
        student.train(was)
    return {i: math.sqrt(num[i] / max(den[i], 1e-12)) for i in idx}


# ------------------------------------------------------------------------------------------------- the fitting
class Parts:
    """The swapped layers ``idx`` of ``student`` split by origin: BatchNorm layers and parameters copied from the
    checkpoint (``copied``: state-dict names) keep the checkpoint's statistics (eval mode, never re-estimated), and
    train only when ``train_copied``; the new ones train with batch statistics and are re-estimated at the end."""

    def __init__(self, student, idx, copied: set, train_copied: bool):
        self.student, self.idx = student, list(idx)
        self.new_bns, self.layer_params = [], {}  # layer index -> its parameters that train
        for i in self.idx:
            prefix = f'model.{i}.'
            for name, m in student.model[i].named_modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and f'{prefix}{name}.weight' not in copied:
                    self.new_bns.append(m)
            self.layer_params[i] = [p for name, p in student.model[i].named_parameters()
                                    if train_copied or f'{prefix}{name}' not in copied]
        self.params = [p for i in self.idx for p in self.layer_params[i]]

    def train(self):
        """Everything in eval mode but the new BatchNorm layers; only ``params`` require gradients."""
        self.student.eval()
        for m in self.new_bns:
            m.train()
        for p in self.student.parameters():
            p.requires_grad_(False)
        for p in self.params:
            p.requires_grad_(True)

    def done(self):
        for p in self.student.parameters():
            p.requires_grad_(True)
        self.student.eval()


class Pool:
    """Fitting batches with the teacher's inputs and outputs of the swapped layers ``idx``, computed once: the
    teacher runs once per image, not once per step. ``batches`` augmented batches of ``batch`` images, at most
    ``max_mb`` MiB of activations; when that holds fewer batches, :meth:`refresh` draws new ones after every pass."""

    def __init__(self, teacher, images: Images, idx, batches: int, batch: int, device, max_mb: float):
        self.teacher, self.images, self.idx, self.batch, self.device = teacher, images, list(idx), batch, device
        self.items, self.wanted = [], batches
        self._fill(max_mb)

    def _draw(self) -> tuple:
        x = self.images.batch(self.images.rng.integers(0, len(self.images), self.batch), True).to(self.device)
        tin, tout = teacher_run(self.teacher, x, self.idx)
        return x, tin, tout

    def _fill(self, max_mb: float | None = None) -> None:
        held = len(self.items)  # a refresh draws as many as were held
        self.items = [self._draw()]
        if max_mb is not None:  # activations of one batch -> how many fit
            mb = sum(t.numel() * t.element_size() for d in self.items[0][1:] for t in d.values()) / 2 ** 20
            held = max(1, min(self.wanted, int(max_mb // max(mb, 1e-6))))
        self.items += [self._draw() for _ in range(held - 1)]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def complete(self) -> bool:
        """Whether every wanted batch is held (else the pool is redrawn after each pass)."""
        return len(self.items) == self.wanted

    def __getitem__(self, step: int) -> tuple:
        """``(x, teacher inputs, teacher outputs)`` of step ``step``: the pool in turn, redrawn after each pass
        when incomplete."""
        if step and step % len(self) == 0 and not self.complete:
            self._fill()
        return self.items[step % len(self)]


def distil(parts: Parts, pool: Pool, *, steps: int | dict[int, int], lr: float, own_inputs: bool = False,
           progress: Callable | None = None, stage: str = 'layers') -> list[float]:
    """Fit the student's swapped layers (``parts``) to the teacher's with Adam (cosine schedule) on the batches
    of ``pool``: ``steps`` steps, or per layer (``{index: steps}``, layer-wise only: each layer has its own
    schedule and drops out of the step once its count is reached).

    ``own_inputs`` False: every layer alone on the teacher's input (layer-wise); True: the whole student
    forward on its own inputs (end to end), the same per-layer targets. Returns the loss of every step (the mean
    over the layers still fitting); ``progress(stage, step, steps, loss)`` is called after each step."""
    student, idx = parts.student, parts.idx
    n = steps if isinstance(steps, dict) else dict.fromkeys(idx, steps)  # steps of each layer
    if own_inputs and len(set(n.values())) > 1:
        raise ValueError('end-to-end fitting runs every layer for the same number of steps')
    total = max(n.values())
    opt = torch.optim.Adam([{'params': parts.layer_params[i]} for i in idx], lr=lr, foreach=True)  # foreach: CPU too
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, [lambda s, k=n[i]: 0.5 * (1 + math.cos(math.pi * min(s, k) / k)) for i in idx])
    losses = []
    parts.train()
    try:
        for step in range(total):
            x, tin, tout = pool[step]
            live = [i for i in idx if step < n[i]]
            if own_inputs:
                rec = Recorder(student, idx)
                try:
                    student(x)
                finally:
                    rec.remove()
                sout = rec.outputs
            else:
                sout = {i: student.model[i](tin[i]) for i in live}
            loss = sum(norm_mse(sout[i], tout[i]) for i in live) / len(live)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if progress:
                progress(stage, step + 1, total, losses[-1])
    finally:
        parts.done()
    return losses


def recalibrate_bn(parts: Parts, pool: Pool, own_inputs: bool, batches: int = 16) -> None:
    """Re-estimate the running statistics of the new BatchNorm layers of the swapped layers on up to ``batches``
    batches of ``pool`` (a plain average: momentum None), with the inputs the layers see (the teacher's or the
    student's)."""
    student, idx, bns = parts.student, parts.idx, parts.new_bns
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    parts.train()
    try:
        with torch.no_grad():
            for n in range(min(batches, len(pool))):
                x, tin, _ = pool[n]
                if own_inputs:
                    student(x)
                else:
                    for i in idx:
                        student.model[i](tin[i])
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        parts.done()


# --------------------------------------------------------------------------------------------------- mAP (val)
def val_map(model, data: dict, img: int, batch: int, workers: int = 0) -> float:
    """mAP50-95 of ``model`` on the val split, as ``val.py --img img`` computes it (rectangular batches, pad 0.5,
    conf 0.001, IoU 0.6); YOLOv5's table and progress bar are not printed."""

    import val as yolo_val  # noqa: PLC0415 (yolov5/val.py)
    from utils.dataloaders import create_dataloader  # noqa: PLC0415
    from utils.general import LOGGER  # noqa: PLC0415

    gs = max(int(model.stride.max()), 32)
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                tempfile.TemporaryDirectory() as tmp:
            loader = create_dataloader(data['val'], img, batch, gs, False, pad=0.5, rect=True, workers=workers,
                                       prefix='')[0]
            results = yolo_val.run(data, batch_size=batch, imgsz=img, half=False, model=model, dataloader=loader,
                                   save_dir=Path(tmp), plots=False, iou_thres=0.6)[0]
    finally:
        LOGGER.setLevel(level)
    return float(results[3])
