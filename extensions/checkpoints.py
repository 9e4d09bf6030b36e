"""Loading YOLOv5 checkpoints without running code from them.

A YOLOv5 checkpoint pickles the model object, and unpickling a file can run any code its author chose. So every
entry point (train.py ``--weights``/``--resume``, val, detect, export, ``torch.hub``, the benchmark and the tools
in ``scripts/``) loads through :func:`load_checkpoint`, which uses ``torch.load(weights_only=True)`` with an
allow-list of what a YOLOv5 checkpoint legitimately holds:

* the module classes of ``torch.nn``, of YOLOv5 (``models.common``, ``models.yolo``, ``models.experimental``,
  ``utils.activations``, under every name those modules bind, so ``models.yolo.Model`` of older releases
  resolves) and of this overlay (every registered block and its parts, under the module paths that pickled
  them, ``extensions.blocks`` included);
* numpy arrays and scalars (``best_fitness``), ``argparse.Namespace`` and paths (``opt``), plus what torch allows
  by default (tensors, containers, numbers, strings, optimizer state).

A checkpoint that asks for anything else is refused before any of its code runs, naming the first global it
asked for. Setting ``YOLOV5_TRUST_CHECKPOINTS=1`` trusts every checkpoint (upstream YOLOv5's behaviour:
``weights_only=False``); use it only for files whose origin you trust.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import pathlib
import pickle
import re
import sys
from pathlib import Path

__all__ = ['TRUST_ENV', 'CheckpointError', 'UntrustedCheckpointError', 'allowed_globals', 'trusted',
           'load_checkpoint', 'file_sha256']

TRUST_ENV = 'YOLOV5_TRUST_CHECKPOINTS'
BASE_MODULES = ('models.common', 'models.yolo', 'models.experimental', 'utils.activations')
GLOBAL_RE = re.compile(r'GLOBAL ([\w.]+)')


class CheckpointError(RuntimeError):
    """A file given as weights is not a loadable YOLOv5 checkpoint."""


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint that asks for a global outside the allow-list; nothing of it was run."""


def trusted() -> bool:
    """True when ``YOLOV5_TRUST_CHECKPOINTS`` is set to a true value (1, true, yes)."""
    return os.environ.get(TRUST_ENV, '').strip().lower() in ('1', 'true', 'yes')


def _numpy_globals() -> dict:
    import numpy as np

    core = getattr(np, '_core', None) or np.core
    out = {}
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):  # numpy 1.x and 2.x pickles
        out[f'{mod}._reconstruct'] = core.multiarray._reconstruct
        out[f'{mod}.scalar'] = core.multiarray.scalar
    out['numpy.ndarray'] = np.ndarray
    out['numpy.dtype'] = np.dtype
    for name in dir(np.dtypes):
        cls = getattr(np.dtypes, name)
        if isinstance(cls, type) and issubclass(cls, np.dtype):
            out[f'numpy.dtypes.{name}'] = cls
    return out


def _module_classes(module) -> dict:
    """{'<module>.<name>': class} for every torch.nn.Module class a module binds (definitions and imports alike)."""
    import torch.nn as nn

    return {f'{module.__name__}.{name}': obj for name, obj in vars(module).items()
            if isinstance(obj, type) and issubclass(obj, nn.Module)}


def allowed_globals() -> dict:
    """The allow-list: {'module.name' as pickled: object} of everything a YOLOv5 checkpoint may ask for."""
    import torch.nn as nn

    from . import registry

    registry.load_families()
    importlib.import_module('extensions.blocks')  # the path checkpoints of older versions pickled
    allow = {}
    for name in dir(nn):
        obj = getattr(nn, name)
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            allow[f'{obj.__module__}.{obj.__qualname__}'] = obj
    modules = [m for n, m in list(sys.modules.items()) if n == 'extensions' or n.startswith('extensions.')]
    modules += [sys.modules[spec.module.__module__] for spec in registry.registered().values()]
    for name in BASE_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:  # the base is not importable from here: YOLOv5 checkpoints cannot load anyway
            pass
    for m in modules:
        if m is not None:
            allow.update(_module_classes(m))
    for name in [k for k, v in allow.items() if v.__name__ == 'DetectMultiBackend']:
        del allow[name]  # loads weights files and connects to servers when built: never in a checkpoint
    allow.update(_numpy_globals())
    allow['argparse.Namespace'] = argparse.Namespace
    for cls in (pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath):
        allow[f'pathlib.{cls.__name__}'] = cls
    return allow


def _corrupt(path: Path, e: Exception) -> CheckpointError:
    why = ' '.join(str(e).split())
    return CheckpointError(
        f'{path} ({path.stat().st_size} bytes) cannot be read as a YOLOv5 checkpoint: {type(e).__name__}: {why}. It is '
        f'truncated or corrupt (e.g. an interrupted copy), or not a file torch.save wrote. Fix: use an intact copy, '
        f'or the last.pt/best.pt of a finished run')


def _refused(path: Path, e: Exception) -> UntrustedCheckpointError:
    found = GLOBAL_RE.search(str(e))
    what = f"the global '{found.group(1)}'" if found else f'something outside the allow-list ({str(e)[:200]})'
    hint = ''
    if found and found.group(1).split('.')[0] in ('extensions', 'models', 'utils'):
        hint = ' (a class this checkout does not have: saved by another version of the code?)'
    return UntrustedCheckpointError(
        f'{path}: refused to load: it asks for {what}{hint}, which is not on the allow-list of what a YOLOv5 '
        f'checkpoint holds (torch.nn, YOLOv5 and registered block modules, tensors, numbers, strings); nothing in '
        f'it was run. Fix: only if you trust where this file comes from, set {TRUST_ENV}=1 to load it with '
        f'weights_only=False (that runs any code the file contains; see README "Checkpoints")')


def load_checkpoint(f, map_location='cpu', trust: bool | None = None):
    """``torch.load`` of a YOLOv5 checkpoint (a dict holding the pickled model) that runs no code from the file.

    Loads with ``weights_only=True`` and :func:`allowed_globals`; with ``trust`` (default: the
    ``YOLOV5_TRUST_CHECKPOINTS`` environment variable) loads with ``weights_only=False`` as upstream does.
    Raises FileNotFoundError for a missing file, :class:`UntrustedCheckpointError` naming the first global outside
    the allow-list, and :class:`CheckpointError` naming the file and the fix for a truncated, corrupt or
    foreign one.
    """
    import torch

    path = Path(f)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {path} not found')
    trust = trusted() if trust is None else trust
    try:
        if trust:
            # trusted: only under YOLOV5_TRUST_CHECKPOINTS=1 or trust=True, the user's explicit opt-in for this file
            ckpt = torch.load(path, map_location=map_location, weights_only=False)
        else:
            allow = [(obj, name) for name, obj in allowed_globals().items()]
            with torch.serialization.safe_globals(allow):
                ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust and GLOBAL_RE.search(str(e)):
            raise _refused(path, e) from None
        raise _corrupt(path, e) from e
    except (ModuleNotFoundError, AttributeError) as e:
        raise CheckpointError(
            f'{path} pickles a class this code cannot find ({e}). It was saved with blocks this checkout does not '
            f'have (another version of extensions/?). Fix: load it with the code that trained it') from e
    except Exception as e:  # a file that is not a complete torch.save pickle fails anywhere in the unpickler
        raise _corrupt(path, e) from e
    if not isinstance(ckpt, dict) or ckpt.get('model') is None and ckpt.get('ema') is None:
        what = f'a dict with keys {sorted(ckpt)[:8]}' if isinstance(ckpt, dict) else f'a {type(ckpt).__name__}'
        raise CheckpointError(
            f'{path} holds {what}, not a YOLOv5 checkpoint (a dict with the pickled model under "model"/"ema", as '
            f'train.py saves it). A bare state_dict: build the model from its YAML and load_state_dict() it')
    return ckpt


def file_sha256(path) -> str:
    """The sha256 of a file, read in 1 MiB chunks: what a start checkpoint records of the file it was made from."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
