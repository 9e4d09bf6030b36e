"""The built-in synthetic shapes dataset, extensions/datasets/shapes.py (determinism, honest labels, scenes,
caching, video), and its command line scripts/make_shapes.py.

Small budgets throughout (16 images at 128 px); the whole file runs in a few seconds plus the YOLOv5 import.
"""

import dataclasses
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import make_shapes as cli  # scripts/make_shapes.py (scripts/ is on the test path: pytest.ini)
import numpy as np
import pytest
import yaml
from conftest import ROOT
from e2e_utils import with_pythonpath
from utils.dataloaders import LoadImagesAndLabels
from utils.general import LOGGER, check_dataset

from extensions.datasets import shapes as ms

SMALL = dict(img=128, train=12, val=4)
LINE_RE = re.compile(r'^\d+( \d\.\d{6}){4}$')


def _files(out: Path):
    """{relative path: bytes} of every image and label file."""
    return {str(p.relative_to(out)): p.read_bytes() for sub in ('images', 'labels')
            for p in sorted((out / sub).rglob('*')) if p.is_file() and p.suffix in ('.jpg', '.txt')}


def _mtimes(out: Path):
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob('*') if p.is_file()}


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp('data') / 'shapes'
    data_yaml = ms.ensure_shapes(out, seed=3, verbose=False, **SMALL)
    return out, data_yaml


# ------------------------------------------------------------------------------------------------ determinism
def test_same_seed_identical_different_seed_differs(small, tmp_path):
    out, _ = small
    again = Path(ms.ensure_shapes(tmp_path / 'again', seed=3, verbose=False, **SMALL)).parent
    other = Path(ms.ensure_shapes(tmp_path / 'other', seed=4, verbose=False, **SMALL)).parent
    a, b, c = _files(out), _files(again), _files(other)
    assert len(a) == 2 * (SMALL['train'] + SMALL['val'])
    assert a == b  # byte-identical labels and JPEG images
    for name in a:  # and identical decoded arrays
        if name.endswith('.jpg'):
            assert np.array_equal(cv2.imread(str(out / name)), cv2.imread(str(again / name)))
    assert a.keys() == c.keys()
    assert sum(a[k] != c[k] for k in a) >= len(a) // 2
    assert ms._read_stamp(out)['sha256'] == ms._read_stamp(again)['sha256'] != ms._read_stamp(other)['sha256']


def test_render_sample_is_deterministic_per_image():
    im1, o1 = ms.render_sample(7, 'val', 5, 96)
    im2, o2 = ms.render_sample(7, 'val', 5, 96)
    assert np.array_equal(im1, im2) and [o['box'] for o in o1] == [o['box'] for o in o2]
    im3, _ = ms.render_sample(7, 'train', 5, 96)  # splits use independent streams
    assert not np.array_equal(im1, im3)


# ------------------------------------------------------------------------------------------------ labels
def test_label_files_are_valid(small):
    out, _ = small
    n_lines = 0
    for split in ('train', 'val'):
        images = sorted((out / 'images' / split).glob('*.jpg'))
        labels = sorted((out / 'labels' / split).glob('*.txt'))
        assert len(images) == len(labels) == SMALL[split]
        assert [p.stem for p in images] == [p.stem for p in labels]
        for img_path, lb_path in zip(images, labels):
            im = cv2.imread(str(img_path))
            assert im is not None and im.shape == (SMALL['img'], SMALL['img'], 3)
            text = lb_path.read_text()
            for line in text.splitlines():
                assert LINE_RE.match(line), line
            lb = ms.read_labels(lb_path)
            n_lines += len(lb)
            if not len(lb):
                continue
            cls, xywh = lb[:, 0], lb[:, 1:]
            assert ((cls >= 0) & (cls < len(ms.CLASSES)) & (cls == cls.round())).all()
            assert ((xywh > 0) & (xywh <= 1)).all()
            x1, y1 = xywh[:, 0] - xywh[:, 2] / 2, xywh[:, 1] - xywh[:, 3] / 2
            x2, y2 = xywh[:, 0] + xywh[:, 2] / 2, xywh[:, 1] + xywh[:, 3] / 2
            assert (x1 >= -1e-6).all() and (y1 >= -1e-6).all() and (x2 <= 1 + 1e-6).all() and (y2 <= 1 + 1e-6).all()
            assert (xywh[:, 2:] * SMALL['img'] >= 1.99).all()  # at least 2 px wide and high (3 before occlusion)
    stats = ms._read_stamp(out)['stats']
    assert sum(stats['instances']) == n_lines and stats['images'] == SMALL['train'] + SMALL['val']


def test_labels_match_the_drawn_shapes(small):
    """Each label is the bounding box of its shape's visible pixels (within 1 px), and that shape is visible."""
    out, _ = small
    img = SMALL['img']
    k3 = np.ones((3, 3), np.uint8)
    for split in ('train', 'val'):
        for i in range(SMALL[split]):
            image, objects = ms.render_sample(3, split, i, img)
            jpg_path = out / 'images' / split / f'{split}_{i:05d}.jpg'
            ok, buf = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, ms.JPEG_QUALITY])
            assert ok and buf.tobytes() == jpg_path.read_bytes()  # the file is exactly this rendering
            jpg = cv2.imread(str(jpg_path))
            lb = ms.read_labels(out / 'labels' / split / f'{split}_{i:05d}.txt')
            assert len(lb) == len(objects)
            for row, o in zip(lb, objects):
                assert row[0] == o['cls']
                vis = o['visible']
                assert not (vis & ~o['mask']).any()  # visible part of the shape's own mask
                assert vis.sum() >= ms.STANDARD.min_visible * o['mask'].sum()  # occlusion is capped
                ys, xs = np.nonzero(vis)
                mask_box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
                c, xc, yc, w, h = row
                label_box = np.array([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2]) * img
                assert np.abs(label_box - mask_box).max() <= 1.0, (split, i, label_box, mask_box)
                # honest label: the shape stands out from its immediate surroundings in the written image
                inner = cv2.erode(vis.astype(np.uint8), k3).astype(bool)
                inner = inner if inner.sum() >= 3 else vis
                full = o['mask'].astype(np.uint8)
                ring = (cv2.dilate(full, np.ones((5, 5), np.uint8)) > 0) & ~(cv2.dilate(full, k3) > 0)
                jf = jpg.astype(np.float32)
                contrast = np.linalg.norm(np.median(jf[inner], 0) - np.median(jf[ring], 0))
                assert contrast > 30, (split, i, o['cls'], contrast)


def test_scene_distribution():
    """Over many images: every class, small and large shapes, occlusions and pure-background images occur."""
    img, classes, sides, occluded, empty, counts = 128, set(), [], 0, 0, []
    for i in range(120):
        _, objects = ms.render_sample(0, 'train', i, img)
        empty += not objects
        counts.append(len(objects))
        for o in objects:
            classes.add(o['cls'])
            x1, y1, x2, y2 = o['box']
            sides.append(max(x2 - x1, y2 - y1) / img)
            occluded += o['visible'].sum() < o['mask'].sum()
    assert classes == set(range(len(ms.CLASSES)))
    assert min(sides) < 0.08 and max(sides) > 0.35
    assert occluded >= 5
    assert 2 <= empty <= 30
    assert max(counts) >= 5


# ------------------------------------------------------------------------------------------------ scenes
def test_scenes_are_immutable_values_passed_explicitly():
    """A scene is a frozen value handed to the drawing; using one never changes the module or another scene."""
    standard, demo = ms.SCENES['standard'], ms.SCENES['demo']
    assert standard == ms.Scene() and (demo.max_objects, demo.texture, demo.p_clutter) == (4, 0.5, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        standard.max_objects = 2
    with pytest.raises(TypeError):
        ms.SCENES['mine'] = demo
    with pytest.raises(ValueError, match='scene must be one of'):
        ms.ensure_shapes(img=64, scene='hard', verbose=False)
    with pytest.raises(ValueError):
        ms.Scene(size_range=(0.5, 0.1))

    before = ms.render_sample(0, 'train', 3, 96)[0]
    demo_objects = [o for i in range(40) for o in ms.render_sample(0, 'train', i, 128, scene='demo')[1]]
    assert np.array_equal(ms.render_sample(0, 'train', 3, 96)[0], before)  # drawing the demo changed nothing
    assert not np.array_equal(ms.render_sample(0, 'train', 3, 96, scene=demo)[0], before)
    per_image = [len(ms.render_sample(0, 'train', i, 128, scene=demo)[1]) for i in range(40)]
    assert max(per_image) <= demo.max_objects < max(len(ms.render_sample(0, 'train', i, 128)[1]) for i in range(40))
    assert min(max(o['box'][2] - o['box'][0], o['box'][3] - o['box'][1]) for o in demo_objects) >= 0.1 * 128

    few = dataclasses.replace(standard, max_objects=1, p_background=0.0)  # a custom scene
    assert all(len(ms.render_sample(1, 'val', i, 64, scene=few)[1]) == 1 for i in range(10))


def test_the_scene_is_part_of_the_cache_key(tmp_path):
    out = tmp_path / 'shapes'
    ms.ensure_shapes(out, seed=2, verbose=False, **SMALL)
    standard = _files(out)
    ms.ensure_shapes(out, seed=2, verbose=False, scene='demo', **SMALL)
    assert ms._read_stamp(out)['params']['scene']['max_objects'] == 4 and _files(out) != standard
    ms.ensure_shapes(out, seed=2, verbose=False, scene=ms.SCENES['standard'], **SMALL)
    assert _files(out) == standard

    video = tmp_path / 'v.mp4'
    ms.make_video(video, frames=3, size=(64, 64), verbose=False)
    plain = video.read_bytes()
    ms.make_video(video, frames=3, size=(64, 64), verbose=False, scene='demo')  # another background
    assert video.read_bytes() != plain


# ------------------------------------------------------------------------------------------------ yaml
def test_data_yaml(small):
    out, data_yaml = small
    assert data_yaml == out / 'shapes.yaml'
    data = yaml.safe_load(data_yaml.read_text())
    assert Path(data['path']) == out and Path(data['path']).is_absolute()
    assert data['train'] == 'images/train' and data['val'] == 'images/val'
    assert data['names'] == dict(enumerate(ms.CLASSES))
    for k in ('train', 'val'):
        assert (Path(data['path']) / data[k]).is_dir()
        assert (Path(data['path']) / data[k].replace('images', 'labels')).is_dir()


# ------------------------------------------------------------------------------------------------ caching
def test_second_call_is_a_fast_noop(small):
    out, data_yaml = small
    before = _mtimes(out)
    t0 = time.perf_counter()
    assert ms.ensure_shapes(out, seed=3, verbose=False, **SMALL) == data_yaml
    assert time.perf_counter() - t0 < 0.5
    assert _mtimes(out) == before


def test_changed_parameters_regenerate(tmp_path):
    out = tmp_path / 'shapes'
    ms.ensure_shapes(out, seed=1, verbose=False, **SMALL)
    first = _files(out)
    ms.ensure_shapes(out, seed=2, verbose=False, **SMALL)
    assert ms._read_stamp(out)['params']['seed'] == 2 and _files(out) != first
    ms.ensure_shapes(out, seed=2, verbose=False, img=128, train=5, val=2)
    assert len(list((out / 'images' / 'train').iterdir())) == 5
    assert not list(tmp_path.glob('.shapes.tmp-*'))


def test_interrupted_generation_is_redone(tmp_path):
    out = tmp_path / 'shapes'
    # 1. a leftover temp dir of a killed run, no dataset yet
    junk = tmp_path / '.shapes.tmp-999999'
    (junk / 'images' / 'train').mkdir(parents=True)
    (junk / 'images' / 'train' / 'train_00000.jpg').write_bytes(b'half')
    ms.ensure_shapes(out, seed=5, verbose=False, **SMALL)
    assert not junk.exists() and ms._is_valid(out, ms._params(seed=5, **SMALL))
    reference = _files(out)

    # 2. a dataset without its completion stamp
    (out / ms.STAMP).unlink()
    ms.ensure_shapes(out, seed=5, verbose=False, **SMALL)
    assert (out / ms.STAMP).is_file() and _files(out) == reference

    # 3. a file missing from a stamped dataset
    (out / 'images' / 'val' / 'val_00001.jpg').unlink()
    ms.ensure_shapes(out, seed=5, verbose=False, **SMALL)
    assert _files(out) == reference


def test_concurrent_calls_do_not_clash(tmp_path):
    out = tmp_path / 'shapes'
    code = (f'from extensions.datasets.shapes import ensure_shapes; '
            f'ensure_shapes({str(out)!r}, img=64, train=40, val=5, verbose=False)')
    env = with_pythonpath(ROOT)
    procs = [subprocess.Popen([sys.executable, '-c', code], stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    assert ms._is_valid(out, ms._params(img=64, train=40, val=5, seed=0))
    assert not list(tmp_path.glob('.shapes.tmp-*'))


def test_moved_dataset_gets_its_path_fixed(small, tmp_path):
    out, _ = small
    moved = tmp_path / 'elsewhere' / 'shapes'
    shutil.copytree(out, moved)
    data_yaml = ms.ensure_shapes(moved, seed=3, verbose=False, **SMALL)
    assert yaml.safe_load(data_yaml.read_text())['path'] == str(moved)
    assert _files(moved) == _files(out)


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    out = tmp_path / 'mydata'
    (out / 'images' / 'train').mkdir(parents=True)
    (out / 'images' / 'train' / 'cat.jpg').write_bytes(b'x')
    (out / 'README.txt').write_text('mine')
    with pytest.raises(FileExistsError):
        ms.ensure_shapes(out, verbose=False, **SMALL)
    assert (out / 'README.txt').read_text() == 'mine'
    ms.ensure_shapes(out, force=True, verbose=False, **SMALL)
    assert not (out / 'README.txt').exists() and (out / 'mydata.yaml').is_file()
    a_file = tmp_path / 'afile'
    a_file.write_text('mine')
    with pytest.raises(FileExistsError):
        ms.ensure_shapes(a_file, verbose=False, **SMALL)
    assert a_file.read_text() == 'mine'
    assert not list(tmp_path.glob('.*.tmp-*'))


def test_class_subset(tmp_path):
    data_yaml = ms.ensure_shapes(tmp_path / 'c3', classes='circle, rectangle,triangle', verbose=False, **SMALL)
    assert yaml.safe_load(data_yaml.read_text())['names'] == {0: 'circle', 1: 'rectangle', 2: 'triangle'}
    labels = np.concatenate([ms.read_labels(p) for p in (tmp_path / 'c3' / 'labels').rglob('*.txt')])
    assert set(labels[:, 0].astype(int)) == {0, 1, 2}
    t0 = time.perf_counter()  # a count N means the first N classes: the same parameters, so cached
    ms.ensure_shapes(tmp_path / 'c3', classes=3, verbose=False, **SMALL)
    assert time.perf_counter() - t0 < 0.5
    data_yaml = ms.ensure_shapes(tmp_path / 'sr', classes=['star', 'ring'], verbose=False, **SMALL)
    assert yaml.safe_load(data_yaml.read_text())['names'] == {0: 'star', 1: 'ring'}
    for bad in ('hexagon', ['circle', 'circle'], 0, 7, []):
        with pytest.raises(ValueError):
            ms.ensure_shapes(tmp_path / 'bad', classes=bad, verbose=False, **SMALL)


def test_bad_parameters():
    with pytest.raises(ValueError):
        ms.ensure_shapes(img=16, verbose=False)
    with pytest.raises(ValueError):
        ms.ensure_shapes(train=0, verbose=False)


# ------------------------------------------------------------------------------------------------ video
def test_video_frames_fps_and_cache(tmp_path):
    path = ms.make_video(tmp_path / 'v' / 'shapes.mp4', frames=20, fps=10, size=(160, 128), seed=1, verbose=False)
    assert path == tmp_path / 'v' / 'shapes.mp4'
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 20 and frames[0].shape == (128, 160, 3)
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 1  # the shapes move
    assert ms.video_info(path) == dict(frames=20, fps=pytest.approx(10), width=160, height=128)

    mtime = path.stat().st_mtime_ns
    ms.make_video(path, frames=20, fps=10, size=(160, 128), seed=1, verbose=False)
    assert path.stat().st_mtime_ns == mtime  # cached
    ms.make_video(path, frames=12, fps=12, size=(160, 128), seed=1, verbose=False)
    assert ms.video_info(path)['frames'] == 12 and ms.video_info(path)['fps'] == pytest.approx(12)
    assert not list(path.parent.glob('.shapes.tmp-*'))


# ------------------------------------------------------------------------------------------------ CLI
def test_cli(tmp_path, capsys):
    out = tmp_path / 'cli'
    assert cli.main(['--out', str(out), '--img', '64', '--train', '3', '--val', '2', '--seed', '9', '--quiet',
                     '--video', str(tmp_path / 'cli.mp4'), '--frames', '5', '--fps', '5', '--video-size', '64x64']) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / 'cli.yaml'), str(tmp_path / 'cli.mp4')]
    assert len(os.listdir(out / 'images' / 'train')) == 3
    with pytest.raises(SystemExit) as e:
        cli.main(['--help'])
    assert e.value.code == 0
    assert cli.main(['--out', str(tmp_path / 'bad'), '--classes', 'hexagon']) == 2
    assert 'hexagon' in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ YOLOv5
def test_yolov5_dataloader_accepts_it(small):
    """YOLOv5's own LoadImagesAndLabels reads the train split: no corrupt/missing files, every label found."""
    out, data_yaml = small
    data = check_dataset(str(data_yaml))  # what train.py / val.py do with --data
    assert data['nc'] == len(ms.CLASSES) and data['names'] == dict(enumerate(ms.CLASSES))
    assert Path(data['train']) == out / 'images' / 'train' and Path(data['val']) == out / 'images' / 'val'
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    LOGGER.addHandler(handler)
    try:
        for p in out.glob('labels/*.cache'):
            p.unlink()
        ds = LoadImagesAndLabels(str(out / 'images' / 'train'), img_size=128, batch_size=4, augment=False,
                                 prefix='shapes: ')
    finally:
        LOGGER.removeHandler(handler)
    assert not records, [r.getMessage() for r in records]
    expected = [len(ms.read_labels(p)) for p in sorted((out / 'labels' / 'train').glob('*.txt'))]
    assert len(ds) == SMALL['train']
    assert [len(lb) for lb in ds.labels] == expected
    cache = np.load(out / 'labels' / 'train.cache', allow_pickle=True).item()
    nf, nm, ne, nc, n = cache['results']
    assert (nf, nm, nc) == (SMALL['train'], 0, 0) and cache['msgs'] == []
    assert ne == sum(e == 0 for e in expected)  # pure-background images have empty label files
    img, labels, _, _ = ds[0]
    assert img.shape[0] == 3 and labels.shape == (expected[0], 6)
    # YOLOv5's label cache in labels/ must not make the dataset look incomplete or foreign
    assert ms._is_valid(out, ms._params(seed=3, **SMALL)) and ms._looks_generated(out)
