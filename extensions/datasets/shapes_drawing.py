"""Drawing the synthetic shapes: the scene (:class:`Scene`), one dataset image (:func:`render_sample`), a video.

Deterministic: every image is drawn from its own random stream ``numpy.random.default_rng([seed, split,
index])`` (the video from ``[seed, 3, 0]``), so the same parameters give identical arrays. The dataset files,
their caching and the mp4 writer are in :mod:`extensions.datasets.shapes`.

What an image holds:
  * a textured background: noise, linear gradient, stripes (hard or smooth), checkerboard or blurred colour
    blobs, sometimes two of them mixed, sometimes a few thin clutter lines;
  * 0 to ``max_objects`` filled shapes of six classes (``CLASSES``: circle, rectangle, triangle, star, cross,
    ring, or a subset; a share ``p_background`` of the images is pure background), each with a random size
    (``size_range`` of the image side, log-uniform), rotation, aspect jitter and a colour that contrasts with
    whatever it is drawn over;
  * partial occlusion, capped: a new shape may hide at most ``1 - min_visible`` of the area of any shape
    already drawn and its box may overlap another box by IoU <= ``max_box_iou``. A label is the box of the
    *visible* pixels of its shape (computed from the same masks that paint the image, so it matches the
    drawing to the pixel);
  * mild image-level distortions: brightness/contrast, Gaussian blur, sensor noise.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace
from types import MappingProxyType

import cv2
import numpy as np

CLASSES = ('circle', 'rectangle', 'triangle', 'star', 'cross', 'ring')
SHIFT = 4  # OpenCV fixed-point bits for sub-pixel polygon vertices
_SPLIT_ID = {'train': 1, 'val': 2, 'video': 3}


@dataclass(frozen=True)
class Scene:
    """What the generator draws, apart from the classes and the image size. Immutable: make a variant with
    ``dataclasses.replace(STANDARD, max_objects=3)``. Recorded in a dataset's stamp, so a dataset cached with
    one scene is regenerated when asked for with another."""

    size_range: tuple[float, float] = (0.04, 0.45)  # shape diameter as a fraction of the image side (log-uniform)
    max_objects: int = 6
    p_background: float = 0.08  # share of images with no objects
    min_visible: float = 0.70  # an occluded shape keeps at least this share of its own area visible
    max_box_iou: float = 0.35  # box IoU cap between any two labelled shapes
    min_contrast: float = 100.0  # Euclidean BGR distance between a shape's colour and what lies under it
    texture: float = 1.0  # contrast of the local background textures (stripes, checker, blobs, noise)
    p_clutter: float = 0.3  # share of images with a few thin clutter lines

    def __post_init__(self):
        lo, hi = self.size_range
        if not 0 < lo <= hi <= 1:
            raise ValueError(f'size_range must satisfy 0 < low <= high <= 1, got {self.size_range}')
        object.__setattr__(self, 'size_range', (lo, hi))  # a tuple, however it was given
        if self.max_objects < 0:
            raise ValueError(f'max_objects must be >= 0, got {self.max_objects}')

    def record(self) -> dict:
        """The scene as JSON-ready values (what a dataset's stamp records)."""
        d = asdict(self)
        d['size_range'] = list(self.size_range)
        return d


# The named scenes. 'standard' is the default dataset; 'demo' is what the built-in demo trains on, chosen
# (measured, see docs/data.md) so that a from-scratch YOLOv5n-size model learns visible detections in a CPU
# budget of minutes: no tiny shapes, at most 4 per image, milder textures, no clutter (the demo also uses three
# classes). Both keep varied sizes, colours, rotations, overlaps and textured backgrounds.
STANDARD = Scene()
DEMO = replace(STANDARD, size_range=(0.12, 0.45), max_objects=4, texture=0.5, p_clutter=0.0)
SCENES = MappingProxyType({'standard': STANDARD, 'demo': DEMO})


def get_scene(scene) -> Scene:
    """A :class:`Scene` given as itself or by its name in ``SCENES``."""
    if isinstance(scene, Scene):
        return scene
    if isinstance(scene, str) and scene in SCENES:
        return SCENES[scene]
    raise ValueError(f'scene must be one of {sorted(SCENES)} or a Scene, got {scene!r}')


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


KINDS = ('noise', 'gradient', 'stripes', 'checker', 'blobs')  # background textures (recorded in the stamp)


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


def _background(rng, h, w, scene: Scene):
    yy, xx = _grid(h, w)
    bg = np.empty((h, w, 3), np.float32)
    bg[:] = rng.uniform(30, 225, 3).astype(np.float32)
    for weight in (1.0, 0.5 if rng.random() < 0.35 else 0.0):  # a texture, sometimes a second weaker one
        if weight:
            kind = KINDS[rng.integers(len(KINDS))]
            bg += _texture(rng, h, w, kind, yy, xx) * np.float32(weight * (1 if kind == 'gradient' else scene.texture))
    if rng.random() < scene.p_clutter:  # clutter: a few thin lines that belong to no class
        for _ in range(int(rng.integers(1, 5))):
            p = rng.uniform(0, 1, 4) * [w, h, w, h]
            col = tuple(float(c) for c in np.clip(bg.mean((0, 1)) + rng.uniform(-60, 60, 3), 0, 255))
            cv2.line(bg, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), col, int(rng.integers(1, 3)), cv2.LINE_AA)
    bg += _noise(rng, rng.uniform(2, 6), (h, w, 3))
    return np.clip(bg, 0, 255, out=bg)


def _pick_colour(rng, under, min_contrast):
    """A BGR colour at least ``min_contrast`` away from every colour in ``under`` (else the farthest of 40 tries)."""
    best, best_d = None, -1.0
    for _ in range(40):
        c = rng.uniform(0, 255, 3)
        d = min(float(np.linalg.norm(c - u)) for u in under) if under else 1e9
        if d >= min_contrast:
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


def _random_shape(rng, h, w, side, classes, size_range):
    """(cls, mask) for one randomly sized, rotated and placed shape fully inside the image."""
    cls = int(rng.integers(len(classes)))
    d = side * math.exp(rng.uniform(math.log(size_range[0]), math.log(size_range[1])))
    polys = _shape_polys(classes[cls], d / 2, rng)
    lo, hi = polys[0].min(0), polys[0].max(0)
    cx = rng.uniform(-lo[0], max(w - 1 - hi[0], -lo[0]))
    cy = rng.uniform(-lo[1], max(h - 1 - hi[1], -lo[1]))
    mask = _fill_mask(h, w, polys, np.array([cx, cy]))
    return cls, mask


def render_sample(seed: int, split: str, index: int, img: int = 256, classes=CLASSES, scene: Scene | str = STANDARD):
    """Draw one image of the dataset (``classes``: the class names, a subset of ``CLASSES``, in label order;
    ``scene``: a :class:`Scene` or its name in ``SCENES``).

    Returns ``(image, objects)``: ``image`` is a BGR uint8 array (img x img) exactly as written (before JPEG
    encoding), ``objects`` a list (drawing order) of dicts with ``cls``, ``mask`` (the shape's own full mask),
    ``visible`` (its pixels not hidden by later shapes), ``box`` (x1, y1, x2, y2 of ``visible``, pixel edges)
    and ``colour`` (BGR fill before image-level distortions).
    """
    scene = get_scene(scene)
    rng = np.random.default_rng([int(seed), _SPLIT_ID[split], int(index)])
    h = w = int(img)
    canvas = _background(rng, h, w, scene)
    objects = []
    n = 0 if rng.random() < scene.p_background else int(rng.integers(1, scene.max_objects + 1))
    tries = 0
    while len(objects) < n and tries < 12 * n:
        tries += 1
        cls, mask = _random_shape(rng, h, w, min(h, w), classes, scene.size_range)
        area = int(mask.sum())
        if area < 6:
            continue
        box = _bbox(mask)
        if min(box[2] - box[0], box[3] - box[1]) < 3:  # keep every box at least 3 px wide and high
            continue
        if any(_box_iou(box, o['box']) > scene.max_box_iou for o in objects):  # cheap test first
            continue
        new_visible = []
        for o in objects:
            vis = o['visible'] & ~mask
            if vis.sum() < scene.min_visible * o['area'] or _box_iou(box, _bbox(vis)) > scene.max_box_iou:
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
        colour = _pick_colour(rng, under, scene.min_contrast)
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


def video_frames(seed: int, frames: int, size, n_objects: int, classes, scene: Scene | str = STANDARD):
    """The frames (BGR uint8, ``size`` = (width, height)) of a clip of ``n_objects`` shapes of ``classes`` (names)
    moving, turning and bouncing off the borders over one textured background drawn with ``scene``."""
    scene = get_scene(scene)
    w, h = (int(v) for v in size)
    rng = np.random.default_rng([int(seed), _SPLIT_ID['video'], 0])
    bg = _background(rng, h, w, scene)
    side = min(h, w)
    objs = []
    for _ in range(n_objects):
        name = classes[int(rng.integers(len(classes)))]
        d = side * math.exp(rng.uniform(math.log(0.12), math.log(0.35)))
        polys = _shape_polys(name, d / 2, rng)  # already rotated by a random angle
        r = float(np.abs(polys[0]).max())
        speed, heading = rng.uniform(1.0, 3.5), rng.uniform(0, 2 * math.pi)
        objs.append(dict(polys=polys, r=r, pos=rng.uniform([r, r], [w - 1 - r, h - 1 - r]),
                         vel=speed * np.array([math.cos(heading), math.sin(heading)]),
                         spin=rng.uniform(-0.08, 0.08), angle=0.0,
                         colour=_pick_colour(rng, [bg.mean((0, 1))], scene.min_contrast)))
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
        yield np.floor(canvas + 0.5).astype(np.uint8)
