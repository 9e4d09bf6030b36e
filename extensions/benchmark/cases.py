"""The cases of the accuracy part: how a model's training run starts. One row per case; a case is chosen by its
key (``--cases``), trained by :mod:`.accuracy` and shown by the report and the plots with its titles.

* ``scratch``: from random initialisation (``--weights ''``);
* ``finetune``: from a plain YOLOv5 checkpoint of the same scale trained on another task (trained once by the
  benchmark, or given with ``--pretrained``), as users start from ``yolov5s.pt``.

* ``warm``: from the warm start of that same plain checkpoint (``extensions.warm_start``: the swapped blocks fitted
  to reproduce the plain layers they replace, docs/warm_start.md), made once per model with the fitting seed
  ``--seed``; its mAP before fine-tuning and its CPU time are reported beside the runs. Opt-in
  (``--cases scratch finetune warm``): it adds a warm start per model and a fine-tuning run per model and seed.

A case that starts from a checkpoint of its own per model, made from the plain checkpoint, sets ``start``:
``start(StartRequest) -> {'weights': path, ...}`` (called once per case and model in a run, its result used by
every seed; other keys are what the report shows about the start; the run's key hashes the checkpoint, so
``start`` must be deterministic for finished runs to be reused). A new case is one more row here (and, for the
report, its titles); the accuracy part, the report, the plots and ``--cases`` take it from CASES. Standard
library only at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StartRequest:
    """What a case's ``start`` gets: the model's YAML and family key (None for plain YOLOv5), the plain checkpoint
    of its scale, a directory of its own, and the dataset, image size, seed and device of the runs;
    ``plain_data``: the data yaml the plain checkpoint was trained on (None for a given checkpoint)."""

    cfg: str
    family: str | None
    plain: Path
    out_dir: Path
    data_yaml: Path
    img: int
    seed: int
    device: str
    plain_data: Path | None = None


@dataclass(frozen=True)
class Case:
    key: str
    title: str  # report headings: '### demo, <title>'
    words: str  # plot titles
    method: str  # the report's 'how it was measured' line; {checkpoints}: the plain checkpoints
    findings: str = ''  # how the findings name the start, e.g. 'Fine-tuned from the plain checkpoint'
    pretrained: bool = False  # starts from the plain checkpoint of its scale (trained once, or --pretrained)
    start: Callable[[StartRequest], dict] | None = None  # a per-model checkpoint made from the plain one


def warm_start_checkpoint(req: StartRequest) -> dict:
    """The ``warm`` case's start: the plain checkpoint warm-started into the model's YAML (plain YOLOv5 itself
    starts from the plain checkpoint, as in ``finetune``). Fitted on the images of the task the checkpoint was
    trained on, with its classes: the start's val mAP before fine-tuning then reads against the checkpoint's own on
    the same val split, and train.py re-initialises the Detect head for the runs' classes exactly as it does for
    plain YOLOv5 in ``finetune`` (a given checkpoint: the runs' data and classes)."""
    if req.family is None:
        return {'weights': str(req.plain)}
    from extensions.outputs import save_atomic  # noqa: PLC0415 (this module stays standard library only)
    from extensions.warm_start import WarmStartSettings, warm_start  # noqa: PLC0415

    r = warm_start(req.plain, Path(req.cfg), req.plain_data or req.data_yaml,
                   WarmStartSettings(img=req.img, seed=req.seed, device=req.device))
    req.out_dir.mkdir(parents=True, exist_ok=True)
    out = req.out_dir / 'start.pt'
    save_atomic(r.checkpoint, out)
    return {'weights': str(out), 'map_plain': r.map_plain, 'map_start': r.map_start, 'cpu_s': r.cpu_s,
            'val_cpu_s': r.val_cpu_s, 'wall_s': r.wall_s, 'threads': r.threads,
            'data': str(req.plain_data or req.data_yaml),
            'transferable': [r.transferable, r.total],
            'layers': [[f.index, f.before, f.after, f.chained] for f in r.layers]}


SCRATCH = Case('scratch', 'from scratch', 'from scratch', "**From scratch**: `--weights ''`.")
FINETUNE = Case(
    'finetune', 'fine-tuned from a plain YOLOv5 checkpoint', 'fine-tuned from plain YOLOv5',
    '**Fine-tuned**: `--weights <checkpoint>` of plain YOLOv5 trained on another task, as users start from '
    '`yolov5s.pt`; train.py loads the tensors whose names and shapes match (the "transferred" column: the swapped '
    'C3 blocks and the detection head of another class count start from scratch). Checkpoints: {checkpoints}.',
    'Fine-tuned from the plain checkpoint', pretrained=True)
WARM = Case(
    'warm', 'fine-tuned from a warm start of the plain checkpoint', 'warm-started from plain YOLOv5',
    '**Warm-started**: the same plain checkpoint put into each family YAML by `scripts/warm_start.py` '
    '(`extensions.warm_start`: tensors copied, every swapped block fitted to reproduce the plain layer it replaces '
    'on the images of the task the checkpoint was trained on, with its classes, fitting seed `--seed`, once per '
    'model), then fine-tuned exactly as in the fine-tuned case (train.py re-initialises the Detect head for the '
    'new classes, as it does for plain YOLOv5). Plain YOLOv5\'s rows are its fine-tuned runs: the same training. '
    'Checkpoints: {checkpoints}.',
    'Fine-tuned from the warm start', pretrained=True, start=warm_start_checkpoint)
CASES = {c.key: c for c in (SCRATCH, FINETUNE, WARM)}  # in the order they are trained and reported
DEFAULT_CASES = ('scratch', 'finetune')  # warm is opt-in: a warm start per model and a run per model and seed more
