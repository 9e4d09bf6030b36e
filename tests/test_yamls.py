"""YAML-level tests of models_yaml/: every family's YAML (extensions/families.py) builds through YOLOv5's
parse_model hook and stays within 15% of the plain YOLOv5 model of its scale in params and GFLOPs; the n and s
models (the heavy checks) give the right shapes at strides 8/16/32 for non-square inputs, train (also at batch 1),
fuse exactly and export to ONNX with dynamic batch/H/W at opsets 12 and 17 with onnxruntime matching PyTorch.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings
from pathlib import Path

import onnxruntime as ort
import pytest
import thop
import torch
import torch.nn as nn
from block_utils import randomize_bn
from models.common import C3
from models.yolo import Detect

from extensions import registry
from extensions.benchmark.build import build as bench_build
from extensions.benchmark.build import quiet
from extensions.blocks import DeepStem, ResNetDDown
from extensions.families import FAMILIES, MODELS_YAML, SCALES

ROOT = Path(__file__).resolve().parents[1]
# every C3-swap YAML of every family in the table: yolov5<scale>-<suffix>.yaml, and its variants' (yolov5s-rs)
C3_OF = {p: f.c3 for f in FAMILIES for sfx in (f.suffix, *f.variants)
         for p in sorted(MODELS_YAML.glob(f'yolov5[nsmlx]-{sfx}.yaml'))}
YAMLS = sorted(C3_OF, key=lambda p: p.name)
HEAVY = [p for p in YAMLS if p.stem[6] in 'ns']  # ONNX, fusion, training: n and s only (CI budget)
BAND = 0.15


pytestmark = pytest.mark.usefixtures('one_thread')  # conftest.py


def test_every_expected_yaml_exists():
    expected = {f.yaml(s) for f in FAMILIES for s in SCALES} | {MODELS_YAML / 'yolov5s-rs.yaml'}
    assert expected <= set(YAMLS), expected - set(YAMLS)


def build(cfg):
    return bench_build(str(cfg))


def params_gflops(model):
    """(params as built, GFLOPs at 640x640 of the fused model), as scripts/dev/model_table.py reports them.

    Counted at 64x64 and 128x128 instead of 640 (fast at l/x): each counted op is either proportional to the map
    area or, for the SE / split-attention fcs on pooled 1x1 maps, constant, so MACs(s) = a * s^2 + k exactly."""
    n_p = sum(p.numel() for p in model.parameters())
    m = copy.deepcopy(model).eval()
    with quiet():
        m.fuse()
        f64, f128 = (thop.profile(copy.deepcopy(m), inputs=(torch.empty(1, 3, s, s),), verbose=False)[0]
                     for s in (64, 128))
    a = (f128 - f64) / 3  # MACs per (64x64 area)
    return n_p, 2 * (100 * a + f64 - a) / 1e9


_PLAIN: dict[str, tuple[int, float]] = {}


def plain(scale):
    if scale not in _PLAIN:
        _PLAIN[scale] = params_gflops(build(ROOT / 'yolov5' / 'models' / f'yolov5{scale}.yaml'))
    return _PLAIN[scale]


@pytest.mark.parametrize('cfg', YAMLS, ids=[p.stem for p in YAMLS])
def test_builds_and_stays_in_band(cfg):
    model = build(cfg)
    c3 = registry.registered()[C3_OF[cfg]].module  # the family's C3 variant
    blocks = [m for m in model.modules() if isinstance(m, c3)]
    assert len(blocks) == 8, 'every C3 of the v6.0 layout is swapped'
    assert not any(type(m) is C3 for m in model.modules()), 'a plain C3 is left'
    assert model.stride.tolist() == [8, 16, 32]
    p, g = params_gflops(model)
    p0, g0 = plain(cfg.stem[6])
    assert abs(p / p0 - 1) <= BAND, f'params {p / p0:.3f}x of yolov5{cfg.stem[6]}'
    assert abs(g / g0 - 1) <= BAND, f'GFLOPs {g / g0:.3f}x of yolov5{cfg.stem[6]}'


def test_yaml_hyperparameters_reach_the_blocks():
    m = build(ROOT / 'models_yaml' / 'yolov5s-res2.yaml')
    b2 = [b for b in m.modules() if type(b).__name__ == 'Bottle2neck']
    assert b2 and all(b.width * 2 == b.conv3.conv.out_channels and b.scale == 4 for b in b2)  # 32w4s: width = c_/2
    assert all(not b.residual for b in m.model[23].m)  # head C3s: [c2, False, ...]
    assert all(b.residual for b in m.model[2].m)
    rs = build(ROOT / 'models_yaml' / 'yolov5s-rs.yaml')
    assert isinstance(rs.model[0], DeepStem) and all(isinstance(rs.model[i], ResNetDDown) for i in (3, 5, 7))
    for name, mod in rs.model[:10].named_modules():  # ResNet-D: no strided 1x1 conv in the backbone
        if isinstance(mod, nn.Conv2d) and mod.kernel_size == (1, 1):
            assert mod.stride == (1, 1), name


def test_resnest_large_scales_use_reduction_8():
    for s, red in (('s', 4), ('l', 8)):
        text = (ROOT / 'models_yaml' / f'yolov5{s}-resnest.yaml').read_text()
        assert f'C3_ResNeSt, [128, True, 1, 0.5, 2, 1, {red}]]' in text


def test_cli_builds(tmp_path):
    """What users run to inspect a model: python yolov5/models/yolo.py --cfg models_yaml/yolov5s-res2.yaml"""
    r = subprocess.run([sys.executable, 'yolov5/models/yolo.py', '--cfg', 'models_yaml/yolov5s-res2.yaml'],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'C3_Res2Block' in r.stdout + r.stderr


# ----------------------------------------------------------------------------------------------- heavy: n and s


@pytest.fixture(scope='module')
def heavy_models():
    cache = {}

    def get(cfg):
        if cfg not in cache:
            cache.clear()  # one model at a time
            cache[cfg] = randomize_bn(build(cfg), deep=True)
        return cache[cfg]

    return get


@pytest.mark.parametrize('cfg', HEAVY, ids=[p.stem for p in HEAVY])
def test_train_shapes_backward_batch1(cfg, heavy_models):
    model = copy.deepcopy(heavy_models(cfg)).train()
    x = torch.randn(2, 3, 256, 320)  # non-square; maps at strides 8/16/32
    out = model(x)
    assert [tuple(o.shape) for o in out] == [(2, 3, 32, 40, 85), (2, 3, 16, 20, 85), (2, 3, 8, 10, 85)]
    sum(o.square().mean() for o in out).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.zero_grad()
    out = model(torch.randn(1, 3, 192, 128))  # train mode at batch 1
    assert [tuple(o.shape) for o in out] == [(1, 3, 24, 16, 85), (1, 3, 12, 8, 85), (1, 3, 6, 4, 85)]
    sum(o.sum() for o in out).backward()


@pytest.mark.parametrize('cfg', HEAVY, ids=[p.stem for p in HEAVY])
def test_fused_equals_unfused(cfg, heavy_models):
    model = heavy_models(cfg).eval()
    x = torch.randn(1, 3, 128, 192)
    with torch.no_grad():
        y, raw = model(x)
        with quiet():
            fused = copy.deepcopy(model).fuse()
        yf, rawf = fused(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules()), 'a BatchNorm was left unfused'
    assert y.shape == (1, 3 * (16 * 24 + 8 * 12 + 4 * 6), 85)
    for a, b in zip(raw, rawf):
        rel = ((a - b).abs().max() / a.abs().max()).item()
        assert rel <= 1e-5, rel


@pytest.mark.parametrize('opset', [12, 17])
@pytest.mark.parametrize('cfg', HEAVY, ids=[p.stem for p in HEAVY])
def test_onnx_dynamic(cfg, opset, heavy_models, tmp_path):
    model = copy.deepcopy(heavy_models(cfg)).eval()
    with quiet():
        model.fuse()
    for m in model.modules():
        if isinstance(m, Detect):  # as yolov5/export.py does for --dynamic
            m.inplace, m.dynamic, m.export = False, True, True
    f = tmp_path / 'model.onnx'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, torch.zeros(1, 3, 64, 64), str(f), opset_version=opset, dynamo=False,
                          input_names=['images'], output_names=['output0'],
                          dynamic_axes={'images': {0: 'batch', 2: 'height', 3: 'width'},
                                        'output0': {0: 'batch', 1: 'anchors'}})
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(f), so, providers=['CPUExecutionProvider'])
    x = torch.randn(2, 3, 96, 160)  # another batch and a non-square shape than the export's
    with torch.no_grad():
        ref = model(x)[0]
    out = torch.from_numpy(sess.run(None, {'images': x.numpy()})[0])
    assert out.shape == ref.shape == (2, 3 * (12 * 20 + 6 * 10 + 3 * 5), 85)
    # xywh are pixel coordinates (up to ~1e3): compare those relative to their size, confidences absolutely
    err = ((out - ref).abs() / ref.abs().clamp(min=1.0)).max().item()
    assert err <= 1e-4, err
    assert (out[..., 4:] - ref[..., 4:]).abs().max().item() <= 1e-4
