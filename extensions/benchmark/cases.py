"""The cases of the accuracy part: how a model's training run starts. One row per case; a case is chosen by its
key (``--cases``), trained by :mod:`.accuracy` and shown by the report and the plots with its titles.

* ``scratch``: from random initialisation (``--weights ''``);
* ``finetune``: from a plain YOLOv5 checkpoint of the same scale trained on another task (trained once by the
  benchmark, or given with ``--pretrained``), as users start from ``yolov5s.pt``.

A case that starts from a checkpoint of its own per model, made from the plain checkpoint, sets ``start``:
``start(cfg, plain_checkpoint, out_dir) -> checkpoint path`` (called once per case and model in a run, its
result used by every seed; the run's key hashes the checkpoint, so ``start`` must be deterministic for finished
runs to be reused). A new case is one more row here (and, for the report, its titles); the accuracy part, the
report, the plots and ``--cases`` take it from CASES. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    key: str
    title: str  # report headings: '### demo, <title>'
    words: str  # plot titles
    method: str  # the report's 'how it was measured' line; {checkpoints}: the plain checkpoints
    findings: str = ''  # how the findings name the start, e.g. 'Fine-tuned from the plain checkpoint'
    pretrained: bool = False  # starts from the plain checkpoint of its scale (trained once, or --pretrained)
    start: Callable[[str, Path, Path], Path] | None = None  # a per-model checkpoint made from the plain one


SCRATCH = Case('scratch', 'from scratch', 'from scratch', "**From scratch**: `--weights ''`.")
FINETUNE = Case(
    'finetune', 'fine-tuned from a plain YOLOv5 checkpoint', 'fine-tuned from plain YOLOv5',
    '**Fine-tuned**: `--weights <checkpoint>` of plain YOLOv5 trained on another task, as users start from '
    '`yolov5s.pt`; train.py loads the tensors whose names and shapes match (the "transferred" column: the swapped '
    'C3 blocks and the detection head of another class count start from scratch). Checkpoints: {checkpoints}.',
    'Fine-tuned from the plain checkpoint', pretrained=True)
CASES = {c.key: c for c in (SCRATCH, FINETUNE)}  # in the order they are trained and reported
