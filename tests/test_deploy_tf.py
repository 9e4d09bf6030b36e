"""TensorFlow exports of models with extension blocks (patches/0014, extensions/tf/): the twins of every block
equal the PyTorch blocks, every family exports to TFLite fp32 and fp16 (and SavedModel, GraphDef) with the
outputs of the PyTorch model, detect.py and val.py run a .tflite, and a block without a twin fails clearly. A block
registered with ``tf=NO_TF_TWIN`` declares that it has none: the exports refuse it by name, and the export tests
skip the models that use it, saying so.

Tolerances. Twin vs PyTorch block (fp32, NHWC vs NCHW): the same arithmetic in another order (TF's conv kernels,
the BN folded in float64 instead of applied after the conv) differs by float32 rounding, measured <= 6e-7 on
outputs of magnitude 0.5..4 (ulp(4) = 4.8e-7); rtol = atol = 1e-5 leaves 15x margin, while any wrong padding,
pool, layout or softmax axis moves outputs by 1e-2 or more. Whole models through TFLite fp32 (XNNPACK kernels):
rtol 1e-4 and atol 1e-3 on boxes in pixels and on scores, as the ONNX export tests use (measured: boxes
<= 1e-4 px, scores <= 3e-7). TFLite fp16 stores the weights in float16 (relative rounding 2^-11 = 4.9e-4 per
weight; the CPU kernels compute in float32): measured boxes <= 0.1 px on 64 x 96 images and scores <= 6e-6;
the test allows 0.5 px and 0.01, far below what changes a detection (NMS IoU 0.45 on boxes of 8+ px).
The export's rows come in upstream TFDetect's order, which :func:`torch_order` maps to PyTorch's.

TensorFlow is imported once per session (slow: 10-40 s) and only after torchvision (see
extensions/tf/__init__.py). Budgets are tiny for 2 CPU cores: maps of 7x11 for blocks, 64x96 images for models.
"""

from __future__ import annotations

import platform
import re
from copy import deepcopy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
import yaml
from block_utils import fuse, randomize_bn
from e2e_utils import nonet_env, run_yolo, val_map
from export import run as export_run
from models.common import Conv, DetectMultiBackend
from models.experimental import attempt_load
from models.yolo import Model
from utils.torch_utils import de_parallel

import extensions  # noqa: F401  (registers the blocks)
from extensions import registry
from extensions.blocks import (
    Bottle2neck,
    C3_Res2Block,
    C3_ResNeSt,
    C3_SEResNetD,
    DeepStem,
    DownsampleAvg,
    Res2NetStage,
    ResNeStBottleneck,
    ResNeStStage,
    ResNetDDown,
    ResNetStem,
    SEResNetDBottleneck,
    SEResNetDStage,
    SplitAttention,
    SqueezeExcite,
)
from extensions.datasets.shapes import ensure_shapes
from extensions.families import FAMILIES, MODELS_YAML, SCALES
from extensions.registry import NO_TF_TWIN, MissingTwinError, register, unregister

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='session')
def tf():
    """TensorFlow, imported once per session (10-40 s), after torchvision (imported above by YOLOv5's utils; see
    extensions/tf/__init__.py). Every module that imports TensorFlow is imported inside the tests for that."""
    if platform.machine() != 'x86_64':
        pytest.importorskip('tensorflow', reason='requirements.txt installs tensorflow-cpu on x86_64 only')
    import tensorflow
    return tensorflow


# ------------------------------------------------------------------------------------------------ block twins
def with_mean(stem: ResNetStem) -> ResNetStem:
    """A stem whose input-mean buffer is set, as scripts/init_backbone.py sets it to the ImageNet mean."""
    stem.mean.copy_(torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
    return stem


# id -> (constructor, c1). Every block and part: stride 1/2, shortcut or not, radix 1/2/4, cardinality 2, avd
# first/last, grouped convs, ReLU/SiLU/no activation.
CONFIGS = {
    'r2-normal': (lambda: Bottle2neck(16, 16), 16),
    'r2-stage-s2': (lambda: Bottle2neck(16, 32, stride=2), 16),
    'r2-stage-s1': (lambda: Bottle2neck(16, 16, stage=True), 16),
    'r2-noshortcut-32w3s-g2': (lambda: Bottle2neck(16, 32, shortcut=False, base_width=32, scale=3, g=2), 16),
    'r2-relu': (lambda: Bottle2neck(16, 16, act=nn.ReLU()), 16),
    'r2-noact': (lambda: Bottle2neck(16, 24, act=False), 16),
    'splat-r1': (lambda: SplitAttention(16, 24, radix=1), 16),
    'splat-r2': (lambda: SplitAttention(16, 16), 16),
    'splat-r2k2': (lambda: SplitAttention(16, 32, g=2, radix=2), 16),
    'splat-r4k2-s2': (lambda: SplitAttention(16, 16, s=2, g=2, radix=4), 16),
    'rst-normal': (lambda: ResNeStBottleneck(16, 16), 16),
    'rst-s2-avd-last': (lambda: ResNeStBottleneck(16, 32, stride=2), 16),
    'rst-s2-avd-first-r4k2': (lambda: ResNeStBottleneck(16, 32, stride=2, radix=4, cardinality=2, avd_first=True), 16),
    'rst-s2-noavd-r1': (lambda: ResNeStBottleneck(16, 32, stride=2, radix=1, avd=False), 16),
    'rst-noshortcut-relu': (lambda: ResNeStBottleneck(16, 16, shortcut=False, act=nn.ReLU()), 16),
    'serd-normal': (lambda: SEResNetDBottleneck(16, 16), 16),
    'serd-s2': (lambda: SEResNetDBottleneck(16, 32, stride=2, e=0.5), 16),
    'serd-droppath-g2': (lambda: SEResNetDBottleneck(16, 16, drop_path=0.2, g=2), 16),
    'serd-noshortcut-relu': (lambda: SEResNetDBottleneck(16, 24, shortcut=False, act=nn.ReLU()), 16),
    'deepstem': (lambda: DeepStem(3, 16), 3),
    'deepstem-s1': (lambda: DeepStem(3, 16, s=1, c_=8), 3),
    'resnetd-down': (lambda: ResNetDDown(16, 32), 16),
    'c3-res2': (lambda: C3_Res2Block(16, 32, 2), 16),
    'c3-res2-noshortcut': (lambda: C3_Res2Block(16, 32, 1, False, 1, 0.5, 32, 4), 16),
    'c3-resnest': (lambda: C3_ResNeSt(16, 32, 2), 16),
    'c3-resnest-r4k2-red8': (lambda: C3_ResNeSt(16, 32, 1, True, 1, 0.5, 4, 2, 8), 16),
    'c3-serd': (lambda: C3_SEResNetD(16, 32, 2, drop_path=0.1), 16),
    'c3-serd-noshortcut': (lambda: C3_SEResNetD(16, 32, 1, False), 16),
    # the pretrained backbones' stages and stem (ReLU, BN eps 1e-5; the stem's max pool at odd sizes)
    'stage-res2-s2': (lambda: Res2NetStage(16, 32, 2, 2), 16),
    'stage-resnest-s2': (lambda: ResNeStStage(16, 32, 2, 2), 16),
    'stage-serd-s1': (lambda: SEResNetDStage(16, 32, 2, 1), 16),
    'stem-maxpool': (lambda: with_mean(ResNetStem(3, 16, 8)), 3),
    'stem-replace-pool': (lambda: with_mean(ResNetStem(3, 16, 8, True)), 3),
    # shared parts, through the part table (extensions/tf/layers.py twin())
    'part-downsample-avg-s2': (lambda: DownsampleAvg(16, 32, 2), 16),
    'part-squeeze-excite': (lambda: SqueezeExcite(24, 0.25), 24),
}


def torch_order(y: np.ndarray, detect, img) -> np.ndarray:
    """Rows of a TF export's output in PyTorch's order. Upstream's TFDetect writes each level's rows cell-major
    (cell, anchor); PyTorch's Detect anchor-major (anchor, cell). The same rows (NMS ignores the order)."""
    out, start = [], 0
    for s in detect.stride.tolist():
        cells = (img[0] // int(s)) * (img[1] // int(s))
        block = y[:, start:start + cells * detect.na]
        out.append(block.reshape(len(y), cells, detect.na, -1).transpose(0, 2, 1, 3).reshape(block.shape))
        start += cells * detect.na
    assert start == y.shape[1], (start, y.shape)
    return np.concatenate(out, 1)


def twin_of(m):
    from extensions.tf.layers import twin
    return twin(m)


def nhwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize('fused', [False, True], ids=['unfused', 'fused'])
@pytest.mark.parametrize('cid', list(CONFIGS))
def test_twin_equals_block(cid, fused, tf):
    """The twin's output equals the PyTorch block's (eval mode), at odd and even map sizes and batch 1 and 2."""
    torch.manual_seed(0)
    ctor, c1 = CONFIGS[cid]
    m = randomize_bn(ctor()).eval()
    if fused:
        fuse(m)
        assert not any(isinstance(b, nn.BatchNorm2d) for b in m.modules())
    t = twin_of(m)
    for shape in ((2, c1, 7, 11), (1, c1, 8, 10)):
        x = torch.randn(*shape)
        with torch.no_grad():
            want = nhwc(m(x))
        got = t(tf.constant(nhwc(x))).numpy()
        assert got.shape == want.shape, (shape, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f'{cid} at {shape}')


@pytest.mark.parametrize('name', list(registry.registered()))
def test_registered_block_has_a_twin_or_declares_none(name, request):
    """The twin of every registered block is found (by the convention extensions.tf.<family module>.TF<Class>, or
    where its registration names it); a block registered with tf=NO_TF_TWIN is refused by name, without TensorFlow."""
    spec = registry.registered()[name]
    if not spec.has_tf_twin:
        with pytest.raises(MissingTwinError, match=rf"'{name}' .* declares that it has no TensorFlow twin"):
            registry.tf_twin(name)
        return
    request.getfixturevalue('tf')
    twin = registry.tf_twin(name)
    module, _, cls = spec.tf_target().partition(':')
    assert (twin.__module__, twin.__name__) == (module, cls), name
    if spec.tf is None:
        assert (module, cls) == (f'extensions.tf.{spec.module.__module__.rsplit(".", 1)[-1]}',
                                 f'TF{spec.module.__name__}'), name


# ------------------------------------------------------------------------------------------ a block w/o a twin
class NoTwinBlock(nn.Module):
    """A test-only block (out=same) with no TensorFlow twin."""

    def __init__(self, c1, c2):
        super().__init__()
        self.cv = Conv(c1, c2, 3)

    def forward(self, x):
        return self.cv(x)


class TFNoTwinBlock:
    """Stands in for a twin written outside extensions/tf/ and named with register(tf=...)."""

    def __new__(cls, *args, w=None):
        from extensions.tf.layers import TFConv
        return TFConv(w=w.cv)


TINY = {'nc': 3, 'depth_multiple': 1.0, 'width_multiple': 1.0, 'anchors': [[10, 13, 16, 30, 33, 23]],
        'backbone': [[-1, 1, 'Conv', [16, 3, 2]], [-1, 1, 'NoTwinBlock', []], [-1, 1, 'Conv', [16, 3, 2]]],
        'head': [[[2], 1, 'Detect', ['nc', 'anchors']]]}


@pytest.fixture
def no_twin_block():
    register(NoTwinBlock, out=registry.same, family='test')
    yield
    unregister('NoTwinBlock')


def tiny_model_and_tf(tf):
    from models.tf import TFModel
    model = Model(deepcopy(TINY), ch=3).eval()
    with torch.no_grad():
        return model, TFModel(cfg=model.yaml, model=model, nc=3, imgsz=(32, 32))


def test_block_without_twin_fails_naming_block_and_fix(no_twin_block, tf):
    with pytest.raises(MissingTwinError) as e:
        tiny_model_and_tf(tf)
    msg = str(e.value)
    for part in ("'NoTwinBlock'", 'no TensorFlow twin', 'extensions.tf.test_deploy_tf', 'class TFNoTwinBlock',
                 'extensions/tf/test_deploy_tf.py', "register(..., tf='package.module:Class')"):
        assert part in msg, (part, msg)


def test_twin_named_in_the_registration_is_used(tf):
    register(NoTwinBlock, out=registry.same, family='test', tf=f'{__name__}:TFNoTwinBlock')
    try:
        model, tf_model = tiny_model_and_tf(tf)
        model.model[-1].export = True
        x = torch.rand(1, 3, 32, 32)
        with torch.no_grad():
            want = model(x)[0].numpy()
        got = tf_model.predict(tf.constant(nhwc(x)))[0].numpy()
        got[..., :4] *= 32  # TFDetect gives boxes normalised to the image size
        got = torch_order(got, model.model[-1], (32, 32))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    finally:
        unregister('NoTwinBlock')


def test_block_declaring_no_twin_is_refused_naming_it(tf):
    """register(tf=NO_TF_TWIN): the TF model is not built; the error names the block, the declaration and the fix."""
    register(NoTwinBlock, out=registry.same, family='test', tf=NO_TF_TWIN)
    try:
        assert not registry.registered()['NoTwinBlock'].has_tf_twin
        with pytest.raises(MissingTwinError) as e:
            tiny_model_and_tf(tf)
    finally:
        unregister('NoTwinBlock')
    for part in ("'NoTwinBlock'", 'declares that it has no TensorFlow twin', 'tf=NO_TF_TWIN', 'export to ONNX'):
        assert part in str(e.value), (part, str(e.value))


def test_tf_argument_of_register_is_checked():
    """tf= is a 'module:Class' twin, NO_TF_TWIN or None: anything else (False, a bare name) is a clear error."""
    for bad in (False, 'TFNoTwinBlock', 'a:b:c'):
        with pytest.raises(ValueError, match=r"register\(tf=.*expected 'package.module:Class'.*NO_TF_TWIN"):
            register(NoTwinBlock, out=registry.same, family='test', tf=bad)
    assert 'NoTwinBlock' not in registry.registered()


def test_twin_lookup_needs_no_tensorflow_for_the_error():
    """A missing twin module is reported as such (no TensorFlow import needed to say so)."""
    register(NoTwinBlock, out=registry.same, family='test')
    try:
        with pytest.raises(MissingTwinError, match=r'module extensions\.tf\.test_deploy_tf does not exist'):
            registry.tf_twin('NoTwinBlock')
    finally:
        unregister('NoTwinBlock')


# -------------------------------------------------------------------------------------- whole models, per family
def smallest_yaml(suffix: str) -> str:
    return next(f'yolov5{s}-{suffix}' for s in SCALES if (MODELS_YAML / f'yolov5{s}-{suffix}.yaml').is_file())


# every family of the table at its smallest scale, and its variants (yolov5n-res2, -resnest, -serd, yolov5s-rs)
FAMILY_CFGS = [smallest_yaml(x) for f in FAMILIES for x in (f.suffix, *f.variants)]


def blocks_without_twin(cfg: str) -> list:
    """The registered blocks of a model YAML that declare no TensorFlow twin (register(tf=NO_TF_TWIN)), by module."""
    d = yaml.safe_load((MODELS_YAML / f'{cfg}.yaml').read_text())
    reg = registry.registered()
    names = {row[2] for row in d['backbone'] + d['head'] if row[2] in reg and not reg[row[2]].has_tf_twin}
    return sorted(f'{reg[n].module.__module__}.{n}' for n in names)
E2E_CFG = 'yolov5n-res2'  # also exported to SavedModel and GraphDef, and run by detect.py and val.py
IMG = {E2E_CFG: (64, 64)}  # val.py runs static models square; the others are exported non-square
NAMES = ['circle', 'rectangle', 'triangle']


def tiny_checkpoint(cfg: str, path: Path) -> Path:
    """A YOLOv5 checkpoint of the family's YAML (3 classes, random weights and BN statistics), as train.py saves."""
    torch.manual_seed(0)
    model = Model(str(MODELS_YAML / f'{cfg}.yaml'), ch=3, nc=len(NAMES))
    randomize_bn(model, deep=True)
    model.nc, model.names = len(NAMES), dict(enumerate(NAMES))
    torch.save({'model': de_parallel(model).half(), 'ema': None, 'epoch': -1}, path)
    return path


@pytest.fixture(scope='module')
def exports(tmp_path_factory, tf):
    """``exports(cfg)``: export.py's run() in this process (one TensorFlow import) on a tiny checkpoint of ``cfg``:
    TFLite fp16 and fp32, plus SavedModel and GraphDef for E2E_CFG; each configuration exported once."""
    done = {}

    def export(cfg):
        if cfg not in done:
            pt = tiny_checkpoint(cfg, tmp_path_factory.mktemp(cfg) / f'{cfg}.pt')
            img = IMG.get(cfg, (64, 96))
            include = ('saved_model', 'pb', 'tflite') if cfg == E2E_CFG else ('tflite',)
            files = export_run(weights=pt, imgsz=list(img), include=include, device='cpu')
            done[cfg] = SimpleNamespace(cfg=cfg, pt=pt, img=img, files=files, fp16=pt.with_name(f'{cfg}-fp16.tflite'),
                                        fp32=pt.with_name(f'{cfg}-fp32.tflite'))
        return done[cfg]

    return export


@pytest.fixture(scope='module', params=FAMILY_CFGS)
def exported(request):
    """The TFLite exports of one family's YAML; skipped, saying why, for a family whose blocks declare no twin."""
    missing = blocks_without_twin(request.param)
    if missing:
        pytest.skip(f'{request.param}: {", ".join(missing)} declares no TensorFlow twin (register(tf=NO_TF_TWIN)): '
                    f'no SavedModel, GraphDef or TFLite export to test')
    return request.getfixturevalue('exports')(request.param)


@pytest.fixture(scope='module')
def exported_e2e(exports):
    return exports(E2E_CFG)


def backend_outputs(weights, x: torch.Tensor, detect):
    """DetectMultiBackend's model and its output (boxes in pixels, as val.py and detect.py get it), rows in
    PyTorch's order."""
    model = DetectMultiBackend(str(weights), device=torch.device('cpu'))
    return model, torch_order(model(x).numpy(), detect, x.shape[2:])


def test_tflite_fp32_and_fp16_match_pytorch(exported):
    """Both .tflite files exist, carry the stride and names, and give the PyTorch model's output (through
    DetectMultiBackend, as detect.py and val.py run them)."""
    assert exported.fp16.is_file() and exported.fp32.is_file(), exported.files
    assert str(exported.fp16) in exported.files
    assert exported.fp32.stat().st_size > 1.8 * exported.fp16.stat().st_size  # float32 vs float16 weights
    model = attempt_load(exported.pt, device=torch.device('cpu'), fuse=True).eval()
    x = torch.rand(1, 3, *exported.img)
    with torch.no_grad():
        want = model(x)[0].numpy()
    backend, got32 = backend_outputs(exported.fp32, x, model.model[-1])
    assert backend.names == dict(enumerate(NAMES)) and backend.stride == 32  # metadata inside the .tflite
    np.testing.assert_allclose(got32, want, rtol=1e-4, atol=1e-3)
    backend, got16 = backend_outputs(exported.fp16, x, model.model[-1])
    assert backend.names == dict(enumerate(NAMES))
    np.testing.assert_allclose(got16[..., :4], want[..., :4], atol=0.5)  # boxes, pixels
    np.testing.assert_allclose(got16[..., 4:], want[..., 4:], atol=0.01)  # objectness and class scores


def test_saved_model_and_graphdef_match_pytorch(exported_e2e):
    """SavedModel and GraphDef (exported for E2E_CFG only: time budget), as val.py and detect.py run them."""
    exported = exported_e2e
    model = attempt_load(exported.pt, device=torch.device('cpu'), fuse=True).eval()
    x = torch.rand(1, 3, *exported.img)
    with torch.no_grad():
        want = model(x)[0].numpy()
    for f in (exported.pt.with_name(f'{exported.cfg}_saved_model'), exported.pt.with_suffix('.pb')):
        assert str(f) in exported.files, (f, exported.files)
        _, got = backend_outputs(f, x, model.model[-1])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3, err_msg=str(f))


# --------------------------------------------------------------------------------------- detect.py and val.py
@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('tflite-e2e')
    data = ensure_shapes(tmp / 'shapes', img=64, train=8, val=8, seed=3, classes=len(NAMES), scene='demo',
                         verbose=False)
    return SimpleNamespace(tmp=tmp, data=data, env=nonet_env(tmp), images=data.parent / 'images' / 'val')


@pytest.mark.e2e
def test_detect_and_val_run_the_tflite(exported_e2e, shapes):
    """detect.py on the fp32 .tflite, val.py on the fp16 one (E2E_CFG only: time budget), network off."""
    exported = exported_e2e
    assert yaml.safe_load(shapes.data.read_text())['names'] in (NAMES, dict(enumerate(NAMES)))
    _, out = run_yolo('detect.py', '--weights', exported.fp32, '--source', shapes.images, '--img', 64,
                      '--conf-thres', 1e-6, '--device', 'cpu', '--project', shapes.tmp / 'detect', '--name', 'fp32',
                      env=shapes.env)
    assert 'Loading' in out and 'for TensorFlow Lite inference' in out
    assert re.search(r'\d+ (circle|rectangle|triangle)', out), out[-2000:]  # class names from the metadata
    assert len(list((shapes.tmp / 'detect' / 'fp32').glob('*.jpg'))) == 8
    assert 'deprecated' not in out  # tf.lite.Interpreter's deprecation warning is not printed
    _, out = run_yolo('val.py', '--weights', exported.fp16, '--data', shapes.data, '--img', 64, '--device', 'cpu',
                      '--project', shapes.tmp / 'val', '--name', 'fp16', env=shapes.env)
    row = val_map(out)
    assert row['images'] == 8, row
    assert 'Forcing --batch-size 1 square inference (1,3,64,64)' in out
