"""The project's built-in default dataset: synthetic shapes for object detection, in YOLO format.

Deterministic and offline (numpy + OpenCV + PyYAML + stdlib only). The images are drawn by
:mod:`extensions.datasets.shapes_drawing` (what they hold, the :class:`Scene` and its named variants
``SCENES``); this module writes them as a YOLOv5 dataset, caches it, and writes the demo video. The same
parameters give byte-identical label files and identical images (JPEG encoding of identical arrays is
deterministic for a given OpenCV build).

Layout (what YOLOv5 expects)::

    <out>/images/{train,val}/{train,val}_00000.jpg
    <out>/labels/{train,val}/{train,val}_00000.txt     # "cls xc yc w h", normalised, 6 decimals
    <out>/<name>.yaml                                  # path (absolute), train, val, names
    <out>/.complete                                    # stamp: version, parameters, stats, content hash

Caching: a call whose parameters (the scene included) match the stamp returns at once. Generation happens in a
temporary sibling directory that is renamed into place only when complete, so an interrupted run leaves no
half-written dataset (the leftover temp directory is removed by the next call, under a file lock).

Python API::

    from extensions.datasets.shapes import ensure_shapes, make_video
    data_yaml = ensure_shapes()                  # datasets/shapes/shapes.yaml under the repo root
    data_yaml = ensure_shapes(ROOT / 'datasets' / 'shapes-demo', classes=3, scene='demo')  # the demo's data
    video = make_video()                         # datasets/shapes.mp4 (75 frames, 15 fps, 320x256)

CLI: ``python scripts/make_shapes.py --help``.

Learnability (measured, yolov5n from scratch, img 256, batch 16, lr0 0.02, warmup 1, mosaic 0.5, run on a GPU
with the same schedule a CPU run would use): the six-class default is much harder than a plain 3-class set on
noise. After 25 epochs mAP50 was 0.01-0.02 for the default, 0.07 for ``--classes 3`` (textured), 0.34 for 3 large
classes on noise only; 50 epochs of the default reached mAP50 0.23. The class count is the largest factor, then
the textures. See docs/data.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from extensions.datasets.shapes_drawing import (
    CLASSES,
    DEMO,
    KINDS,
    SCENES,
    STANDARD,
    Scene,
    get_scene,
    render_sample,
    video_frames,
)

__all__ = ['CLASSES', 'DEFAULTS', 'DEFAULT_OUT', 'DEFAULT_VIDEO', 'DEMO', 'SCENES', 'STANDARD', 'VERSION', 'Scene',
           'ensure_shapes', 'get_scene', 'make_video', 'read_labels', 'render_sample', 'video_info']

VERSION = '2'  # bump whenever the drawn content changes for the same parameters (invalidates caches)
ROOT = Path(__file__).resolve().parents[2]  # the repository root (YOLOv5's ../datasets convention)
DEFAULT_OUT = ROOT / 'datasets' / 'shapes'
DEFAULT_VIDEO = ROOT / 'datasets' / 'shapes.mp4'
DEFAULTS = dict(img=256, train=400, val=100, seed=0)
SPLITS = ('train', 'val')
STAMP = '.complete'
JPEG_QUALITY = 90

_NAME_RE = re.compile(r'^(train|val)_\d{5}\.(jpg|txt)$')


# ------------------------------------------------------------------------------------------------ labels
def _label_text(objects, h, w):
    lines = []
    for o in objects:
        x1, y1, x2, y2 = o['box']
        lines.append(f"{o['cls']} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
                     f"{(y2 - y1) / h:.6f}\n")
    return ''.join(lines)


def read_labels(path) -> np.ndarray:
    """Labels of one .txt file as an (n, 5) float array (cls, xc, yc, w, h)."""
    text = Path(path).read_text().strip()
    return np.array([[float(x) for x in ln.split()] for ln in text.splitlines()]).reshape(-1, 5)


# ------------------------------------------------------------------------------------------------ dataset
def _classes(classes):
    """Normalise a class selection: None (all), a count N (the first N of CLASSES), names or 'a,b,c'."""
    if classes is None:
        return list(CLASSES)
    if isinstance(classes, str):
        classes = int(classes) if classes.strip().isdigit() else [c.strip() for c in classes.split(',') if c.strip()]
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        if not 1 <= classes <= len(CLASSES):
            raise ValueError(f'classes must be 1..{len(CLASSES)} when given as a count, got {classes}')
        return list(CLASSES[:classes])
    classes = list(classes)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f'classes must be distinct names from {", ".join(CLASSES)}; got {classes}')
    return classes


def _scene_record(scene: Scene) -> dict:
    """The scene as the stamp records it (with the background kinds and JPEG quality), so that changing any of
    it invalidates the cache."""
    return dict(scene.record(), backgrounds=list(KINDS), jpeg_quality=JPEG_QUALITY)


def _params(img, train, val, seed, classes=None, scene='standard'):
    for k, v in dict(img=img, train=train, val=val, seed=seed).items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
            raise ValueError(f'{k} must be a non-negative integer, got {v!r}')
    if img < 32:
        raise ValueError(f'img must be >= 32, got {img}')
    if train < 1 or val < 1:
        raise ValueError('train and val must each be >= 1 image')
    return dict(generator='make_shapes', version=VERSION, img=int(img), train=int(train), val=int(val),
                seed=int(seed), names=_classes(classes), format='jpg', scene=_scene_record(get_scene(scene)))


def _read_stamp(out: Path):
    try:
        return json.loads((out / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _counts_ok(out: Path, params) -> bool:
    """Cheap completeness check: every split has exactly the expected image and label files."""
    for split in SPLITS:
        n = params[split]
        for sub, ext in (('images', '.jpg'), ('labels', '.txt')):
            try:
                names = os.listdir(out / sub / split)
            except OSError:
                return False
            if sum(1 for x in names if x.endswith(ext)) != n:
                return False
    return True


def _is_valid(out: Path, params) -> bool:
    stamp = _read_stamp(out)
    return (stamp is not None and stamp.get('params') == params and (out / f'{out.name}.yaml').is_file()
            and _counts_ok(out, params))


def _write_yaml(out: Path, final: Path, params):
    text = (f'# Synthetic shapes: the built-in default dataset of this project (YOLO format).\n'
            f'# Generated by scripts/make_shapes.py (version {VERSION}, seed {params["seed"]}, '
            f'{params["train"]} train + {params["val"]} val images at {params["img"]} px). Do not edit:\n'
            f'# regenerate with `python scripts/make_shapes.py --out {final} --force`.\n')
    text += yaml.safe_dump(dict(path=str(final), train='images/train', val='images/val',
                                names=dict(enumerate(params['names']))), sort_keys=False)
    path = out / f'{final.name}.yaml'
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _looks_generated(out: Path) -> bool:
    """True if ``out`` holds nothing but what this generator writes (so replacing it loses no user data)."""
    for entry in out.iterdir():  # a moved/renamed dataset keeps its old <name>.yaml
        if entry.name not in ('images', 'labels', STAMP) and not entry.name.endswith(('.yaml', '.yaml.tmp')):
            return False
    for sub in ('images', 'labels'):
        d = out / sub
        if not d.exists():
            continue
        for entry in d.iterdir():
            if entry.is_file() and sub == 'labels' and entry.suffix == '.cache':  # YOLOv5's label cache
                continue
            if entry.name not in SPLITS or not entry.is_dir():
                return False
            if not all(_NAME_RE.match(f.name) for f in entry.iterdir()):
                return False
    return True


@contextlib.contextmanager
def _lock(path: Path):
    """Exclusive inter-process lock on ``path`` (POSIX flock; a no-op where fcntl is missing)."""
    try:
        import fcntl  # noqa: PLC0415 (POSIX only)
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'a+') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _generate(tmp: Path, final: Path, params, scene: Scene):
    h = hashlib.sha256()
    stats = dict(images=0, instances=[0] * len(params['names']), backgrounds=0, occluded=0)
    for split in SPLITS:
        (tmp / 'images' / split).mkdir(parents=True)
        (tmp / 'labels' / split).mkdir(parents=True)
        for i in range(params[split]):
            image, objects = render_sample(params['seed'], split, i, params['img'], params['names'], scene)
            ok, buf = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:  # pragma: no cover
                raise RuntimeError('cv2.imencode failed')
            label = _label_text(objects, *image.shape[:2]).encode()
            stem = f'{split}_{i:05d}'
            (tmp / 'images' / split / f'{stem}.jpg').write_bytes(buf.tobytes())
            (tmp / 'labels' / split / f'{stem}.txt').write_bytes(label)
            for data in (stem.encode(), buf.tobytes(), label):
                h.update(len(data).to_bytes(8, 'little'))
                h.update(data)
            stats['images'] += 1
            stats['backgrounds'] += not objects
            stats['occluded'] += sum(int(o['visible'].sum()) < o['area'] for o in objects)
            for o in objects:
                stats['instances'][o['cls']] += 1
    _write_yaml(tmp, final, params)
    stamp = dict(params=params, stats=stats, sha256=h.hexdigest())
    (tmp / STAMP).write_text(json.dumps(stamp, indent=1) + '\n')  # written last: marks a complete tree
    return stamp


def _summary(out: Path, stamp, seconds=None):
    p, s = stamp['params'], stamp['stats']
    inst = ', '.join(f'{n} {c}' for c, n in zip(p['names'], s['instances']))
    how = 'cached' if seconds is None else f'generated in {seconds:.1f}s'
    return (f"shapes: {p['train']} train + {p['val']} val images at {p['img']} px, {len(p['names'])} classes "
            f"({inst}; {s['backgrounds']} background images, {s['occluded']} partly occluded) "
            f"-> {out / (out.name + '.yaml')} ({how})")


def ensure_shapes(out=None, img=DEFAULTS['img'], train=DEFAULTS['train'], val=DEFAULTS['val'],
                  seed=DEFAULTS['seed'], classes=None, force=False, verbose=True, scene='standard') -> Path:
    """Make sure the synthetic dataset exists at ``out`` with these parameters; return its data yaml path.

    A no-op (milliseconds) when ``out`` already holds a complete dataset generated with the same parameters.
    Otherwise it is generated into a temporary sibling directory and renamed into place atomically. An
    existing ``out`` that this generator did not write is never deleted unless ``force=True``. ``classes``:
    None (all of ``CLASSES``), a count N (the first N) or a list / comma-separated string of names (label
    order). ``scene``: a :class:`Scene` or its name in ``SCENES`` ('standard' or 'demo').
    """
    scene = get_scene(scene)
    params = _params(img, train, val, seed, classes, scene)
    out = Path(out if out is not None else DEFAULT_OUT).expanduser().absolute()
    yaml_path = out / f'{out.name}.yaml'
    log = print if verbose else (lambda *a, **k: None)

    def _fresh():
        if _is_valid(out, params):
            if _yaml_path_field(yaml_path) != str(out):  # the directory was moved or copied: fix `path:`
                _write_yaml(out, out, params)
            return True
        return False

    if not force and _fresh():
        if verbose:
            log(_summary(out, _read_stamp(out)))
        return yaml_path

    with _lock(out.parent / f'.{out.name}.lock'):
        if not force and _fresh():  # another process finished it while we waited
            if verbose:
                log(_summary(out, _read_stamp(out)))
            return yaml_path
        for stale in out.parent.glob(f'.{out.name}.tmp-*'):  # left by an interrupted run (we hold the lock)
            _remove(stale)
        if out.exists() and not force and not (out.is_dir() and _looks_generated(out)):
            raise FileExistsError(f'{out} exists and was not written by make_shapes.py; refusing to replace it '
                                  f'(choose another --out, or pass --force / force=True)')
        t0 = time.perf_counter()
        tmp = out.parent / f'.{out.name}.tmp-{os.getpid()}'
        try:
            stamp = _generate(tmp, out, params, scene)
            if out.exists() or out.is_symlink():
                old = out.parent / f'.{out.name}.tmp-old-{os.getpid()}'
                os.replace(out, old)
                os.replace(tmp, out)
                _remove(old)
            else:
                os.replace(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    log(_summary(out, stamp, time.perf_counter() - t0))
    return yaml_path


def _remove(path: Path):
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _yaml_path_field(yaml_path: Path):
    try:
        return str(yaml.safe_load(Path(yaml_path).read_text()).get('path'))
    except (OSError, AttributeError, yaml.YAMLError):
        return None


# ------------------------------------------------------------------------------------------------ video
def video_info(path) -> dict:
    """Frame count (frames actually decoded), fps and size of a video, read back with cv2.VideoCapture."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise RuntimeError(f'cv2.VideoCapture cannot open {path}')
    fps = cap.get(cv2.CAP_PROP_FPS)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return dict(frames=n, fps=fps, width=w, height=h)


def make_video(out_path=None, frames=75, fps=15, size=(320, 256), seed=0, n_objects=5, classes=None, force=False,
               verbose=True, scene='standard') -> Path:
    """Write a short mp4 (mp4v) of synthetic shapes moving and turning over a textured background.

    ``size`` is (width, height). Default path: ``<repo>/datasets/shapes.mp4``. ``scene`` (a :class:`Scene` or
    its name) sets the background's textures and clutter and the colour contrast. Cached like the dataset: a
    hidden stamp next to the video records the parameters, and the video is rewritten only when they differ
    (or ``force``). The written file is reopened with cv2.VideoCapture and must decode ``frames`` frames.
    """
    out_path = Path(out_path if out_path is not None else DEFAULT_VIDEO).expanduser().absolute()
    w, h = (int(v) for v in size)
    if w < 32 or h < 32 or w % 2 or h % 2:
        raise ValueError(f'size must be even and >= 32 in both dimensions, got {size}')
    if frames < 1 or fps <= 0 or n_objects < 0:
        raise ValueError('frames >= 1, fps > 0 and n_objects >= 0 are required')
    scene = get_scene(scene)
    params = dict(generator='make_shapes.video', version=VERSION, frames=int(frames), fps=float(fps),
                  size=[w, h], seed=int(seed), n_objects=int(n_objects), names=_classes(classes),
                  scene=scene.record())
    stamp_path = out_path.with_name(f'.{out_path.name}.complete')
    log = print if verbose else (lambda *a, **k: None)
    if not force and out_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            if json.loads(stamp_path.read_text()).get('params') == params:
                log(f'shapes video: {out_path} ({frames} frames, {fps:g} fps, {w}x{h}) (cached)')
                return out_path

    t0 = time.perf_counter()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f'.{out_path.stem}.tmp-{os.getpid()}{out_path.suffix or ".mp4"}')
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*'mp4v'), float(fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'cv2.VideoWriter (mp4v) cannot write {tmp}: OpenCV built without a usable backend?')
    try:
        for frame in video_frames(seed, frames, (w, h), n_objects, params['names'], scene):
            writer.write(frame)
    finally:
        writer.release()
    try:
        info = video_info(tmp)
        if info['frames'] != frames or abs(info['fps'] - fps) > 0.01 or (info['width'], info['height']) != (w, h):
            raise RuntimeError(f'video check failed for {tmp}: wrote {frames} frames at {fps} fps {w}x{h}, '
                               f'read back {info}')
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    stamp_path.write_text(json.dumps(dict(params=params, info=info)) + '\n')
    log(f"shapes video: {out_path} ({info['frames']} frames, {info['fps']:g} fps, {w}x{h}; reopened OK) "
        f'in {time.perf_counter() - t0:.1f}s')
    return out_path
