"""Deployment: OpenVINO (FP32, --half, --int8) and TorchScript for every family, and export.py failing loudly.

Untrained 64 px models (BN statistics randomised so that outputs are not trivial) on a few synthetic images:
the point is that each format exports, runs in detect.py and val.py, and computes what the ONNX export
computes; accuracy on trained models is measured in docs/deploy_openvino.md. Network switched off.
"""

from pathlib import Path
from types import SimpleNamespace

import export  # yolov5/export.py (pytest.ini puts the base on sys.path)
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from block_utils import randomize_bn
from e2e_utils import nonet_env, run_yolo, val_map, with_pythonpath
from make_shapes import ensure_shapes  # scripts/make_shapes.py
from models.common import DetectMultiBackend
from models.experimental import attempt_load
from models.yolo import Model

import extensions.deploy.openvino as ovd
from extensions.deploy.failures import ExportFailed
from extensions.deploy.openvino import (
    PRECISION_ENV,
    UPSTREAM_DEFAULT_DATA,
    OpenVINOError,
    calibration_images,
    letterbox_as_val,
    load,
    precision_config,
)
from extensions.families import FAMILIES, by_key

ov = pytest.importorskip('openvino', reason='openvino is in requirements.txt: run python scripts/setup.py')
pytestmark = pytest.mark.e2e
IMG = 64
NAMES = {0: 'circle', 1: 'rectangle', 2: 'triangle'}
# OpenVINO (through DetectMultiBackend's load(), so in the f32 it compiles with by default) vs onnxruntime, on the
# raw output (1, anchors, 5 + nc): both in float32, so they differ only by summation order and conv algorithms.
# Measured on these models (12 images, 8 noise inputs, each family): boxes (pixels, 3..400) at most 4.4e-7
# relative (9e-5 px), scores at most 9e-8 absolute. RTOL/ATOL 1e-5 keep 20-100x headroom and still catch a
# model that runs in bf16 (8 mantissa bits: ~4e-3 relative), as OpenVINO's default does on CPUs with bf16.
RTOL, ATOL = 1e-5, 1e-5
FAMILY_IDS = tuple(f.key for f in FAMILIES)


def make_checkpoint(cfg: Path, out: Path, seed: int = 0) -> Path:
    """An untrained checkpoint as train.py saves one (pickled FP16 model, class names), BN statistics randomised."""
    torch.manual_seed(seed)
    model = Model(str(cfg), ch=3, nc=len(NAMES))
    randomize_bn(model, seed=seed, deep=True)
    model.names = dict(NAMES)
    torch.save({'epoch': -1, 'model': model.half(), 'ema': None, 'optimizer': None, 'best_fitness': None,
                'updates': None, 'opt': None, 'git': None, 'date': None}, out)
    return out


def constant_types(network) -> set:
    consts = (op for op in network.get_ops() if op.get_type_name() == 'Constant')
    return {op.get_output_element_type(0).get_type_name() for op in consts}


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('deploy')
    data = ensure_shapes(tmp / 'shapes', img=IMG, train=8, val=4, seed=5, classes=len(NAMES), verbose=False)
    image = sorted((data.parent / 'images' / 'val').glob('*.jpg'))[0]
    env = nonet_env(tmp)
    env.pop(PRECISION_ENV, None)  # the runs below set it where they test it
    return SimpleNamespace(tmp=tmp, env=env, data=data, image=image)


@pytest.fixture(scope='module')
def exported(work):
    """Per family, a checkpoint; one export.py run (three --weights) to TorchScript, ONNX (static) and OpenVINO FP32."""
    out = {}
    for family in FAMILY_IDS:
        d = work.tmp / family
        d.mkdir()
        pt = make_checkpoint(by_key(family).yaml('n'), d / 'best.pt')
        out[family] = SimpleNamespace(pt=pt, ts=pt.with_suffix('.torchscript'), onnx=pt.with_suffix('.onnx'),
                                      ov=d / 'best_openvino_model')
    _, log = run_yolo('export.py', '--weights', *(e.pt for e in out.values()), '--include', 'torchscript', 'onnx',
                      'openvino', '--img', IMG, '--device', 'cpu', env=work.env)
    assert 'export failure' not in log and log.count('export success') == 3 * len(FAMILY_IDS), log[-3000:]
    return out


@pytest.mark.parametrize('family', FAMILY_IDS)
def test_openvino_export_layout_and_numbers_match_onnx(exported, work, family, monkeypatch):
    e = exported[family]
    for name in ('best.xml', 'best.bin', 'best.yaml'):  # upstream's layout
        assert (e.ov / name).is_file(), f'{name} missing from {e.ov}'
    network = ov.Core().read_model(str(e.ov / 'best.xml'))
    assert 'FakeQuantize' not in {op.get_type_name() for op in network.get_ops()}
    assert 'f16' not in constant_types(network)  # FP32 weights: ov.save_model's default would compress to FP16
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    compiled, batch, _ = load(e.ov)  # as DetectMultiBackend compiles it
    assert batch == 1
    session = ort.InferenceSession(str(e.onnx), providers=['CPUExecutionProvider'])
    rng = np.random.default_rng(0)
    for x in (letterbox_as_val(work.image, (IMG, IMG)), rng.random((1, 3, IMG, IMG), dtype=np.float32)):
        want = session.run(None, {session.get_inputs()[0].name: x})[0]
        got = compiled([x])[0]
        assert got.shape == want.shape == (1, 3 * (8 * 8 + 4 * 4 + 2 * 2), 5 + len(NAMES))
        assert np.ptp(want[..., 4]) > 1e-3 and np.ptp(want[..., :4]) > IMG, 'degenerate output: comparison void'
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('family', FAMILY_IDS)
@pytest.mark.parametrize('fmt', ['openvino', 'torchscript'])
def test_detect_and_val_run_the_export(exported, work, family, fmt):
    e = exported[family]
    weights = e.ov if fmt == 'openvino' else e.ts
    env = dict(work.env, YOLOV5_OPENVINO_PRECISION='default') if family == 'serd' else work.env
    project = work.tmp / 'runs' / f'{family}-{fmt}'
    _, log = run_yolo('detect.py', '--weights', weights, '--source', work.image, '--img', IMG, '--device', 'cpu',
                      '--project', project, '--name', 'detect', env=env)
    assert (project / 'detect' / work.image.name).is_file()
    _, vlog = run_yolo('val.py', '--weights', weights, '--data', work.data, '--img', IMG, '--device', 'cpu',
                       '--workers', 0, '--project', project, '--name', 'val', env=work.env)
    assert val_map(vlog)['images'] == 4
    if fmt == 'openvino':
        line = next(ln for ln in log.splitlines() if ln.startswith('OpenVINO ') and 'inference precision' in ln)
        if family == 'serd':  # OpenVINO's own choice, stated: bf16 on CPUs with bf16 instructions, else f32
            assert 'YOLOV5_OPENVINO_PRECISION=default' in line, line
        vline = next(ln for ln in vlog.splitlines() if 'inference precision' in ln)
        assert 'inference precision f32 (YOLOV5_OPENVINO_PRECISION unset: f32)' in vline, vline
        assert 'Forcing --batch-size 1 square inference' in vlog  # static model: as upstream runs exported models


def test_int8_export_quantizes_the_body_keeps_the_box_decoding_float_and_runs(exported, work):
    pt = work.tmp / 'int8' / 'best.pt'
    pt.parent.mkdir()
    pt.write_bytes(exported['res2'].pt.read_bytes())
    _, log = run_yolo('export.py', '--weights', pt, '--include', 'openvino', '--int8', '--data', work.data,
                      '--img', IMG, '--device', 'cpu', env=work.env)
    assert 'INT8 calibration on 8 of 8 train images' in log
    out = pt.parent / 'best_int8_openvino_model'
    assert (out / 'best.xml').is_file() and (out / 'best.yaml').is_file()
    assert not (pt.parent / 'best_openvino_model').exists()  # an FP32 export beside it would be left alone
    network = ov.Core().read_model(str(out / 'best.xml'))
    fq = [op for op in network.get_ops() if op.get_type_name() == 'FakeQuantize']
    assert len(fq) > 50  # the body's convolutions are quantized
    head = f'/model.{attempt_load(pt, device=torch.device("cpu")).model[-1].i}/'
    for op in fq:  # no quantizer feeds the head's decoding (sigmoid, grid/anchor arithmetic, concatenation)
        for target in op.output(0).get_target_inputs():
            name = target.get_node().get_friendly_name()
            assert not name.startswith(head) or '/m.' in name, f'{op.get_friendly_name()} quantizes the input of {name}'
    model = DetectMultiBackend(out, device=torch.device('cpu'))  # what detect.py and val.py load
    assert model.xml and model.stride == 32 and model.names == NAMES
    y = model(torch.from_numpy(letterbox_as_val(work.image, (IMG, IMG))))
    assert tuple(y.shape) == (1, 252, 8) and torch.isfinite(y).all()
    want = ort.InferenceSession(str(exported['res2'].onnx), providers=['CPUExecutionProvider']).run(
        None, {'images': letterbox_as_val(work.image, (IMG, IMG))})[0]
    scale = np.abs(want[..., :4]).max()  # INT8 of an untrained model: close to FP32, not equal
    assert np.abs(y.numpy()[..., :4] - want[..., :4]).max() < 0.1 * scale


def test_a_failed_format_fails_the_command_and_keeps_the_others(exported, work):
    """openvino made unimportable in the subprocess, onnx requested too: the .onnx is written, exit 1, one line."""
    broken = work.tmp / 'no-openvino'
    (broken / 'openvino').mkdir(parents=True)
    (broken / 'openvino' / '__init__.py').write_text("raise ImportError('openvino made unimportable by the test')\n")
    env = with_pythonpath(broken, env=work.env)
    pt = work.tmp / 'fail' / 'best.pt'
    pt.parent.mkdir()
    pt.write_bytes(exported['res2'].pt.read_bytes())
    rc, log = run_yolo('export.py', '--weights', pt, '--include', 'onnx', 'openvino', '--img', 32, '--device', 'cpu',
                       env=env, check=False)
    assert rc == 1, log[-3000:]
    assert pt.with_suffix('.onnx').is_file()
    assert 'Traceback' not in log, log[-3000:]
    errors = [ln for ln in log.splitlines() if ln.startswith('ERROR:')]
    assert len(errors) == 1, log[-3000:]
    assert 'failed for 1 format(s): openvino (MissingRequirementError' in errors[0]
    assert 'openvino made unimportable by the test' in errors[0] and 'pip install' in errors[0]
    assert f'Exported: {pt.with_suffix(".onnx")}' in errors[0]


@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # the classic ONNX exporter, as export.py uses it
def test_export_run_raises_an_exception_not_systemexit(exported, work, monkeypatch):
    """export.run() (what upstream benchmarks.py calls, catching exceptions per format) raises ExportFailed."""


    def broken(*args, **kwargs):
        raise RuntimeError('conversion failed\non two lines')
    monkeypatch.setattr(ovd, 'export', broken)
    pt = work.tmp / 'run' / 'best.pt'
    pt.parent.mkdir()
    pt.write_bytes(exported['serd'].pt.read_bytes())
    with pytest.raises(ExportFailed) as info:
        export.run(weights=pt, include=['onnx', 'openvino'], imgsz=[32], device='cpu')
    assert [f for f, _ in info.value.failed] == ['openvino']
    assert info.value.exported == [str(pt.with_suffix('.onnx'))]
    assert 'openvino (RuntimeError: conversion failed on two lines)' in str(info.value)
    assert export.run(weights=pt, include=['onnx'], imgsz=[32], device='cpu') == [str(pt.with_suffix('.onnx'))]


@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # the classic ONNX exporter, as export.py uses it
def test_half_on_cpu_gives_fp16_weights_and_keeps_the_onnx_fp32(exported, work):

    pt = work.tmp / 'half' / 'best.pt'
    pt.parent.mkdir()
    pt.write_bytes(exported['resnest'].pt.read_bytes())
    export.run(weights=pt, include=['onnx', 'openvino'], imgsz=[32], device='cpu', half=True)
    network = ov.Core().read_model(str(pt.parent / 'best_openvino_model' / 'best.xml'))
    consts = constant_types(network)
    assert 'f16' in consts
    fp32_bin = (exported['resnest'].ov / 'best.bin').stat().st_size
    assert (pt.parent / 'best_openvino_model' / 'best.bin').stat().st_size < 0.6 * fp32_bin
    assert onnx.load(str(pt.with_suffix('.onnx'))).graph.initializer[0].data_type == onnx.TensorProto.FLOAT
    with pytest.raises(OpenVINOError, match='torchscript'):  # would need the PyTorch model in FP16: a GPU
        export.run(weights=pt, include=['torchscript', 'openvino'], imgsz=[32], device='cpu', half=True)


def test_int8_needs_data_with_a_train_split(work, tmp_path):
    for data in (None, UPSTREAM_DEFAULT_DATA):  # export.py's --data default is not the model's data
        with pytest.raises(OpenVINOError, match='pass --data <data.yaml>'):
            calibration_images(data, (IMG, IMG))
    no_train = tmp_path / 'val-only.yaml'
    no_train.write_text(f'path: {work.data.parent}\nval: images/val\nnames: {NAMES}\n')
    with pytest.raises(OpenVINOError, match='has no train: split'):
        calibration_images(str(no_train), (IMG, IMG))


def test_precision_env_var(exported, monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert precision_config() == ('f32', {'INFERENCE_PRECISION_HINT': 'f32'})  # explicit, on every CPU
    hint = 'INFERENCE_PRECISION_HINT'
    for value, config in (('BF16', {hint: 'bf16'}), (' f16 ', {hint: 'f16'}), ('default', {})):
        monkeypatch.setenv(PRECISION_ENV, value)
        assert precision_config() == (value.strip().lower(), config)
    monkeypatch.setenv(PRECISION_ENV, 'fp32')
    with pytest.raises(OpenVINOError, match=f"{PRECISION_ENV}='fp32' is not a precision.*f32, bf16, f16, default"):
        load(exported['res2'].ov)
    monkeypatch.setenv(PRECISION_ENV, 'bf16')
    lines = []
    monkeypatch.setattr(ovd, '_logger', lambda: SimpleNamespace(info=lines.append))
    compiled, batch, xml = load(exported['res2'].ov)
    assert batch == 1 and xml.name == 'best.xml' and len(lines) == 1  # one line
    actual = compiled.get_property('INFERENCE_PRECISION_HINT').get_type_name()
    assert f'inference precision {actual} ({PRECISION_ENV}=bf16' in lines[0], lines
    if actual != 'bf16':  # a CPU without bf16 instructions runs f32 and the line says why
        assert 'bf16 is not available on this CPU' in lines[0], lines
