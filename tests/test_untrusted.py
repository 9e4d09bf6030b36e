"""Files from strangers are data: model YAMLs and checkpoints never run code, bad files are named, outputs never
clobber inputs, and two trainings never share a run directory.

Payloads only touch a file named PWNED in a temporary directory: the tests check that it never appears.
"""

import glob
import os
import subprocess
import sys
import textwrap
import time
from argparse import Namespace
from copy import deepcopy
from pathlib import Path
from types import SimpleNamespace

import cv2
import models.yolo as yolo
import numpy as np
import pytest
import torch
import yaml
from conftest import BASE, ROOT
from e2e_utils import nonet_env, run_yolo, with_pythonpath
from models.common import Conv
from models.yolo import Model
from utils.dataloaders import verify_image_label
from utils.torch_utils import de_parallel

from extensions import registry
from extensions.checkpoints import TRUST_ENV, UntrustedCheckpointError, allowed_globals
from extensions.compat import load_checkpoint, save_checkpoint
from extensions.datasets.shapes import ensure_shapes
from extensions.inputs import LabelClassError, check_label_classes, check_label_rows
from extensions.outputs import OutputPathError, RunDirBusyError, check_output, lock_run_dir
from extensions.registry import ModelConfigError

DATA = ROOT / 'tests' / 'data' / 'untrusted'
VALID = DATA / '_valid.yaml'
PLAIN_N = BASE / 'models' / 'yolov5n.yaml'

# bad YAML -> what its one-line error must name (besides the file)
BAD_YAMLS = {
    'payload-argument': ('layer 1', 'C3_Res2Block', 'is an expression', 'expressions are not evaluated'),
    'payload-module': ('layer 2', 'is not a module name', 'expressions are not evaluated'),
    'payload-activation': ("key 'activation'", 'is not a call of a torch.nn activation', 'not evaluated'),
    'depth-negative': ("key 'depth_multiple'", 'finite number > 0, got -1'),
    'depth-text': ("key 'depth_multiple'", "got 'x'"),
    'width-zero': ("key 'width_multiple'", 'got 0'),
    'nc-zero': ("key 'nc'", '>= 1, got 0'),
    'anchors-ragged': ("key 'anchors'", 'same number of anchors'),
    'from-forward': ('layer 4', 'from index 5 points forward'),
}


# ------------------------------------------------------------------------------------------------- model YAMLs
def test_the_fixtures_valid_model_builds():
    model = Model(str(VALID))
    assert model(torch.zeros(1, 3, 64, 64))[0].shape[-1] == 7  # 5 + nc


@pytest.mark.parametrize('name', sorted(BAD_YAMLS))
def test_bad_yaml_is_refused_naming_file_and_place_without_running_code(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a payload would write ./PWNED here
    with pytest.raises(ModelConfigError) as e:
        Model(str(DATA / f'{name}.yaml'))
    msg = str(e.value)
    for part in (f'{name}.yaml', *BAD_YAMLS[name], 'Fix:'):
        assert part in msg, f'{part!r} not in: {msg}'
    assert '\n' not in msg
    assert not (tmp_path / 'PWNED').exists()


@pytest.mark.parametrize('name', [n for n in sorted(BAD_YAMLS) if n.startswith('payload')])
def test_cli_refuses_yaml_payload_with_one_line(name, tmp_path):
    f = DATA / f'{name}.yaml'
    r = subprocess.run([sys.executable, str(BASE / 'models' / 'yolo.py'), '--cfg', str(f)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, env=nonet_env(tmp_path))
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert f.name in last and 'expressions are not evaluated' in last or 'not evaluated' in last, last
    assert not (tmp_path / 'PWNED').exists()


def test_train_refuses_yaml_payload(tmp_path):
    data = ensure_shapes(tmp_path / 'shapes', img=64, train=4, val=2, seed=3, verbose=False)
    env = nonet_env(tmp_path)
    rc, out = run_yolo('train.py', '--cfg', DATA / 'payload-argument.yaml', '--weights', '', '--data', data,
                       '--img', 64, '--epochs', 1, '--device', 'cpu', '--project', tmp_path / 'runs', env=env,
                       cwd=tmp_path, check=False)
    assert rc != 0 and 'payload-argument.yaml' in out.strip().splitlines()[-1]
    assert not (tmp_path / 'PWNED').exists()


def test_literals_and_names_upstream_yamls_use():
    names = {'nc': 7, 'anchors': [[1, 2]]}
    assert registry.literal_args(['nc', 'anchors', 'None', 'True', 'False', 'nearest', '0.5', '[1, 2]', 3, None],
                                 0, 'Conv', names) == [7, [[1, 2]], None, True, False, 'nearest', 0.5, [1, 2], 3, None]
    for expr in ('nc + 1', 'os.system("x")', '(lambda: 1)()', 'nc.__class__'):
        with pytest.raises(ModelConfigError, match='is an expression'):
            registry.literal_args([expr], 3, 'Conv', names)
    act = registry.activation('nn.LeakyReLU(0.1)')
    assert isinstance(act, torch.nn.LeakyReLU) and act.negative_slope == 0.1
    assert isinstance(registry.activation('torch.nn.ReLU(inplace=True)'), torch.nn.ReLU)
    for bad in ('nn.SiLU', 'os.system("x")', 'nn.Linear(nn.SiLU())', 'nn.Module.__subclasses__()'):
        with pytest.raises(ModelConfigError):
            registry.activation(bad)


@pytest.mark.parametrize('m', ['os.path', 'torch.load', 'DetectMultiBackend', 'sys'])
def test_module_names_resolve_to_module_classes_only(m):
    with pytest.raises(ModelConfigError):
        registry.resolve(m, 0, vars(yolo))


# --- every YAML builds exactly as it did when parse_model eval()-ed (the reference: trusted repository files only)
def _eval_args(args, i, m, names):
    out = []
    for a in args:
        try:
            out.append(eval(a, vars(yolo), dict(names)) if isinstance(a, str) else a)  # upstream's eval
        except NameError:
            out.append(a)
    return out


def _eval_resolve(m, i, namespace):
    spec = registry.registered().get(m) if isinstance(m, str) else None
    return spec.module if spec else eval(m, namespace) if isinstance(m, str) else m  # upstream's eval


ALL_YAMLS = sorted(p for p in glob.glob(str(BASE / 'models' / '**' / '*.yaml'), recursive=True)
                   if 'backbone' in Path(p).read_text()) + sorted(map(str, (ROOT / 'models_yaml').glob('*.yaml')))


def _build(cfg):
    """parse_model's layers (seeded) and their raw head outputs on one input: what Model() wraps."""
    d = yaml.safe_load(Path(cfg).read_text())
    torch.manual_seed(0)
    layers, _ = yolo.parse_model(deepcopy(d), ch=[d.get('ch', 3)])
    layers.eval()
    layers[-1].train()  # raw maps: the head needs no strides
    size = 256 if 'p7' in Path(cfg).name else 128 if 'p6' in Path(cfg).name else 64
    x, y = torch.linspace(0, 1, 3 * size * size).reshape(1, 3, size, size), []
    with torch.no_grad():
        for m in layers:
            x = m(y[m.f] if isinstance(m.f, int) and m.f != -1 else
                  [x if j == -1 else y[j] for j in m.f] if isinstance(m.f, list) else x)
            y.append(x)
    return [m.type for m in layers], layers.state_dict(), x


@pytest.mark.parametrize('cfg', ALL_YAMLS, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_every_yaml_builds_as_it_did_with_eval(cfg, monkeypatch):
    monkeypatch.setattr(Conv, 'default_act', Conv.default_act)  # an activation: key sets it for the process
    new = _build(cfg)
    with monkeypatch.context() as mp:
        mp.setattr(registry, 'literal_args', _eval_args)
        mp.setattr(registry, 'resolve', _eval_resolve)
        mp.setattr(registry, 'activation', lambda act: eval(act, vars(yolo)))
        ref = _build(cfg)
    assert new[0] == ref[0]
    assert new[1].keys() == ref[1].keys()
    assert all(torch.equal(new[1][k], ref[1][k]) for k in ref[1])
    assert len(_flat(new[2])) == len(_flat(ref[2])) and all(map(torch.equal, _flat(new[2]), _flat(ref[2])))


def _flat(y) -> list:
    return [t for x in y for t in _flat(x)] if isinstance(y, (list, tuple)) else [y]


# ------------------------------------------------------------------------------------------------ checkpoints
class Payload:
    """Unpickling this calls open(path, 'w'), creating the file: proof that code from the file ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), 'w')



PAYLOAD_GLOBAL = "asks for the global 'io.open'"


@pytest.fixture
def payload_ckpt(tmp_path):
    f = tmp_path / 'payload.pt'
    torch.save({'model': Payload(tmp_path / 'PWNED'), 'epoch': -1}, f)
    return f


def test_payload_checkpoint_is_refused_before_running(payload_ckpt, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(UntrustedCheckpointError) as e:
        load_checkpoint(payload_ckpt)
    msg = str(e.value)
    assert 'payload.pt' in msg and PAYLOAD_GLOBAL in msg and f'{TRUST_ENV}=1' in msg and '\n' not in msg
    assert not (payload_ckpt.parent / 'PWNED').exists()


def test_trust_switch_restores_upstream_loading(payload_ckpt, monkeypatch):
    monkeypatch.setenv(TRUST_ENV, '1')
    load_checkpoint(payload_ckpt)['model'].close()  # it ran: 'model' is the file object open() returned
    assert (payload_ckpt.parent / 'PWNED').exists()


@pytest.mark.parametrize('script', ['detect.py', 'val.py', 'export.py', 'train.py'])
def test_entry_points_refuse_payload_checkpoint(script, payload_ckpt, tmp_path):
    env = nonet_env(tmp_path)
    env.pop(TRUST_ENV, None)
    data = ensure_shapes(tmp_path / 'shapes', img=64, train=4, val=2, seed=3, verbose=False)
    args = {'detect.py': ['--source', data.parent / 'images' / 'val'], 'val.py': ['--data', data],
            'export.py': ['--include', 'onnx'], 'train.py': ['--data', data, '--epochs', 1]}[script]
    rc, out = run_yolo(script, '--weights', payload_ckpt, *args, '--img', 64, '--device', 'cpu', env=env,
                       cwd=tmp_path, check=False)
    last = out.strip().splitlines()[-1]
    assert rc != 0 and 'payload.pt' in last and PAYLOAD_GLOBAL in last, out[-2000:]
    assert not (tmp_path / 'PWNED').exists()


def test_torch_hub_refuses_payload_checkpoint(payload_ckpt, tmp_path):
    code = f"import torch; torch.hub.load({str(BASE)!r}, 'custom', {str(payload_ckpt)!r}, source='local')"
    env = nonet_env(tmp_path)
    env.pop(TRUST_ENV, None)
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode != 0 and PAYLOAD_GLOBAL in r.stderr
    assert not (tmp_path / 'PWNED').exists()


def test_train_format_and_upstream_format_checkpoints_load_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    model = Model(str(PLAIN_N), ch=3, nc=2)
    model.hyp, model.names = {'lr0': 0.01}, ['a', 'b']
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.zeros(1, 3, 64, 64))[0].sum().backward()
    opt.step()
    last = {'epoch': 3, 'best_fitness': np.array([0.25]), 'model': deepcopy(de_parallel(model)).half(),
            'ema': deepcopy(model).half(), 'updates': 12, 'optimizer': opt.state_dict(),
            'opt': vars(Namespace(weights='', cfg=str(PLAIN_N), save_dir=Path('runs/x'), hyp={'lr0': 0.01})),
            'git': {'remote': None, 'branch': None, 'commit': None}, 'date': '2026-01-01T00:00:00'}
    torch.save(last, tmp_path / 'last.pt')
    ckpt = load_checkpoint(tmp_path / 'last.pt')
    assert ckpt['best_fitness'][0] == 0.25 and ckpt['optimizer']['state'] and ckpt['model'].names == ['a', 'b']
    release = {'epoch': -1, 'best_fitness': None, 'model': deepcopy(model).half(), 'ema': None, 'updates': None,
               'optimizer': None, 'opt': {'imgsz': 640}, 'git': None, 'date': None}  # as upstream releases ship
    torch.save(release, tmp_path / 'yolov5n.pt')
    assert type(load_checkpoint(tmp_path / 'yolov5n.pt')['model']).__name__ == 'DetectionModel'


def test_allow_list_covers_old_names_and_no_loaders():
    allow = allowed_globals()
    for name in ('models.yolo.Model', 'models.yolo.DetectionModel', 'models.common.C3', 'extensions.blocks.Bottle2neck',
                 'torch.nn.modules.conv.Conv2d', 'numpy.core.multiarray._reconstruct'):
        assert name in allow, name
    assert not any(k.endswith('DetectMultiBackend') for k in allow)
    assert not any(k.startswith(('os.', 'posix.', 'subprocess.', 'builtins.')) for k in allow)


# ------------------------------------------------------------------------------------------------------ outputs
def test_check_output_refuses_input_directory_and_existing(tmp_path):
    f = tmp_path / 'r.pth'
    f.write_bytes(b'weights')
    with pytest.raises(OutputPathError, match='is the input'):
        check_output(f, inputs=[f], exist_ok=True)
    with pytest.raises(OutputPathError, match='is a directory'):
        check_output(tmp_path)
    with pytest.raises(OutputPathError, match='exists'):
        check_output(f)
    assert check_output(f, exist_ok=True) == f
    assert check_output(tmp_path / 'new.pt', inputs=[f]) == tmp_path / 'new.pt'
    assert f.read_bytes() == b'weights'


def test_atomic_checkpoints_keep_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        save_checkpoint({'model': torch.nn.Linear(1, 1)}, tmp_path / 'a.pt')
        assert (tmp_path / 'a.pt').stat().st_mode & 0o777 == 0o644
        (tmp_path / 'a.pt').chmod(0o640)
        save_checkpoint({'model': torch.nn.Linear(1, 1)}, tmp_path / 'a.pt')  # a replaced file keeps its mode
        assert (tmp_path / 'a.pt').stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


# ----------------------------------------------------------------------------------------------- images, labels
@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    f = tmp_path_factory.mktemp('untrusted') / 'plain.pt'
    model = Model(str(PLAIN_N), ch=3, nc=2)
    model.nc, model.names = 2, ['a', 'b']  # as train.py sets them
    torch.save({'model': model.half(), 'epoch': -1}, f)
    return f


def test_detect_processes_every_good_image_and_names_each_bad_one(weights, tmp_path):
    src = tmp_path / 'mixed'
    src.mkdir()
    (src / '0-empty.jpg').write_bytes(b'')
    (src / '1-text.jpg').write_text('not an image\n')
    rng = np.random.default_rng(0)
    for name in ('2-good.jpg', '3-good.png'):
        cv2.imwrite(str(src / name), rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    rc, out = run_yolo('detect.py', '--weights', weights, '--source', src, '--img', 64, '--device', 'cpu',
                       '--project', tmp_path, '--name', 'det', env=nonet_env(tmp_path), check=False)
    assert rc == 1
    assert f'skipped {src / "0-empty.jpg"}: not an image (empty file)' in out
    assert f'skipped {src / "1-text.jpg"}: not an image (OpenCV cannot decode it' in out
    assert sorted(p.name for p in (tmp_path / 'det').iterdir()) == ['2-good.jpg', '3-good.png']
    last = out.strip().splitlines()[-1]
    assert last.startswith('ERROR: 2 of 4 input files could not be read') and '0-empty.jpg' in last, last


@pytest.mark.parametrize('text,expect', [
    ('0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2\n', 'line 2 has 4 columns, expected 5'),
    ('0 0.5 nan 0.2 0.2\n', 'line 1: nan value'),
    ('0 0.5 0.5 0.2 0.2\nx 0.1 0.1 0.1 0.1\n', "line 2: 'x' is not a number"),
])
def test_label_problems_are_named(text, expect, tmp_path):
    im, lb = tmp_path / 'a.jpg', tmp_path / 'a.txt'
    cv2.imwrite(str(im), np.zeros((32, 32, 3), np.uint8))
    lb.write_text(text)
    with pytest.raises(ValueError, match=expect):
        check_label_rows([x.split() for x in text.splitlines()], lb)
    msg = verify_image_label((str(im), str(lb), ''))[-1]  # what the base warns with
    assert str(im) in msg and str(lb) in msg and expect in msg


def test_class_ids_out_of_range_name_the_label_file():
    ds = SimpleNamespace(labels=[np.array([[0, .5, .5, .1, .1]]), np.array([[3, .5, .5, .1, .1]])],
                         label_files=['a.txt', 'b.txt'])
    check_label_classes(ds, 4)
    with pytest.raises(LabelClassError, match=r'label b.txt has class 3, but the data yaml defines nc=3'):
        check_label_classes(ds, 3)


def test_val_checks_val_labels_naming_the_file(weights, tmp_path):
    data = ensure_shapes(tmp_path / 'shapes', img=64, train=4, val=3, seed=5, verbose=False)
    d = yaml.safe_load(data.read_text())
    d['nc'], d['names'] = 2, ['a', 'b']
    data.write_text(yaml.safe_dump(d))
    labels = sorted((data.parent / 'labels' / 'val').glob('*.txt'))
    for f in labels:
        f.write_text('1 0.5 0.5 0.2 0.2\n')
    bad = labels[1]
    bad.write_text('7 0.5 0.5 0.2 0.2\n')
    rc, out = run_yolo('val.py', '--weights', weights, '--data', data, '--img', 64, '--device', 'cpu',
                       '--project', tmp_path, env=nonet_env(tmp_path), check=False)
    last = out.strip().splitlines()[-1]
    assert rc != 0 and f'label {bad} has class 7' in last and 'nc=2' in last, out[-2000:]


# ------------------------------------------------------------------------------------------------- run dir lock
HOLD = textwrap.dedent("""
    import sys, time
    from extensions.outputs import lock_run_dir
    lock_run_dir(sys.argv[1])
    print('held', flush=True)
    time.sleep(120)
""")


@pytest.fixture
def held_dir(tmp_path):
    run_dir = tmp_path / 'runs' / 'exp'
    p = subprocess.Popen([sys.executable, '-c', HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True,
                         env=with_pythonpath(ROOT))
    assert p.stdout.readline().strip() == 'held'
    yield run_dir, p
    p.kill()
    p.wait()


def test_run_dir_lock_refuses_a_second_holder_and_frees_on_exit(held_dir):
    run_dir, p = held_dir
    with pytest.raises(RunDirBusyError, match=rf'in use by another training \(PID {p.pid},'):
        lock_run_dir(run_dir)
    p.kill()
    p.wait()
    deadline = time.time() + 10
    while True:  # the OS frees the lock with the process: no stale lock
        try:
            lock_run_dir(run_dir)
            break
        except RunDirBusyError:
            assert time.time() < deadline
            time.sleep(0.1)


def test_second_training_into_a_held_run_dir_is_refused(held_dir, tmp_path):
    run_dir, p = held_dir
    data = ensure_shapes(tmp_path / 'shapes', img=64, train=4, val=2, seed=3, verbose=False)
    rc, out = run_yolo('train.py', '--cfg', PLAIN_N, '--weights', '', '--data', data, '--img', 64, '--epochs', 1,
                       '--device', 'cpu', '--project', run_dir.parent, '--name', 'exp', '--exist-ok',
                       env=nonet_env(tmp_path), cwd=tmp_path, check=False)
    last = out.strip().splitlines()[-1]
    assert rc != 0 and f'{run_dir} is in use by another training (PID {p.pid}' in last, out[-2000:]
    assert not (run_dir / 'results.csv').exists()
