"""Reliability: bad configs, an unready base, bad data, bad checkpoints, interruptions, several processes."""

import json
import pickle
import shutil
import subprocess
import sys
import textwrap
from copy import deepcopy
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import yaml
from conftest import BASE, ROOT
from e2e_utils import count_frames, nonet_env, run_yolo, with_pythonpath
from models.experimental import attempt_load
from models.yolo import Model
from utils.torch_utils import de_parallel

from extensions.compat import CheckpointError, load_checkpoint, onnx_dynamic, save_checkpoint
from extensions.datasets.shapes import ensure_shapes, make_video
from extensions.registry import ModelConfigError

FAMILY_YAMLS = {f: ROOT / 'models_yaml' / f'yolov5n-{f}.yaml' for f in ('res2', 'resnest', 'serd')}
PLAIN_N = BASE / 'models' / 'yolov5n.yaml'


def load_yaml(path):
    return yaml.safe_load(Path(path).read_text())


def write_yaml(tmp_path, name, d):
    f = tmp_path / name
    f.write_text(yaml.safe_dump(d, sort_keys=False))
    return f


def save_like_train(model, f):
    """What train.py saves: the pickled model (half) in a dict."""
    torch.save({'epoch': -1, 'best_fitness': None, 'model': deepcopy(de_parallel(model)).half(), 'ema': None,
                'updates': None, 'optimizer': None, 'opt': None, 'git': None, 'date': None}, f)
    return f


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('reliability')
    return SimpleNamespace(tmp=tmp, env=nonet_env(tmp),
                           data=ensure_shapes(tmp / 'shapes', img=64, train=12, val=4, seed=7, verbose=False))


# ----------------------------------------------------------------------------------------------------- configs
def assert_one_message(e, *parts):
    msg = str(e.value)
    for p in parts:
        assert p in msg, f'{p!r} not in: {msg}'
    assert 'Fix:' in msg


def test_wrong_argument_type_names_file_layer_module_and_fix(tmp_path):
    d = load_yaml(FAMILY_YAMLS['res2'])
    i = next(k for k, layer in enumerate(d['backbone']) if layer[2] == 'C3_Res2Block')
    d['backbone'][i][3] = ['wide']
    with pytest.raises(ModelConfigError) as e:
        Model(str(write_yaml(tmp_path, 'bad-type.yaml', d)))
    assert_one_message(e, 'bad-type.yaml', f'layer {i}', 'C3_Res2Block', 'first argument must be the output channels')


def test_wrong_argument_value_names_file_layer_module_and_fix(tmp_path):
    d = load_yaml(FAMILY_YAMLS['res2'])
    i = next(k for k, layer in enumerate(d['backbone']) if layer[2] == 'C3_Res2Block')
    d['backbone'][i][3] = [d['backbone'][i][3][0], True, 1, 0.5, 26, 1]  # scale=1: Res2Net needs >= 2
    with pytest.raises(ModelConfigError) as e:
        Model(str(write_yaml(tmp_path, 'bad-value.yaml', d)))
    assert_one_message(e, 'bad-value.yaml', f'layer {i}', 'C3_Res2Block', 'scale')
    assert isinstance(e.value.__cause__, ValueError)


def test_handwritten_channel_mismatch_names_the_layer(tmp_path):
    d = load_yaml(FAMILY_YAMLS['serd'])
    d['backbone'].insert(1, [-1, 1, 'nn.Conv2d', [999, 64, 3, 1, 1]])  # in_channels written by hand, wrongly
    for layer in d['head']:  # keep the head's from-indices valid
        f = layer[0]
        layer[0] = [x + 1 if x > 0 else x for x in f] if isinstance(f, list) else f
    with pytest.raises(ModelConfigError) as e:
        Model(str(write_yaml(tmp_path, 'mismatch.yaml', d)))
    assert_one_message(e, 'mismatch.yaml', 'layer 1', 'Conv2d', 'fails on its input of shape (1, 16, 32, 32)')


def test_concat_of_wrong_resolution_names_the_layer(tmp_path):
    d = load_yaml(FAMILY_YAMLS['resnest'])
    j = next(k for k, layer in enumerate(d['head']) if layer[2] == 'Concat')
    d['head'][j][0] = [-1, 2]  # P2 instead of P4: spatial sizes differ
    with pytest.raises(ModelConfigError) as e:
        Model(str(write_yaml(tmp_path, 'concat.yaml', d)))
    assert_one_message(e, 'concat.yaml', f'layer {len(d["backbone"]) + j}', 'Concat')


def test_cli_reports_config_error_with_file_and_layer(tmp_path):
    d = load_yaml(FAMILY_YAMLS['res2'])
    d['backbone'][2][2] = 'C3_Res2Net'
    f = write_yaml(tmp_path, 'typo.yaml', d)
    r = subprocess.run([sys.executable, str(BASE / 'models' / 'yolo.py'), '--cfg', str(f)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert 'typo.yaml' in last and 'layer 2' in last and 'did you mean' in last and "'C3_Res2Block'" in last


# -------------------------------------------------------------------------------------------------------- base
def test_entry_points_refuse_an_unready_base_with_one_message(tmp_path):
    """No stamp (setup never finished) or patches changed since setup: one line saying to run setup."""
    root = tmp_path / 'overlay'  # a scratch copy, so that other tests never see a damaged base
    ignore = shutil.ignore_patterns('__pycache__', 'runs', '*.cache')
    for name in ('yolov5', 'extensions', 'patches', 'scripts'):
        shutil.copytree(ROOT / name, root / name, ignore=ignore, symlinks=True)
    stamp = root / 'yolov5' / '.overlay-stamp.json'
    saved = stamp.read_bytes()
    for damage in ('no-stamp', 'patches-changed'):
        if damage == 'no-stamp':
            stamp.unlink()
        else:
            stamp.write_bytes(saved)
            patch = sorted((root / 'patches').glob('0*.diff'))[-1]
            patch.write_text(patch.read_text() + '\n')  # e.g. a newer patch pulled in after setup
        for script in ('train.py', 'val.py', 'detect.py', 'export.py', 'models/yolo.py'):
            r = subprocess.run([sys.executable, str(root / 'yolov5' / script), '--help'], cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 1, (script, damage, r.stdout[-500:], r.stderr[-2000:])
            assert 'Traceback' not in r.stderr and r.stderr.strip().count('\n') == 0, r.stderr
            assert 'Run `python scripts/setup.py`' in r.stderr
    r = subprocess.run([sys.executable, str(root / 'scripts' / 'setup.py'), '--skip-deps'], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr  # setup re-verifies and writes the stamp: the entry points work again
    assert subprocess.run([sys.executable, str(root / 'yolov5' / 'detect.py'), '--help'],
                          capture_output=True).returncode == 0


# -------------------------------------------------------------------------------------------------------- data
def test_bad_images_and_labels_are_skipped_with_warnings(work):
    """Upstream behaviour with an extension model: corrupt image, empty label, out-of-bounds box skipped."""
    src = work.data.parent
    bad = work.tmp / 'bad-data'
    shutil.copytree(src, bad)
    for cache in bad.rglob('*.cache'):
        cache.unlink()
    imgs = sorted((bad / 'images' / 'train').glob('*.jpg'))
    imgs[0].write_bytes(b'not a jpeg at all')                                    # corrupt image
    (bad / 'labels' / 'train' / f'{imgs[1].stem}.txt').write_text('')             # empty label: background
    (bad / 'labels' / 'train' / f'{imgs[2].stem}.txt').write_text('0 0.5 0.5 1.7 0.3\n')  # outside [0, 1]
    d = load_yaml(work.data)
    d['path'] = str(bad)
    data = write_yaml(bad, 'bad.yaml', d)
    _, out = run_yolo('train.py', '--cfg', FAMILY_YAMLS['serd'], '--data', data, '--weights', '', '--img', 64,
                      '--epochs', 1, '--batch-size', 4, '--workers', 0, '--noplots', '--device', 'cpu',
                      '--project', work.tmp / 'runs', '--name', 'bad-data', env=work.env)
    assert f'{imgs[0].name}: ignoring corrupt image/label' in out
    assert f'{imgs[2].name}: ignoring corrupt image/label: non-normalized or out of bounds coordinates' in out
    labels = [bad / 'labels' / 'train' / f'{im.stem}.txt' for im in imgs[1:]]
    n_background = sum(not lb.exists() or not lb.read_text().strip() for lb in labels)  # incl. the emptied one
    assert f'{n_background} backgrounds, 2 corrupt' in out
    assert (work.tmp / 'runs' / 'bad-data' / 'weights' / 'last.pt').is_file()


def test_label_class_out_of_range_fails_clearly(work):
    bad = work.tmp / 'bad-class'
    shutil.copytree(work.data.parent, bad)
    for cache in bad.rglob('*.cache'):
        cache.unlink()
    label = sorted((bad / 'labels' / 'train').glob('*.txt'))[0]
    label.write_text('99 0.5 0.5 0.2 0.2\n')
    d = load_yaml(work.data)
    d['path'] = str(bad)
    rc, out = run_yolo('train.py', '--cfg', FAMILY_YAMLS['res2'], '--data', write_yaml(bad, 'c.yaml', d),
                       '--weights', '', '--img', 64, '--epochs', 1, '--batch-size', 4, '--workers', 0,
                       '--noplots', '--device', 'cpu', '--project', work.tmp / 'runs', '--name', 'bad-class',
                       env=work.env, check=False)
    assert rc != 0
    last = out.strip().splitlines()[-1]
    assert f'label {label} has class 99' in last and f'nc={len(d["names"])}' in last, last


def test_truncated_videos(work, tmp_path):
    """Damaged after its header: processed up to the damage (upstream). Unopenable: one error naming the file."""
    model = Model(str(FAMILY_YAMLS['resnest']), ch=3, nc=6)
    weights = save_like_train(model, tmp_path / 'w.pt')
    avi = tmp_path / 'clip.avi'  # AVI keeps its header first: a truncated file still opens
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*'MJPG'), 10, (96, 64))
    rng = np.random.default_rng(0)
    for _ in range(30):
        writer.write(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    writer.release()
    cut = tmp_path / 'cut.avi'
    cut.write_bytes(avi.read_bytes()[: avi.stat().st_size * 6 // 10])
    _, out = run_yolo('detect.py', '--weights', weights, '--source', cut, '--img', 64, '--device', 'cpu',
                      '--project', tmp_path, '--name', 'cut', env=work.env)
    frames, fps = count_frames(tmp_path / 'cut' / 'cut.mp4')  # detect.py saves videos as .mp4
    assert 0 < frames < 30 and fps == 10

    mp4 = make_video(tmp_path / 'v.mp4', frames=30, fps=10, size=(96, 64), verbose=False)
    truncated = tmp_path / 'truncated.mp4'  # mp4v writes its index (moov) last: cut in half, it cannot open
    truncated.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    rc, out = run_yolo('detect.py', '--weights', weights, '--source', truncated, '--img', 64, '--device', 'cpu',
                       '--project', tmp_path, '--name', 'det', env=work.env, check=False)
    assert rc != 0
    last = out.strip().splitlines()[-1]
    assert last.startswith('ERROR: 1 of 1 input files could not be read') and \
        f'{truncated} (not a video OpenCV can open' in last, last


# -------------------------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope='module')
def ext_checkpoint(work):
    model = Model(str(FAMILY_YAMLS['res2']), ch=3, nc=6)
    return save_like_train(model, work.tmp / 'res2.pt'), model


def test_torch_hub_local_loads_extension_checkpoint_in_fresh_process(ext_checkpoint, tmp_path):
    weights, model = ext_checkpoint
    code = textwrap.dedent(f"""
        import torch
        m = torch.hub.load({str(BASE)!r}, 'custom', {str(weights)!r}, source='local', device='cpu')
        print(type(m).__name__, type(m.model.model.model[2]).__name__)
    """)
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=nonet_env(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-2:] == ['AutoShape', 'C3_Res2Block']


def test_truncated_and_foreign_checkpoints_give_clear_errors(ext_checkpoint, tmp_path, work):
    weights, _ = ext_checkpoint
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(weights.read_bytes()[:4096])
    text = tmp_path / 'notes.pt'
    text.write_text('these are not weights\n')
    state = tmp_path / 'state_dict.pt'
    torch.save(Model(str(PLAIN_N), ch=3, nc=2).state_dict(), state)
    for f, expect in ((truncated, 'truncated or corrupt'), (text, 'truncated or corrupt'),
                      (state, 'not a YOLOv5 checkpoint')):
        with pytest.raises(CheckpointError, match=expect):
            load_checkpoint(f)
        rc, out = run_yolo('detect.py', '--weights', f, '--source', work.data.parent / 'images' / 'val',
                           '--img', 64, '--device', 'cpu', '--project', tmp_path, env=work.env, check=False)
        assert rc != 0 and expect in out.strip().splitlines()[-1] and f.name in out.strip().splitlines()[-1]


def test_plain_yolov5_checkpoints_still_load(tmp_path):
    plain = Model(str(PLAIN_N), ch=3, nc=2).eval()
    f = save_like_train(plain, tmp_path / 'plain.pt')
    loaded = attempt_load(f, device=torch.device('cpu'), fuse=False)
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in plain.parameters())


def test_checkpoint_save_is_atomic(tmp_path):
    f = tmp_path / 'last.pt'
    save_checkpoint({'model': nn.Linear(2, 2)}, f)
    before = f.read_bytes()

    class Boom:
        def __reduce__(self):
            raise RuntimeError('killed while saving')

    with pytest.raises(RuntimeError, match='killed while saving'):
        save_checkpoint({'model': nn.Linear(2, 2), 'x': [0] * 100000, 'boom': Boom()}, f)
    assert f.read_bytes() == before  # the previous checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ['last.pt']  # no temp file left behind
    assert isinstance(load_checkpoint(f)['model'], nn.Linear)


# ------------------------------------------------------------------------------------------------ multi-process
@pytest.mark.parametrize('family', sorted(FAMILY_YAMLS))
def test_ddp_two_cpu_processes_agree_and_learn(family, tmp_path):
    out = tmp_path / 'ddp.json'
    env = with_pythonpath(BASE)  # ddp_check.py imports the base's models and utils
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                        str(ROOT / 'tests' / 'ddp_check.py'), '--cfg', str(FAMILY_YAMLS[family]), '--out', str(out),
                        '--steps', '8'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res['world'] == 2 and res['backend'] == 'gloo'
    assert max(res['max_grad_diff']) <= 1e-6 * max(1.0, res['grad_scale'])  # DDP averaged identical gradients
    # DDP optimises the mean of the ranks' losses (each rank has its own batch): that mean must go down
    first, last = (sum(losses[k] for losses in res['losses']) for k in (0, -1))
    assert last < first, res['losses']


@pytest.mark.parametrize('family', sorted(FAMILY_YAMLS))
def test_sync_batchnorm_conversion_builds_pickles_and_matches(family, tmp_path):
    model = Model(str(FAMILY_YAMLS[family]), ch=3, nc=4).eval()
    n_bn = sum(type(m) is nn.BatchNorm2d for m in model.modules())
    sync = torch.nn.SyncBatchNorm.convert_sync_batchnorm(deepcopy(model)).eval()
    assert n_bn > 0
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in sync.modules()) == n_bn
    assert not any(type(m) is nn.BatchNorm2d for m in sync.modules())
    f = save_like_train(sync, tmp_path / 'sync.pt')
    loaded = load_checkpoint(f)['model'].float().eval()
    assert pickle.loads(pickle.dumps(loaded)) is not None
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():  # eval mode on CPU: SyncBatchNorm uses running stats, same function as BatchNorm
        torch.testing.assert_close(loaded(x)[0], model.half().float()(x)[0], rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------------ val of ONNX
@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # the classic exporter, as export.py uses it
@pytest.mark.parametrize('dynamic', [True, False])
def test_onnx_dynamic_tells_dynamic_exports_from_static(dynamic, tmp_path):
    """patches/0011: val.py evaluates an ONNX model like the .pt only when its batch, height and width are free."""
    f = tmp_path / 'm.onnx'
    axes = {'images': {0: 'batch', 2: 'height', 3: 'width'}} if dynamic else None
    torch.onnx.export(nn.Conv2d(3, 4, 3, padding=1).eval(), torch.zeros(1, 3, 64, 64), str(f), opset_version=17,
                      input_names=['images'], output_names=['output0'], dynamic_axes=axes, dynamo=False)
    session = ort.InferenceSession(str(f), providers=['CPUExecutionProvider'])
    assert onnx_dynamic(SimpleNamespace(onnx=True, session=session)) is dynamic
    assert onnx_dynamic(SimpleNamespace(onnx=False, pt=True)) is False  # .pt: upstream's own path
    assert onnx_dynamic(SimpleNamespace(onnx=True, net=object())) is False  # --dnn (OpenCV) has no session
