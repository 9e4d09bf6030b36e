"""Building and fusing YOLOv5 models without YOLOv5's console output."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from copy import deepcopy

import torch
from models.yolo import Model
from utils.general import LOGGER


@contextlib.contextmanager
def quiet():
    """Silence YOLOv5's layer tables, 'Fusing layers', exporter chatter and tracer warnings."""
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


def build(cfg: str, nc: int = 80):
    torch.manual_seed(0)
    with quiet():
        return Model(cfg, ch=3, nc=nc)


def fused(model):
    with quiet():
        return deepcopy(model).eval().fuse()
