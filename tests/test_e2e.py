"""End to end, as a user runs it: train.py, val.py, detect.py, export.py on tiny budgets, network switched off."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import BASE, ROOT
from e2e_utils import count_frames, network_attempts, nonet_env, run_yolo, tree_state, val_map
from models.experimental import attempt_load
from models.yolo import Model
from utils.torch_utils import de_parallel

from extensions.datasets.coco128 import link_coco128
from extensions.datasets.shapes import ensure_shapes, make_video

pytestmark = pytest.mark.e2e
HYP = ROOT / 'scripts' / 'hyps' / 'hyp.short-cpu.yaml'
YAMLS = sorted((ROOT / 'models_yaml').glob('yolov5*.yaml'))
TRAIN_EPOCHS = 10


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('e2e')
    data = ensure_shapes(tmp / 'shapes', img=128, train=256, val=32, seed=3, classes=3, scene='demo', verbose=False)
    video = make_video(tmp / 'clip.mp4', frames=12, fps=6, size=(160, 128), seed=3, verbose=False)
    return SimpleNamespace(tmp=tmp, env=nonet_env(tmp), data=data, video=video,
                           val_images=data.parent / 'images' / 'val')


@pytest.fixture(scope='module')
def trained(work):
    """yolov5n-res2 trained from scratch for a few epochs at 128 px, then exported to ONNX."""
    project = work.tmp / 'runs'
    _, out = run_yolo('train.py', '--cfg', ROOT / 'models_yaml' / 'yolov5n-res2.yaml', '--data', work.data,
                      '--weights', '', '--hyp', HYP, '--optimizer', 'AdamW', '--img', 128, '--epochs', TRAIN_EPOCHS,
                      '--batch-size', 16, '--workers', 2, '--device', 'cpu', '--project', project, '--name', 'train',
                      env=work.env)
    run = project / 'train'
    pt = run / 'weights' / 'best.pt'
    _, export_out = run_yolo('export.py', '--weights', pt, '--include', 'onnx', '--dynamic', '--simplify',
                             '--img', 128, '--device', 'cpu', env=work.env)
    return SimpleNamespace(run=run, pt=pt, onnx=pt.with_suffix('.onnx'), train_log=out, export_log=export_out)


def test_training_writes_yolov5_outputs(trained):
    for name in ('results.csv', 'results.png', 'labels.jpg', 'labels_correlogram.jpg', 'confusion_matrix.png',
                 'train_batch0.jpg', 'val_batch0_labels.jpg', 'val_batch0_pred.jpg', 'hyp.yaml', 'opt.yaml',
                 'weights/best.pt', 'weights/last.pt'):
        assert (trained.run / name).is_file(), f'{name} missing from {trained.run}'
    rows = (trained.run / 'results.csv').read_text().strip().splitlines()
    assert len(rows) == 1 + TRAIN_EPOCHS
    assert 'C3_Res2Block' in trained.train_log  # the extension block was built from the YAML
    assert '%|' in trained.train_log  # YOLOv5's progress bars


def test_onnx_export_used_the_simplifier_and_matches_pytorch(trained):
    assert 'onnxslim' in trained.export_log and 'simplifier failure' not in trained.export_log
    model = attempt_load(trained.pt, device=torch.device('cpu'), fuse=True).eval()
    session = ort.InferenceSession(str(trained.onnx), providers=['CPUExecutionProvider'])
    x = torch.rand(2, 3, 96, 160)  # another batch and shape than exported: dynamic axes
    with torch.no_grad():
        want = model(x)[0].numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_val_pt_and_onnx_agree_and_model_learned(trained, work):
    maps = {}
    for w in (trained.pt, trained.onnx):
        _, out = run_yolo('val.py', '--weights', w, '--data', work.data, '--img', 128, '--device', 'cpu',
                          '--project', work.tmp / 'val', '--name', w.suffix[1:], env=work.env)
        maps[w.suffix] = val_map(out)
        # a --dynamic ONNX model is evaluated at the .pt's batch size and shapes (patches/0011)
        assert 'Forcing --batch-size 1' not in out, out[-2000:]
    assert maps['.pt']['mAP50'] > 0.01, f'the model learned nothing in {TRAIN_EPOCHS} epochs: {maps}'
    for k in ('mAP50', 'mAP50-95'):
        assert abs(maps['.pt'][k] - maps['.onnx'][k]) <= 0.005, maps  # within 0.5 points


@pytest.mark.parametrize('fmt', ['pt', 'onnx'])
def test_detect_on_image_directory_and_video(trained, work, fmt):
    weights = trained.pt if fmt == 'pt' else trained.onnx
    image = sorted(work.val_images.glob('*.jpg'))[0]
    for name, source in (('image', image), ('dir', work.val_images), ('video', work.video)):
        project = work.tmp / 'detect' / fmt
        _, log = run_yolo('detect.py', '--weights', weights, '--source', source, '--img', 128, '--device', 'cpu',
                          '--project', project, '--name', name, '--exist-ok', env=work.env)
        assert '[ERROR' not in log, log[-2000:]  # e.g. OpenCV's retrieveFrame error at a video's end (patches/0010)
        out = project / name
        if name == 'image':
            assert (out / image.name).is_file()
        elif name == 'dir':
            assert len(list(out.glob('*.jpg'))) == len(list(work.val_images.glob('*.jpg')))
        else:
            frames, fps = count_frames(out / work.video.name)
            assert (frames, fps) == count_frames(work.video)


def test_train_from_plain_yolov5_checkpoint_transfers_matching_layers(work):
    """--weights <plain YOLOv5 .pt> with an extension YAML: the layers that match are transferred."""
    plain = Model(str(BASE / 'models' / 'yolov5n.yaml'), ch=3, nc=6)
    ckpt = work.tmp / 'plain-yolov5n.pt'
    torch.save({'epoch': -1, 'model': de_parallel(plain).half(), 'ema': None, 'optimizer': None,
                'best_fitness': None, 'updates': None, 'opt': None, 'git': None, 'date': None}, ckpt)
    _, out = run_yolo('train.py', '--cfg', ROOT / 'models_yaml' / 'yolov5n-serd.yaml', '--data', work.data,
                      '--weights', ckpt, '--img', 64, '--epochs', 1, '--batch-size', 8, '--workers', 0,
                      '--noplots', '--device', 'cpu', '--project', work.tmp / 'runs', '--name', 'from-plain',
                      env=work.env)
    line = next(ln for ln in out.splitlines() if 'Transferred' in ln)
    got, total = (int(v) for v in line.split('Transferred ')[1].split(' ')[0].split('/'))
    assert 0 < got < total, line  # stem, Conv downsamplers, SPPF, Detect match; the C3 replacements do not


def test_resume_after_sigkill_mid_epoch(work):
    """SIGKILL during epoch 2, then --resume: the run finishes with all epochs and intact weights."""
    project, name, epochs = work.tmp / 'runs', 'killed', 3
    cmd = [sys.executable, str(BASE / 'train.py'), '--cfg', str(ROOT / 'models_yaml' / 'yolov5n-resnest.yaml'),
           '--data', str(work.data), '--weights', '', '--img', '64', '--epochs', str(epochs), '--batch-size', '4',
           '--workers', '0', '--noplots', '--device', 'cpu', '--project', str(project), '--name', name]
    last = project / name / 'weights' / 'last.pt'
    p = subprocess.Popen(cmd, cwd=ROOT, env=work.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while not last.exists() and p.poll() is None and time.time() - t0 < 600:
            time.sleep(0.2)
        assert last.exists(), 'no last.pt after the first epoch'
        time.sleep(1.5)  # into epoch 2
        assert p.poll() is None, 'training finished before it could be interrupted'
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    rows_before = (project / name / 'results.csv').read_text().strip().splitlines()
    assert len(rows_before) - 1 < epochs
    _, out = run_yolo('train.py', '--resume', last, env=work.env)
    assert 'Resuming training' in out
    rows = (project / name / 'results.csv').read_text().strip().splitlines()
    assert len(rows) == 1 + epochs, rows
    for w in ('best.pt', 'last.pt'):
        model = attempt_load(project / name / 'weights' / w, device=torch.device('cpu'))
        assert type(model.model[2]).__name__ == 'C3_ResNeSt'
    assert network_attempts(work.env) == ''


@pytest.mark.parametrize('cfg', YAMLS, ids=[p.stem for p in YAMLS])
def test_every_yaml_trains_from_scratch(cfg, work):
    tiny = ensure_shapes(work.tmp / 'tiny', img=64, train=8, val=4, seed=5, verbose=False)
    _, out = run_yolo('train.py', '--cfg', cfg, '--data', tiny, '--weights', '', '--img', 64, '--epochs', 1,
                      '--batch-size', 4, '--workers', 0, '--noplots', '--noval', '--device', 'cpu',
                      '--project', work.tmp / 'every', '--name', cfg.stem, env=work.env)
    assert (work.tmp / 'every' / cfg.stem / 'weights' / 'last.pt').is_file()
    assert 'nan' not in out.split('Starting training')[1].split('epochs completed')[0].lower()


def test_demo_main_job_smoke(work):
    """scripts/demo.py end to end on tiny settings: every artifact exists and pt/onnx mAP are reported."""
    project = work.tmp / 'demo'
    _, out = run_yolo('scripts/demo.py', '--data', work.data, '--video', work.video, '--epochs', 1, '--img', 64,
                      '--batch', 8, '--workers', 0, '--project', project, env=work.env, timeout=1200)
    summary = json.loads((project / 'exp1' / 'summary.json').read_text())
    assert set(summary['map']) == {'pt', 'onnx'}
    for path in list(summary['artifacts'].values()) + list(summary['weights'].values()):
        assert Path(path).exists(), path
    assert summary['video']['output_frames'] == summary['video']['input_frames'] == 12
    assert 'best.pt' in out and 'best.onnx' in out and 'mAP50' in out.split('Artifacts')[-1]


@pytest.mark.shared
def test_real_data_coco128_and_real_video(shared_data, tmp_path):
    """1 epoch of yolov5n-res2 on coco128 train2017 at 160 px, val on the disjoint val2017, detect on real video."""
    env = nonet_env(tmp_path)
    before = tree_state(shared_data / 'coco128')
    data = link_coco128(shared_data / 'coco128', tmp_path / 'coco128')
    project = tmp_path / 'runs'
    _, out = run_yolo('train.py', '--cfg', ROOT / 'models_yaml' / 'yolov5n-res2.yaml', '--data', data,
                      '--weights', '', '--img', 160, '--epochs', 1, '--batch-size', 16, '--workers', 2,
                      '--device', 'cpu', '--project', project, '--name', 'coco', env=env, timeout=1800)
    m = val_map(out)
    assert m['images'] == 128 and m['instances'] > 0  # validated on val2017
    assert tree_state(shared_data / 'coco128') == before  # nothing written into ../shared (label caches)
    best = project / 'coco' / 'weights' / 'best.pt'
    run_yolo('export.py', '--weights', best, '--include', 'onnx', '--img', 160, '--device', 'cpu', env=env)
    video = shared_data / 'video' / 'cockatoo.mp4'
    for w in (best, best.with_suffix('.onnx')):
        run_yolo('detect.py', '--weights', w, '--source', video, '--img', 160, '--device', 'cpu',
                 '--project', project, '--name', f'video-{w.suffix[1:]}', env=env, timeout=1200)
        assert count_frames(project / f'video-{w.suffix[1:]}' / video.name) == count_frames(video)


@pytest.mark.parametrize('cfg', ['yolov5n-res2', 'yolov5n-resnest', 'yolov5n-serd', 'yolov5s-rs'])
def test_export_every_family_dynamic_simplified_matches_pytorch(cfg, tmp_path, work):
    """export.py --include onnx --dynamic --simplify for each family; onnxruntime == PyTorch at a new shape."""
    model = Model(str(ROOT / 'models_yaml' / f'{cfg}.yaml'), ch=3, nc=5)
    for m in model.modules():  # non-trivial BN statistics, so that folding them is exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    pt = tmp_path / f'{cfg}.pt'
    torch.save({'model': de_parallel(model).half(), 'ema': None, 'epoch': -1}, pt)
    _, out = run_yolo('export.py', '--weights', pt, '--include', 'onnx', '--dynamic', '--simplify', '--img', 96,
                      '--device', 'cpu', env=work.env)
    assert 'onnxslim' in out and 'simplifier failure' not in out
    session = ort.InferenceSession(str(pt.with_suffix('.onnx')), providers=['CPUExecutionProvider'])
    x = torch.rand(3, 3, 64, 128)
    with torch.no_grad():
        want = attempt_load(pt, device=torch.device('cpu'), fuse=True)(x)[0].numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.shared
def test_demo_with_coco128_data_and_real_video(shared_data, tmp_path):
    """The README's main job with --data pointing at coco128 and the real video (tiny budget)."""
    env = nonet_env(tmp_path)
    before = tree_state(shared_data / 'coco128')
    data = link_coco128(shared_data / 'coco128', tmp_path / 'coco128')
    video = shared_data / 'video' / 'cockatoo.mp4'
    project = tmp_path / 'demo'
    run_yolo('scripts/demo.py', '--data', data, '--video', video, '--epochs', 1, '--img', 96, '--batch', 16,
             '--workers', 2, '--project', project, env=env, timeout=1800)
    summary = json.loads((project / 'exp1' / 'summary.json').read_text())
    assert summary['map']['pt']['images'] == summary['map']['onnx']['images'] == 128
    assert summary['video']['output_frames'] == summary['video']['input_frames'] == 280
    assert abs(summary['video']['output_fps'] - summary['video']['input_fps']) < 0.01
    assert len(list(Path(summary['artifacts']['detect_onnx_images']).glob('*.jpg'))) == 128
    assert tree_state(shared_data / 'coco128') == before  # nothing written into ../shared
