"""What the pinned YOLOv5 base (a199480ba) needs to run offline on today's stack.

The patches in ``patches/`` only *call* these helpers; the logic lives here so that each patch stays a few
lines long. Nothing in this module downloads or installs anything: where upstream YOLOv5 would reach the
network (``check_requirements`` auto-install, the Arial font, pretrained weights by name, dataset download
URLs) it either uses something already on the machine or raises :class:`OfflineError` with the fix.

Standard library only at import time (plus ``packaging`` / pip's vendored copy), so the base can import it
before anything else, and ``scripts/setup.py`` can use :func:`unmet_requirements` before any requirement is
installed. Anything heavier (torch, matplotlib, onnxslim) is imported inside the function that needs it.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from .checkpoints import CheckpointError, load_checkpoint  # noqa: F401 (the patches import them from here)
from .outputs import save_atomic

try:  # pip vendors packaging, so this works even before requirements are installed
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:  # pragma: no cover
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement

SETUP_HINT = 'run `python scripts/setup.py` (installs everything in requirements.txt)'
PROJECT_REQUIREMENTS = Path(__file__).resolve().parents[1] / 'requirements.txt'

# Distributions that provide the same import as the one asked for (upstream names -> what may be installed).
ALIASES = {
    'opencv-python': ('opencv-python', 'opencv-python-headless', 'opencv-contrib-python',
                      'opencv-contrib-python-headless'),
    'onnxruntime': ('onnxruntime', 'onnxruntime-gpu'),
    'onnxruntime-gpu': ('onnxruntime-gpu', 'onnxruntime'),  # CPU build still runs (CPUExecutionProvider)
    'pillow': ('pillow', 'pillow-simd'),
}


class OfflineError(ConnectionError):
    """The base asked for a download. A ConnectionError, so upstream code that already copes with being
    offline (e.g. ``check_amp``, which then skips its check) keeps doing so."""


class MissingRequirementError(ImportError):
    """A required distribution is missing or too old; the base would have pip-installed it."""


def _installed_version(name: str):
    """Installed version of ``name`` or of a distribution in ``ALIASES`` that provides the same import; None if none."""
    for candidate in ALIASES.get(name.lower().replace('_', '-'), (name,)):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def _parse_requirements(requirements) -> list[str]:
    if isinstance(requirements, Path) or (isinstance(requirements, str) and requirements.endswith('.txt')):
        lines = Path(requirements).read_text().splitlines()
        return [ln.split('#')[0].strip() for ln in lines if ln.split('#')[0].strip()]
    if isinstance(requirements, str):
        return [requirements]
    return list(requirements)


def unmet_requirements(requirements='requirements.txt', exclude=()) -> list[str]:
    """The requirements that the installed distributions do not satisfy, each with what was found.

    ``requirements``: a requirements file (a Path or a name ending in ``.txt``; ``#`` comments and blank lines
    skipped), one requirement string, or an iterable of them. A requirement is met by its own distribution or
    by one in ``ALIASES`` (``opencv-python-headless`` satisfies ``opencv-python``). Requirements named in
    ``exclude`` or whose environment marker is false are skipped. Returns lines such as
    ``'torch>=2.1 (not installed)'`` or ``'numpy>=2.0 (found 1.26.4)'``; empty when everything is met.
    The one implementation of the check: YOLOv5's ``check_requirements`` (below) and ``scripts/setup.py`` use it.
    """
    unmet = []
    for line in _parse_requirements(requirements):
        try:
            req = Requirement(line)
        except InvalidRequirement:
            req = Requirement(line.split('[')[0])  # e.g. 'tritonclient[all]' is fine; anything else, let it raise
        if req.name in exclude or (req.marker and not req.marker.evaluate()):
            continue
        version = _installed_version(req.name)
        if version is None:
            unmet.append(f'{line} (not installed)')
        elif req.specifier and not req.specifier.contains(version, prereleases=True):
            unmet.append(f'{line} (found {version})')
    return unmet


def check_requirements(requirements='requirements.txt', exclude=(), install=True, cmds=''):
    """Drop-in for ``ultralytics...check_requirements`` that checks and never installs.

    Returns True when every requirement is satisfied; otherwise raises :class:`MissingRequirementError` naming each
    missing or too-old distribution and the fix. ``install`` and ``cmds`` are accepted for signature
    compatibility and ignored: this project never pip-installs at run time.
    """
    unmet = unmet_requirements(requirements, exclude)
    if unmet:
        raise MissingRequirementError('YOLOv5 requirement check failed: ' + '; '.join(unmet) +
                                      f'. This build never pip-installs at run time: {_install_hint(unmet)}.')
    return True


def _install_hint(unmet: list[str]) -> str:
    """setup.py for what requirements.txt lists; pip install for the rest (formats outside the project's stack)."""
    ours = {Requirement(r).name.lower() for r in _parse_requirements(PROJECT_REQUIREMENTS)}
    extra = [u.split(' (')[0] for u in unmet if Requirement(u.split(' (')[0]).name.lower() not in ours]
    if not extra:
        return SETUP_HINT
    return (f'pip install {" ".join(repr(e) if set(e) & set("<>=!~;") else e for e in extra)} (not in this '
            f"project's requirements.txt: install it yourself if you need it)")


def local_font(font, config_dir) -> Path:
    """Return a TrueType font that exists on this machine, instead of downloading Arial.

    Order: the path as given, YOLOv5's config dir (a font the user placed there), then DejaVuSans, which
    matplotlib (a requirement) ships. DejaVuSans covers Latin, Greek and Cyrillic labels.
    """
    font = Path(font)
    for candidate in (font, Path(config_dir) / font.name):
        if candidate.exists():
            return candidate
    import matplotlib
    return Path(matplotlib.get_data_path()) / 'fonts' / 'ttf' / 'DejaVuSans.ttf'


def no_weights_download(file) -> OfflineError:
    """Error for weights given by a name that is not a local file (upstream would fetch it from GitHub)."""
    return OfflineError(
        f"weights '{file}' not found: no such file (searched from {os.getcwd()}). This offline build never "
        f"downloads pretrained weights. Train from scratch with --weights '' or pass the path of a local .pt "
        f"(e.g. runs/train/exp/weights/best.pt).")


def no_dataset_download(missing, download) -> OfflineError:
    """Error for a data yaml whose files are missing (upstream would run its ``download:`` entry)."""
    how = ('its download: entry is not run, because this build never downloads or runs download scripts'
           if download else 'the data yaml has no download: entry')
    return OfflineError(
        f"dataset not found: missing {', '.join(str(m) for m in missing)}; {how}. Put the images and labels "
        f"at those paths, or pass --data with a yaml for local data (e.g. datasets/shapes/shapes.yaml, made "
        f"by `python scripts/make_shapes.py`).")


def onnx_simplify(model_onnx, prefix=''):
    """Simplify an ONNX model with onnxslim (pure Python, from PyPI), the simplifier later upstream adopted.

    onnx-simplifier (what a199480ba asks for) needs a compiler to install on many machines; onnxslim gives
    the same graph-level simplifications. Raises if onnxslim is missing (export.py reports the failure).
    """
    import onnxslim
    from utils.general import LOGGER
    LOGGER.info(f'{prefix} simplifying with onnxslim {onnxslim.__version__}...')
    return onnxslim.slim(model_onnx)


class BaseNotReady(SystemExit):
    """yolov5/ does not match this checkout's patches/: exits with one message (no traceback) saying to run setup."""


def onnx_dynamic(model) -> bool:
    """True for a ``DetectMultiBackend`` running an ONNX model in onnxruntime whose input has free batch, height
    and width (``export.py --dynamic``). val.py then evaluates it as it evaluates the .pt (same batch size, same
    rectangular letterboxed shapes with pad 0.5) instead of upstream's batch-1 square inference for every
    exported model, so .pt and .onnx metrics compare like for like (patches/0011). Measured on the demo model:
    square inference alone moved mAP50-95 by 0.8 points (0.391 .pt vs 0.383 .onnx)."""
    session = getattr(model, 'session', None) if getattr(model, 'onnx', False) else None
    if session is None:  # not ONNX, or ONNX through OpenCV DNN (--dnn)
        return False
    shape = session.get_inputs()[0].shape
    return len(shape) == 4 and not any(isinstance(shape[i], int) for i in (0, 2, 3))


def check_base(base) -> None:
    """Called by the patched ``utils/__init__.py`` on every import of the base (patches/0001).

    ``scripts/setup.py`` writes ``yolov5/.overlay-stamp.json`` with the sha256 of every patch it verified in
    place. If the stamp is missing, or ``patches/`` has changed since (a new or edited patch pulled in, a
    setup interrupted before it verified), every entry point stops with one message instead of failing
    later deep inside YOLOv5. Costs well under a millisecond.
    """
    base = Path(base)
    patches = base.parent / 'patches'
    if not patches.is_dir():  # the base used outside this overlay checkout: nothing to compare with
        return
    want = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(patches.glob('[0-9]*.diff'))}
    stamp = base / '.overlay-stamp.json'
    try:
        have = json.loads(stamp.read_text()).get('patches', {})
    except (OSError, ValueError):
        have = None
    if have == want:
        return
    if have is None:
        why = f'{stamp} is missing: setup has not completed on this yolov5/'
    else:
        changed = sorted(set(want) ^ set(have) | {k for k in want if k in have and want[k] != have[k]})
        why = f'patches changed since setup last verified yolov5/: {", ".join(changed)}'
    raise BaseNotReady(f'ERROR: the YOLOv5 base is not set up for this checkout ({why}). '
                       f'Run `python scripts/setup.py` from {base.parent} first.')


def save_checkpoint(obj, f) -> None:
    """``torch.save`` that never leaves a half-written checkpoint behind (patches/0009).

    Upstream writes last.pt/best.pt in place, so a run killed while saving (SIGKILL, out of memory, a full
    disk) leaves a truncated last.pt and ``--resume`` has nothing to resume from. This writes a temporary
    file next to ``f`` and renames it over ``f`` (atomic on POSIX and Windows): ``f`` is always either the
    previous complete checkpoint or the new one, with the permissions ``torch.save`` would have given it.
    """
    save_atomic(obj, f)
