#!/usr/bin/env python3
"""The project's built-in default dataset: synthetic shapes for object detection, in YOLO format.

Deterministic and offline (numpy + OpenCV + PyYAML + stdlib only). Every image is drawn from its own random
stream ``numpy.random.default_rng([seed, split, index])``, so the same parameters give byte-identical label
files and identical images (JPEG encoding of identical arrays is deterministic for a given OpenCV build).

What an image holds:
  * a textured background: noise, linear gradient, stripes (hard or smooth), checkerboard or blurred colour
    blobs, sometimes two of them mixed, sometimes a few thin clutter lines;
  * 0 to 6 filled shapes of six classes (``CLASSES``: circle, rectangle, triangle, star, cross, ring; or a subset
    chosen with ``classes=`` / ``--classes``; about 8% of the images are pure background), each with
    a random size (4% to 45% of the image side, log-uniform), rotation, aspect jitter and a colour that contrasts
    with whatever it is drawn over;
  * partial occlusion, capped: a new shape may hide at most 30% of the area of any shape already drawn and its
    box may overlap another box by IoU <= 0.35. A label is the box of the *visible* pixels of its shape
    (computed from the same masks that paint the image, so it matches the drawing to the pixel);
  * mild image-level distortions: brightness/contrast, Gaussian blur, sensor noise.

Layout (what YOLOv5 expects)::

    <out>/images/{train,val}/{train,val}_00000.jpg
    <out>/labels/{train,val}/{train,val}_00000.txt     # "cls xc yc w h", normalised, 6 decimals
    <out>/<name>.yaml                                  # path (absolute), train, val, names
    <out>/.complete                                    # stamp: version, parameters, stats, content hash

Caching: a call whose parameters match the stamp returns at once. Generation happens in a temporary sibling
directory that is renamed into place only when complete, so an interrupted run leaves no half-written dataset
(the leftover temp directory is removed by the next call, under a file lock).

Python API::

    from make_shapes import ensure_shapes, make_video
    data_yaml = ensure_shapes()                  # datasets/shapes/shapes.yaml under the repo root
    video = make_video()                         # datasets/shapes.mp4 (75 frames, 15 fps, 320x256)

CLI: ``python scripts/make_shapes.py --help``.

Learnability (measured, yolov5n from scratch, img 256, batch 16, lr0 0.02, warmup 1, mosaic 0.5, run on a GPU
with the same schedule a CPU run would use): the six-class default is much harder than a plain 3-class set on
noise. After 25 epochs mAP50 was 0.01-0.02 for the default, 0.07 for ``--classes 3`` (textured), 0.34 for 3 large
classes on noise only; 50 epochs of the default reached mAP50 0.23. The class count is the largest factor, then
the textures. See docs/data.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

__all__ = ['CLASSES', 'DEFAULT_OUT', 'DEFAULTS', 'VERSION', 'ensure_shapes', 'make_video', 'render_sample',
           'video_info', 'read_labels']

VERSION = '2'  # bump whenever the drawn content changes for the same parameters (invalidates caches)
ROOT = Path(__file__).resolve().parents[1]  # the repository root (YOLOv5's ../datasets convention)
DEFAULT_OUT = ROOT / 'datasets' / 'shapes'
CLASSES = ('circle', 'rectangle', 'triangle', 'star', 'cross', 'ring')
DEFAULTS = dict(img=256, train=400, val=100, seed=0)
SPLITS = ('train', 'val')
STAMP = '.complete'
JPEG_QUALITY = 90

# Scene parameters (recorded in the stamp: changing one, e.g. from a script, regenerates a cached dataset).
SIZE_RANGE = (0.04, 0.45)  # shape diameter as a fraction of the image side (log-uniform)
MAX_OBJECTS = 6
P_BACKGROUND = 0.08  # share of images with no objects
MIN_VISIBLE = 0.70  # an occluded shape keeps at least this share of its own area visible
MAX_BOX_IOU = 0.35  # box IoU cap between any two labelled shapes
MIN_CONTRAST = 100.0  # Euclidean BGR distance between a shape's colour and what lies under it
TEXTURE = 1.0  # contrast of the local background textures (stripes, checker, blobs, noise)
P_CLUTTER = 0.3  # share of images with a few thin clutter lines

# Named scenes: overrides of the constants above. 'standard' is the spec'd default; 'demo' is what the
# built-in demo trains on, chosen (measured, see docs/data.md) so that a from-scratch YOLOv5n-size model learns
# visible detections in a CPU budget of minutes: three classes, no tiny shapes, at most 4 per image, milder
# textures, no clutter. Both keep varied sizes, colours, rotations, overlaps and textured backgrounds.
SCENES = {
    'standard': {},
    'demo': dict(SIZE_RANGE=(0.12, 0.45), MAX_OBJECTS=4, TEXTURE=0.5, P_CLUTTER=0.0),
}
SHIFT = 4  # OpenCV fixed-point bits for sub-pixel polygon vertices

_SPLIT_ID = {'train': 1, 'val': 2, 'video': 3}
_NAME_RE = re.compile(r'^(train|val)_\d{5}\.(jpg|txt)$')


# ------------------------------------------------------------------------------------------------ drawing
def _rot(pts, angle):
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def _ellipse(n, rx, ry):
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return np.stack([rx * np.cos(t), ry * np.sin(t)], 1)


def _shape_polys(name: str, r: float, rng: np.random.Generator):
    """Polygons (outer, then holes) of a shape ``name`` with circumradius ``r``, centred at 0, rotated."""
    angle = rng.uniform(0, 2 * math.pi)
    n = int(np.clip(2 * math.pi * r / 1.5, 16, 96))  # vertices for curves: one per ~1.5 px of perimeter
    holes = []
    if name == 'circle':  # slightly elliptic disc
        outer = _ellipse(n, r, r * rng.uniform(0.8, 1.0))
    elif name == 'ring':  # annulus; the hole shows what lies beneath
        ry, k = r * rng.uniform(0.85, 1.0), rng.uniform(0.45, 0.62)
        outer, holes = _ellipse(n, r, ry), [_ellipse(n, r * k, ry * k)]
    elif name == 'rectangle':  # squares included (aspect 1)
        a = 1.0 if rng.random() < 0.3 else rng.uniform(0.45, 0.9)
        w = 2 * r / math.sqrt(1 + a * a)
        h = a * w
        outer = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    elif name == 'triangle':  # near-equilateral, jittered corners
        t = math.pi / 2 + np.arange(3) * 2 * math.pi / 3 + rng.uniform(-0.2, 0.2, 3)
        rr = r * rng.uniform(0.85, 1.0, 3)
        outer = np.stack([rr * np.cos(t), rr * np.sin(t)], 1)
    elif name == 'star':  # five points
        t = math.pi / 2 + np.arange(10) * math.pi / 5
        rr = np.where(np.arange(10) % 2 == 0, r, r * rng.uniform(0.38, 0.5))
        outer = np.stack([rr * np.cos(t), rr * np.sin(t)], 1)
    elif name == 'cross':  # plus sign with equal arms
        t = r * rng.uniform(0.2, 0.32)
        outer = np.array([[-t, -r], [t, -r], [t, -t], [r, -t], [r, t], [t, t], [t, r], [-t, r], [-t, t], [-r, t],
                          [-r, -t], [-t, -t]], dtype=float)
    else:  # pragma: no cover
        raise ValueError(name)
    return [_rot(p, angle) for p in [outer, *holes]]


def _fill_mask(h, w, polys, offset):
    """Boolean mask of polygons (first filled, the rest carved out), translated by ``offset``."""
    m = np.zeros((h, w), np.uint8)
    for i, p in enumerate(polys):
        q = np.round((p + offset) * (1 << SHIFT)).astype(np.int32)
        cv2.fillPoly(m, [q], 0 if i else 1, lineType=cv2.LINE_8, shift=SHIFT)
    return m.astype(bool)


def _bbox(mask):
    """(x1, y1, x2, y2) in pixel-edge coordinates (x2, y2 exclusive) of a non-empty mask."""
    cols, rows = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _box_iou(a, b):
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _texture(rng, h, w, kind, yy, xx):
    """One zero-mean-ish texture layer (float32 HxWx3) of a given kind, added to a base colour."""
    theta = rng.uniform(0, math.pi)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    side = max(h, w)
    if kind == 'gradient':
        t = (u - u.min()) / max(float(np.ptp(u)), 1e-6) - 0.5
        return t[..., None] * rng.uniform(-160, 160, 3).astype(np.float32)
    if kind == 'stripes':
        period = rng.uniform(6, 0.3 * side)
        wave = np.sin(u * (2 * math.pi / period))
        if rng.random() < 0.5:
            wave = np.sign(wave)
        return wave[..., None] * rng.uniform(-35, 35, 3).astype(np.float32)
    if kind == 'checker':
        cell = rng.uniform(6, 32)
        parity = (np.floor(u / cell) + np.floor(v / cell)) % 2 * 2 - 1
        return parity[..., None] * rng.uniform(-30, 30, 3).astype(np.float32)
    if kind == 'blobs':
        k = int(rng.integers(3, 10))
        low = rng.uniform(-1, 1, (k, k, 3)).astype(np.float32)
        return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) * np.float32(rng.uniform(40, 90))
    if kind == 'noise':
        n = _noise(rng, rng.uniform(5, 22), (h, w, 3))
        return cv2.GaussianBlur(n, (0, 0), 0.8) * 1.5 if rng.random() < 0.5 else n
    raise ValueError(kind)  # pragma: no cover


_KINDS = ('noise', 'gradient', 'stripes', 'checker', 'blobs')


@functools.lru_cache(maxsize=8)
def _grid(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def _noise(rng, sigma, shape):
    """Zero-mean noise with standard deviation ``sigma`` (uniform: 5x cheaper than Gaussian, looks the same)."""
    n = rng.random(shape, dtype=np.float32)
    n -= np.float32(0.5)
    n *= np.float32(sigma * math.sqrt(12))
    return n


def _background(rng, h, w):
    yy, xx = _grid(h, w)
    bg = np.empty((h, w, 3), np.float32)
    bg[:] = rng.uniform(30, 225, 3).astype(np.float32)
    for weight in (1.0, 0.5 if rng.random() < 0.35 else 0.0):  # a texture, sometimes a second weaker one
        if weight:
            kind = _KINDS[rng.integers(len(_KINDS))]
            bg += _texture(rng, h, w, kind, yy, xx) * np.float32(weight * (1 if kind == 'gradient' else TEXTURE))
    if rng.random() < P_CLUTTER:  # clutter: a few thin lines that belong to no class
        for _ in range(int(rng.integers(1, 5))):
            p = rng.uniform(0, 1, 4) * [w, h, w, h]
            col = tuple(float(c) for c in np.clip(bg.mean((0, 1)) + rng.uniform(-60, 60, 3), 0, 255))
            cv2.line(bg, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), col, int(rng.integers(1, 3)), cv2.LINE_AA)
    bg += _noise(rng, rng.uniform(2, 6), (h, w, 3))
    return np.clip(bg, 0, 255, out=bg)


def _pick_colour(rng, under):
    """A BGR colour at least MIN_CONTRAST away from every colour in ``under`` (else the farthest of 40 tries)."""
    best, best_d = None, -1.0
    for _ in range(40):
        c = rng.uniform(0, 255, 3)
        d = min(float(np.linalg.norm(c - u)) for u in under) if under else 1e9
        if d >= MIN_CONTRAST:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _paint(canvas, mask, colour, rng):
    """Paint ``colour`` (with an optional linear shade and grain) over ``mask`` of ``canvas`` in place."""
    x1, y1, x2, y2 = _bbox(mask)
    h, w = y2 - y1, x2 - x1
    fill = np.empty((h, w, 3), np.float32)
    fill[:] = colour
    if rng.random() < 0.4:  # shading across the shape
        yy, xx = (g[:h, :w] for g in _grid(*canvas.shape[:2]))
        theta = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(theta) + yy * math.sin(theta)) / max(h, w, 1)
        fill += t[..., None] * rng.uniform(-30, 30, 3).astype(np.float32)
    if rng.random() < 0.5:
        fill += _noise(rng, 3, (h, w, 3))
    sub = mask[y1:y2, x1:x2]
    canvas[y1:y2, x1:x2][sub] = fill[sub]


def _random_shape(rng, h, w, side, classes):
    """(cls, mask) for one randomly sized, rotated and placed shape fully inside the image."""
    cls = int(rng.integers(len(classes)))
    d = side * math.exp(rng.uniform(math.log(SIZE_RANGE[0]), math.log(SIZE_RANGE[1])))
    polys = _shape_polys(classes[cls], d / 2, rng)
    lo, hi = polys[0].min(0), polys[0].max(0)
    cx = rng.uniform(-lo[0], max(w - 1 - hi[0], -lo[0]))
    cy = rng.uniform(-lo[1], max(h - 1 - hi[1], -lo[1]))
    mask = _fill_mask(h, w, polys, np.array([cx, cy]))
    return cls, mask


def render_sample(seed: int, split: str, index: int, img: int = 256, classes=CLASSES):
    """Draw one image of the dataset (``classes``: the class names, a subset of ``CLASSES``, in label order).

    Returns ``(image, objects)``: ``image`` is a BGR uint8 array (img x img) exactly as written (before JPEG
    encoding), ``objects`` a list (drawing order) of dicts with ``cls``, ``mask`` (the shape's own full mask),
    ``visible`` (its pixels not hidden by later shapes), ``box`` (x1, y1, x2, y2 of ``visible``, pixel edges)
    and ``colour`` (BGR fill before image-level distortions).
    """
    rng = np.random.default_rng([int(seed), _SPLIT_ID[split], int(index)])
    h = w = int(img)
    canvas = _background(rng, h, w)
    objects = []
    n = 0 if rng.random() < P_BACKGROUND else int(rng.integers(1, MAX_OBJECTS + 1))
    tries = 0
    while len(objects) < n and tries < 12 * n:
        tries += 1
        cls, mask = _random_shape(rng, h, w, min(h, w), classes)
        area = int(mask.sum())
        if area < 6:
            continue
        box = _bbox(mask)
        if min(box[2] - box[0], box[3] - box[1]) < 3:  # keep every box at least 3 px wide and high
            continue
        if any(_box_iou(box, o['box']) > MAX_BOX_IOU for o in objects):  # cheap test first
            continue
        new_visible = []
        for o in objects:
            vis = o['visible'] & ~mask
            if vis.sum() < MIN_VISIBLE * o['area'] or _box_iou(box, _bbox(vis)) > MAX_BOX_IOU:
                break
            new_visible.append(vis)
        if len(new_visible) < len(objects):
            continue
        # what the new shape is drawn over: the background there, and any shape it covers part of
        free = mask.copy()
        under = []
        for o in objects:
            if (o['visible'] & mask).any():
                under.append(o['colour'])
                free &= ~o['visible']
        if free.any():
            under.append(canvas[free].mean(0))
        colour = _pick_colour(rng, under)
        for o, vis in zip(objects, new_visible):
            o['visible'] = vis
            o['box'] = _bbox(vis)
        _paint(canvas, mask, colour, rng)
        objects.append(dict(cls=cls, mask=mask, visible=mask.copy(), box=box, colour=colour, area=area))

    # image-level distortions
    if rng.random() < 0.5:  # brightness / contrast
        canvas = (canvas - 128) * np.float32(rng.uniform(0.8, 1.2)) + np.float32(128 + rng.uniform(-25, 25))
    if rng.random() < 0.25:
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.4, 1.0))
    if rng.random() < 0.3:
        canvas += _noise(rng, rng.uniform(2, 6), canvas.shape)
    image = np.floor(np.clip(canvas, 0, 255) + 0.5).astype(np.uint8)
    return image, objects


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


def _scene():
    """The module-level scene constants, recorded in the stamp so that changing one invalidates the cache."""
    return dict(size_range=list(SIZE_RANGE), max_objects=MAX_OBJECTS, p_background=P_BACKGROUND,
                min_visible=MIN_VISIBLE, max_box_iou=MAX_BOX_IOU, min_contrast=MIN_CONTRAST, texture=TEXTURE,
                p_clutter=P_CLUTTER, backgrounds=list(_KINDS), jpeg_quality=JPEG_QUALITY)


def _params(img, train, val, seed, classes=None):
    for k, v in dict(img=img, train=train, val=val, seed=seed).items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
            raise ValueError(f'{k} must be a non-negative integer, got {v!r}')
    if img < 32:
        raise ValueError(f'img must be >= 32, got {img}')
    if train < 1 or val < 1:
        raise ValueError('train and val must each be >= 1 image')
    return dict(generator='make_shapes', version=VERSION, img=int(img), train=int(train), val=int(val),
                seed=int(seed), names=_classes(classes), format='jpg', scene=_scene())


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
    """True if ``out`` holds nothing but what this script writes (so replacing it loses no user data)."""
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
        import fcntl
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


def _generate(tmp: Path, final: Path, params):
    h = hashlib.sha256()
    stats = dict(images=0, instances=[0] * len(params['names']), backgrounds=0, occluded=0)
    for split in SPLITS:
        (tmp / 'images' / split).mkdir(parents=True)
        (tmp / 'labels' / split).mkdir(parents=True)
        for i in range(params[split]):
            image, objects = render_sample(params['seed'], split, i, params['img'], params['names'])
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


@contextlib.contextmanager
def use_scene(scene='standard'):
    """Apply a named scene of ``SCENES`` (or a dict of overrides) to the module constants while in the block."""
    overrides = SCENES[scene] if isinstance(scene, str) and scene in SCENES else scene
    if not isinstance(overrides, dict) or any(k not in _SCENE_KEYS for k in overrides):
        raise ValueError(f'scene must be one of {sorted(SCENES)} or a dict of {sorted(_SCENE_KEYS)}, got {scene!r}')
    g = globals()
    saved = {k: g[k] for k in overrides}
    g.update(overrides)
    try:
        yield
    finally:
        g.update(saved)


_SCENE_KEYS = {'SIZE_RANGE', 'MAX_OBJECTS', 'P_BACKGROUND', 'MIN_VISIBLE', 'MAX_BOX_IOU', 'MIN_CONTRAST',
               'TEXTURE', 'P_CLUTTER'}


def ensure_shapes(out=None, img=DEFAULTS['img'], train=DEFAULTS['train'], val=DEFAULTS['val'],
                  seed=DEFAULTS['seed'], classes=None, force=False, verbose=True, scene='standard') -> Path:
    """Make sure the synthetic dataset exists at ``out``; return its data yaml path (see :func:`_ensure_shapes`).

    ``scene``: a name in ``SCENES`` ('standard' or 'demo') or a dict of overrides of the scene constants.
    """
    with use_scene(scene):
        return _ensure_shapes(out, img, train, val, seed, classes, force, verbose)


def _ensure_shapes(out=None, img=DEFAULTS['img'], train=DEFAULTS['train'], val=DEFAULTS['val'],
                   seed=DEFAULTS['seed'], classes=None, force=False, verbose=True) -> Path:
    """Make sure the synthetic dataset exists at ``out`` with these parameters; return its data yaml path.

    A no-op (milliseconds) when ``out`` already holds a complete dataset generated with the same parameters.
    Otherwise it is generated into a temporary sibling directory and renamed into place atomically. An
    existing ``out`` that this script did not write is never deleted unless ``force=True``. ``classes``: None
    (all of ``CLASSES``), a count N (the first N) or a list / comma-separated string of names (label order).
    """
    params = _params(img, train, val, seed, classes)
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
            stamp = _generate(tmp, out, params)
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
               verbose=True) -> Path:
    """Write a short mp4 (mp4v) of synthetic shapes moving and turning over a textured background.

    ``size`` is (width, height). Default path: ``<repo>/datasets/shapes.mp4``. Cached like the dataset: a
    hidden stamp next to the video records the parameters, and the video is rewritten only when they differ
    (or ``force``). The written file is reopened with cv2.VideoCapture and must decode ``frames`` frames.
    """
    out_path = Path(out_path if out_path is not None else DEFAULT_OUT.parent / 'shapes.mp4').expanduser().absolute()
    w, h = (int(v) for v in size)
    if w < 32 or h < 32 or w % 2 or h % 2:
        raise ValueError(f'size must be even and >= 32 in both dimensions, got {size}')
    if frames < 1 or fps <= 0 or n_objects < 0:
        raise ValueError('frames >= 1, fps > 0 and n_objects >= 0 are required')
    params = dict(generator='make_shapes.video', version=VERSION, frames=int(frames), fps=float(fps),
                  size=[w, h], seed=int(seed), n_objects=int(n_objects), names=_classes(classes))
    stamp_path = out_path.with_name(f'.{out_path.name}.complete')
    log = print if verbose else (lambda *a, **k: None)
    if not force and out_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            if json.loads(stamp_path.read_text()).get('params') == params:
                log(f'shapes video: {out_path} ({frames} frames, {fps:g} fps, {w}x{h}) (cached)')
                return out_path

    t0 = time.perf_counter()
    rng = np.random.default_rng([int(seed), _SPLIT_ID['video'], 0])
    bg = _background(rng, h, w)
    side = min(h, w)
    objs = []
    for _ in range(n_objects):
        name = params['names'][int(rng.integers(len(params['names'])))]
        d = side * math.exp(rng.uniform(math.log(0.12), math.log(0.35)))
        polys = _shape_polys(name, d / 2, rng)  # already rotated by a random angle
        r = float(np.abs(polys[0]).max())
        speed, heading = rng.uniform(1.0, 3.5), rng.uniform(0, 2 * math.pi)
        objs.append(dict(polys=polys, r=r, pos=rng.uniform([r, r], [w - 1 - r, h - 1 - r]),
                         vel=speed * np.array([math.cos(heading), math.sin(heading)]),
                         spin=rng.uniform(-0.08, 0.08), angle=0.0,
                         colour=_pick_colour(rng, [bg.mean((0, 1))])))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f'.{out_path.stem}.tmp-{os.getpid()}{out_path.suffix or ".mp4"}')
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*'mp4v'), float(fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'cv2.VideoWriter (mp4v) cannot write {tmp}: OpenCV built without a usable backend?')
    try:
        for _ in range(frames):
            canvas = bg.copy()
            for o in objs:
                mask = _fill_mask(h, w, [_rot(p, o['angle']) for p in o['polys']], o['pos'])
                if mask.any():
                    canvas[mask] = o['colour']
                o['pos'] = o['pos'] + o['vel']
                o['angle'] += o['spin']
                for k, hi in ((0, w - 1), (1, h - 1)):  # bounce off the borders
                    if not o['r'] <= o['pos'][k] <= hi - o['r']:
                        o['vel'][k] = -o['vel'][k]
                        o['pos'][k] = float(np.clip(o['pos'][k], o['r'], hi - o['r']))
            writer.write(np.floor(canvas + 0.5).astype(np.uint8))
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


# ------------------------------------------------------------------------------------------------ CLI
def _size(text):
    m = re.fullmatch(r'(\d+)[xX](\d+)', text)
    if not m:
        raise argparse.ArgumentTypeError('expected WIDTHxHEIGHT, e.g. 320x256')
    return int(m.group(1)), int(m.group(2))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Generate the built-in synthetic shapes dataset (YOLO format) and optionally a demo video. '
                    f'Classes: {", ".join(CLASSES)}. Deterministic for a given seed; cached (a repeated call '
                    'with the same parameters does nothing).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out', type=Path, default=DEFAULT_OUT, help='dataset directory (data yaml: <out>/<name>.yaml)')
    p.add_argument('--img', type=int, default=DEFAULTS['img'], help='image side in pixels')
    p.add_argument('--train', type=int, default=DEFAULTS['train'], help='number of training images')
    p.add_argument('--val', type=int, default=DEFAULTS['val'], help='number of validation images')
    p.add_argument('--seed', type=int, default=DEFAULTS['seed'], help='random seed')
    p.add_argument('--classes', default=None, metavar='N|NAMES',
                   help='class subset: a count N (the first N) or comma-separated names; None means all six')
    p.add_argument('--scene', choices=sorted(SCENES), default='standard',
                   help="'standard' (default) or 'demo' (what scripts/demo.py trains on: easier, learns in minutes)")
    p.add_argument('--force', action='store_true', help='regenerate even if cached (and replace a foreign --out)')
    p.add_argument('--video', nargs='?', type=Path, const=DEFAULT_OUT.parent / 'shapes.mp4', default=None,
                   metavar='PATH', help='also write a demo mp4 of moving shapes (PATH if omitted: datasets/shapes.mp4)')
    p.add_argument('--video-only', action='store_true', help='write only the video (implies --video)')
    p.add_argument('--frames', type=int, default=75, help='video frames')
    p.add_argument('--fps', type=float, default=15, help='video frames per second')
    p.add_argument('--video-size', type=_size, default=(320, 256), metavar='WxH', help='video frame size')
    p.add_argument('--quiet', action='store_true', help='print only the resulting path(s)')
    return p.parse_args(argv)


def main(argv=None):
    opt = parse_args(argv)
    try:
        return _main(opt)
    except (ValueError, FileExistsError, RuntimeError) as e:
        print(f'make_shapes: error: {e}', file=sys.stderr)
        return 2


def _main(opt):
    verbose = not opt.quiet
    if opt.video_only and opt.video is None:
        opt.video = DEFAULT_OUT.parent / 'shapes.mp4'
    if not opt.video_only:
        path = ensure_shapes(opt.out, img=opt.img, train=opt.train, val=opt.val, seed=opt.seed,
                             classes=opt.classes, force=opt.force, verbose=verbose, scene=opt.scene)
        if opt.quiet:
            print(path)
    if opt.video is not None:
        with use_scene(opt.scene):
            path = make_video(opt.video, frames=opt.frames, fps=opt.fps, size=opt.video_size, seed=opt.seed,
                              classes=opt.classes, force=opt.force, verbose=verbose)
        if opt.quiet:
            print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
