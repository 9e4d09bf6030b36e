"""Block-level tests of the extension blocks (extensions/blocks.py re-exports them): shapes, gradients,
batch-1 training, Conv+BN fusion, ONNX export, hand-derived parameter counts, parity with timm's reference blocks
and argument validation.

Small channel counts and maps keep the file fast on 2 CPU cores.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import math
import warnings
from functools import partial

import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
from block_utils import fuse, randomize_bn
from utils.torch_utils import initialize_weights

import extensions  # noqa: F401  (registers the blocks)
from extensions import registry
from extensions.blocks import (
    BiasConv,
    Bottle2neck,
    C3_Res2Block,
    C3_ResNeSt,
    C3_SEResNetD,
    DeepStem,
    DownsampleAvg,
    DropPath,
    RadixSoftmax,
    ResNeStBottleneck,
    ResNetDDown,
    SEResNetDBottleneck,
    SplitAttention,
    SqueezeExcite,
)
from extensions.families import FAMILIES

pytestmark = pytest.mark.usefixtures('one_thread')  # conftest.py


# ------------------------------------------------------------------------------------------------ configurations
# id -> (constructor, c1, c2, stride). Every family in its normal, stage/stride-2 and no-shortcut forms.
CONFIGS = {
    'r2-normal': (lambda: Bottle2neck(16, 16), 16, 16, 1),
    'r2-stage-s2': (lambda: Bottle2neck(16, 32, stride=2), 16, 32, 2),
    'r2-stage-s1': (lambda: Bottle2neck(16, 16, stage=True), 16, 16, 1),
    'r2-noshortcut-32w3s-g2': (lambda: Bottle2neck(16, 32, shortcut=False, base_width=32, scale=3, g=2), 16, 32, 1),
    'splat-r2': (lambda: SplitAttention(16, 16), 16, 16, 1),
    'splat-r1': (lambda: SplitAttention(16, 24, radix=1), 16, 24, 1),
    'splat-r4g2-s2': (lambda: SplitAttention(16, 16, s=2, g=2, radix=4), 16, 16, 2),
    'rst-normal': (lambda: ResNeStBottleneck(16, 16), 16, 16, 1),
    'rst-s2-avd-last': (lambda: ResNeStBottleneck(16, 32, stride=2), 16, 32, 2),
    'rst-s2-avd-first-r4k2': (lambda: ResNeStBottleneck(16, 32, stride=2, radix=4, cardinality=2, avd_first=True),
                              16, 32, 2),
    'rst-s2-noavd-r1': (lambda: ResNeStBottleneck(16, 32, stride=2, radix=1, avd=False), 16, 32, 2),
    'rst-noshortcut': (lambda: ResNeStBottleneck(16, 16, shortcut=False), 16, 16, 1),
    'serd-normal': (lambda: SEResNetDBottleneck(16, 16), 16, 16, 1),
    'serd-s2': (lambda: SEResNetDBottleneck(16, 32, stride=2, e=0.5), 16, 32, 2),
    'serd-droppath-g2': (lambda: SEResNetDBottleneck(16, 16, drop_path=0.2, g=2), 16, 16, 1),
    'serd-noshortcut': (lambda: SEResNetDBottleneck(16, 24, shortcut=False), 16, 24, 1),
    'deepstem': (lambda: DeepStem(3, 16), 3, 16, 2),
    'resnetd-down': (lambda: ResNetDDown(16, 32), 16, 32, 2),
    'c3-res2': (lambda: C3_Res2Block(16, 32, 2), 16, 32, 1),
    'c3-res2-noshortcut': (lambda: C3_Res2Block(16, 32, 1, False, 1, 0.5, 32, 4), 16, 32, 1),
    'c3-resnest': (lambda: C3_ResNeSt(16, 32, 2), 16, 32, 1),
    'c3-resnest-noshortcut-red8': (lambda: C3_ResNeSt(16, 32, 1, False, 1, 0.5, 2, 1, 8), 16, 32, 1),
    'c3-serd': (lambda: C3_SEResNetD(16, 32, 2, drop_path=0.1), 16, 32, 1),
    'c3-serd-noshortcut': (lambda: C3_SEResNetD(16, 32, 1, False), 16, 32, 1),
}
IDS = list(CONFIGS)

# Feature-map sizes of a non-square 256x320 image at strides 8, 16 and 32, and an odd-sized map.
MAPS = [(32, 40), (16, 20), (8, 10), (7, 11)]


def build(cid, seed=0):
    torch.manual_seed(seed)
    ctor, c1, c2, s = CONFIGS[cid]
    return ctor(), c1, c2, s


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def conv_p(c1, c2, k=1, g=1):
    """Params of a YOLOv5 Conv: conv weight (no bias) + BN gamma/beta."""
    return c1 // g * c2 * k * k + 2 * c2


# --------------------------------------------------------------------------------------------- shapes, backward
@pytest.mark.parametrize('cid', IDS)
def test_shapes_at_strides(cid):
    m, c1, c2, s = build(cid)
    m.eval()
    with torch.no_grad():
        for h, w in MAPS:
            y = m(torch.randn(2, c1, h, w))
            assert y.shape == (2, c2, math.ceil(h / s), math.ceil(w / s)), (h, w, y.shape)
            assert torch.isfinite(y).all()


@pytest.mark.parametrize('cid', IDS)
def test_backward(cid):
    m, c1, _, _ = build(cid)
    m.train()
    x = torch.randn(2, c1, 16, 20, requires_grad=True)
    m(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in m.named_parameters():
        assert p.grad is not None, f'{name} got no gradient'
        assert torch.isfinite(p.grad).all(), name
    assert sum(p.grad.abs().sum() for p in m.parameters()) > 0


@pytest.mark.parametrize('cid', IDS)
def test_train_mode_batch1(cid):
    """YOLOv5 builds every model with one forward pass at batch 1 in train mode; training at batch 1 must run."""
    m, c1, _, _ = build(cid)
    m.train()
    x = torch.randn(1, c1, 16, 24)
    y = m(x)
    y.sum().backward()
    assert torch.isfinite(y).all()
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize('cid', IDS)
def test_inplace_activations_do_not_corrupt(cid):
    """YOLOv5's initialize_weights makes every activation inplace: outputs and gradients must not change."""
    m, c1, _, _ = build(cid)
    randomize_bn(m)
    m.train()
    ref = copy.deepcopy(m)
    initialize_weights(m)  # also BN eps 1e-3: give the reference the same eps, keep its activations out-of-place
    for r in ref.modules():
        if type(r) is nn.BatchNorm2d:
            r.eps, r.momentum = 1e-3, 0.03
    assert any(getattr(a, 'inplace', False) for a in m.modules()), 'nothing was made inplace'
    if any(isinstance(d, DropPath) and d.p > 0 for d in m.modules()):
        m.eval(), ref.eval()
    x = torch.randn(2, c1, 16, 20)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = m(x1), ref(x2)
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
    y1.square().sum().backward()
    y2.square().sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)
    assert torch.equal(x1.detach(), x), 'the input was modified in place'


# ------------------------------------------------------------------------------------------------------- fusion
@pytest.mark.parametrize('cid', IDS)
def test_fused_equals_unfused(cid):
    m, c1, _, _ = build(cid)
    randomize_bn(m).eval()
    x = torch.randn(2, c1, 24, 20)
    y_grad = m(x.clone().requires_grad_())  # autograd path (out-of-place adds) ...
    with torch.no_grad():
        y = m(x)  # ... and inference path (in-place adds into the block's temporaries)
        fm = fuse(copy.deepcopy(m))
        yf = fm(x)
    torch.testing.assert_close(y_grad.detach(), y, rtol=1e-6, atol=1e-6)
    assert not any(isinstance(b, nn.BatchNorm2d) for b in fm.modules()), 'a BatchNorm was left unfused'
    assert y.abs().max() > 1e-3
    rel = ((yf - y).abs().max() / y.abs().max()).item()
    assert rel <= 1e-5, rel


# --------------------------------------------------------------------------------------------------------- ONNX
def onnx_check(model, x_export, x_test, path, opset, atol=1e-4):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        axes = {0: 'b', 2: 'h', 3: 'w'}
        torch.onnx.export(model, x_export, str(path), opset_version=opset, dynamo=False, input_names=['x'],
                          output_names=['y'], dynamic_axes={'x': axes, 'y': axes})
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=['CPUExecutionProvider'])
    with torch.no_grad():
        ref = model(x_test)
    out = sess.run(None, {'x': x_test.numpy()})[0]
    assert out.shape == tuple(ref.shape)
    diff = (torch.from_numpy(out) - ref).abs().max().item()
    assert diff <= atol, diff
    return sess


@pytest.mark.parametrize('opset', [12, 17])
@pytest.mark.parametrize('cid', IDS)
def test_onnx_dynamic(cid, opset, tmp_path):
    m, c1, _, _ = build(cid)
    m = fuse(randomize_bn(m).eval())
    onnx_check(m, torch.randn(1, c1, 16, 24), torch.randn(3, c1, 20, 14), tmp_path / 'm.onnx', opset)
    ops = {n.op_type for n in onnx.load(str(tmp_path / 'm.onnx')).graph.node}
    assert 'BatchNormalization' not in ops
    if cid.startswith('r2'):
        assert 'Split' not in ops, 'Res2Net splits should export as one Conv per split (no Split node)'
    if CONFIGS[cid][3] == 2:  # odd sizes: the ceil-mode average pool of the ResNet-D shortcut
        onnx_check(m, torch.randn(1, c1, 16, 24), torch.randn(2, c1, 15, 21), tmp_path / 'm2.onnx', opset)


def test_onnx_unfused_bottle2neck(tmp_path):
    """The export-time formulation of Bottle2neck (one conv per split) also covers an unfused model (BN kept)."""
    m, c1, _, _ = build('r2-stage-s2')
    m = randomize_bn(m).eval()
    onnx_check(m, torch.randn(1, c1, 16, 24), torch.randn(2, c1, 15, 21), tmp_path / 'u.onnx', 17)


# -------------------------------------------------------------------------------------- hand-derived param counts
def test_params_bottle2neck():
    # c1=32 -> c2=64, stride 2, e=1, base_width 26, scale 4: width = floor(64*26/64) = 26
    m = Bottle2neck(32, 64, stride=2)
    w, s = 26, 4
    expect = (32 * w * s + 2 * w * s) + (s - 1) * (9 * w * w + 2 * w) + (w * s * 64 + 2 * 64) + (32 * 64 + 2 * 64)
    assert m.width == w and n_params(m) == expect == 30904


def test_params_split_attention():
    # c1=32, c2=64, k=3, g=2, radix=2: conv 32->128 groups 4; inter = max(32*2//4, 32) = 32
    m = SplitAttention(32, 64, g=2, radix=2)
    conv = 9 * (32 // 4) * 128 + 2 * 128
    fc1 = (64 // 2) * 32 + 32 + 2 * 32  # grouped weight + bias + BN
    fc2 = (32 // 2) * 128 + 128
    assert m.inter == 32 and n_params(m) == conv + fc1 + fc2 == 12768


def test_params_resnest_bottleneck():
    # c1=64 -> c2=64, e=0.5: c_ = 32, group_width = 32; radix 2: conv 32->64 (groups 2), inter = max(64//4, 32) = 32
    m = ResNeStBottleneck(64, 64, e=0.5)
    gw = 32
    expect = (64 * gw + 2 * gw) + (9 * (gw // 2) * 2 * gw + 2 * 2 * gw) + (gw * 32 + 32 + 64) + (32 * 2 * gw + 2 * gw) \
        + (gw * 64 + 2 * 64)
    assert n_params(m) == expect == 16864


def test_params_seresnetd_bottleneck():
    # c1=32 -> c2=64, stride 2, e=0.25: c_ = 16; SE 64 -> 16 -> 64 with biases; ResNet-D projection 32 -> 64
    m = SEResNetDBottleneck(32, 64, stride=2, e=0.25)
    expect = conv_p(32, 16) + conv_p(16, 16, 3) + conv_p(16, 64) + (64 * 16 + 16 + 16 * 64 + 64) + conv_p(32, 64)
    assert n_params(m) == expect == 8336


def test_params_c3_variants_and_stem():
    c = 32  # C3(64, 64, n=1): cv1, cv2 64->32, cv3 64->64, one block at c_=32
    head = 2 * conv_p(64, c) + conv_p(2 * c, 64)
    w = 16  # 32w4s at c_=32
    r2 = conv_p(c, 4 * w) + 3 * conv_p(w, w, 3) + conv_p(4 * w, c)
    assert n_params(C3_Res2Block(64, 64, 1, True, 1, 0.5, 32, 4)) == head + r2
    rst = conv_p(c, c) + conv_p(c // 2, 2 * c, 3) + (c * 32 + 32 + 64) + (32 * 2 * c + 2 * c) + conv_p(c, c)
    assert n_params(C3_ResNeSt(64, 64, 1)) == head + rst
    serd = conv_p(c, c) + conv_p(c, c, 3) + conv_p(c, c) + (c * 8 + 8 + 8 * c + c)
    assert n_params(C3_SEResNetD(64, 64, 1)) == head + serd
    assert n_params(DeepStem(3, 32)) == conv_p(3, 16, 3) + conv_p(16, 16, 3) + conv_p(16, 32, 3)


# ---------------------------------------------------------------------------------------- parity with timm blocks
try:  # timm is a test-only dependency (requirements.txt); without it only the parity tests skip
    from timm.layers import get_attn
    from timm.models.res2net import Bottle2neck as TimmBottle2neck
    from timm.models.resnest import ResNestBottleneck as TimmResNestBottleneck
    from timm.models.resnet import Bottleneck as TimmBottleneck
    from timm.models.resnet import downsample_avg
    HAVE_TIMM = True
except ImportError:  # pragma: no cover
    HAVE_TIMM = False
needs_timm = pytest.mark.skipif(not HAVE_TIMM, reason='timm (test-only dependency) is not installed')

# timm name prefix -> ours. Every key must be mapped (load_state_dict(strict=True) checks both ways).
MAP_RES2 = {'conv1.': 'conv1.conv.', 'bn1.': 'conv1.bn.', 'conv3.': 'conv3.conv.', 'bn3.': 'conv3.bn.',
            'downsample.1.': 'shortcut.conv.conv.', 'downsample.2.': 'shortcut.conv.bn.'}
MAP_RES2.update({f'convs.{i}.': f'convs.{i}.conv.' for i in range(8)})
MAP_RES2.update({f'bns.{i}.': f'convs.{i}.bn.' for i in range(8)})
MAP_RESNEST = {'conv1.': 'conv1.conv.', 'bn1.': 'conv1.bn.', 'conv2.conv.': 'conv2.conv.conv.',
               'conv2.bn0.': 'conv2.conv.bn.', 'conv2.fc1.': 'conv2.fc1.conv.', 'conv2.bn1.': 'conv2.fc1.bn.',
               'conv2.fc2.': 'conv2.fc2.', 'conv3.': 'conv3.conv.', 'bn3.': 'conv3.bn.',
               'downsample.1.': 'shortcut.conv.conv.', 'downsample.2.': 'shortcut.conv.bn.'}
MAP_SERD = {'conv1.': 'conv1.conv.', 'bn1.': 'conv1.bn.', 'conv2.': 'conv2.conv.', 'bn2.': 'conv2.bn.',
            'conv3.': 'conv3.conv.', 'bn3.': 'conv3.bn.', 'se.fc1.': 'se.fc1.', 'se.fc2.': 'se.fc2.',
            'downsample.1.': 'shortcut.conv.conv.', 'downsample.2.': 'shortcut.conv.bn.'}


def map_state(sd, mapping):
    out = {}
    for k, v in sd.items():
        prefixes = [p for p in mapping if k.startswith(p)]
        assert prefixes, f'unmapped timm key {k}'
        p = max(prefixes, key=len)
        out[mapping[p] + k[len(p):]] = v
    return out


def ds(c1, c2, stride):
    return downsample_avg(c1, c2, 1, stride=stride) if (stride > 1 or c1 != c2) else None


def ref_res2(c1, c2, stride):
    return TimmBottle2neck(c1, c2 // 4, stride, ds(c1, c2, stride), base_width=26, scale=4,
                           norm_layer=nn.BatchNorm2d), \
        Bottle2neck(c1, c2, True, 0.25, stride, 26, 4, act=nn.ReLU()), MAP_RES2


def ref_resnest(c1, c2, stride, radix=2, card=1, avd_first=False):
    return TimmResNestBottleneck(c1, c2 // 4, stride, ds(c1, c2, stride), radix=radix, cardinality=card,
                                 base_width=64, avd=True, avd_first=avd_first), \
        ResNeStBottleneck(c1, c2, True, 0.25, stride, radix, card, 64, True, avd_first, act=nn.ReLU()), MAP_RESNEST


def ref_serd(c1, c2, stride):
    se = partial(get_attn('se'), rd_ratio=0.25)
    return TimmBottleneck(c1, c2 // 4, stride, ds(c1, c2, stride), attn_layer=se), \
        SEResNetDBottleneck(c1, c2, True, 0.25, stride, 0.25, act=nn.ReLU()), MAP_SERD


PARITY = {
    'res2-normal': lambda: ref_res2(128, 128, 1),
    'res2-stage-s2': lambda: ref_res2(64, 128, 2),
    'res2-stage-s1-proj': lambda: ref_res2(64, 128, 1),
    'resnest-normal': lambda: ref_resnest(128, 128, 1),
    'resnest-s2': lambda: ref_resnest(64, 128, 2),
    'resnest-s2-r4k2-avdfirst': lambda: ref_resnest(64, 128, 2, radix=4, card=2, avd_first=True),
    'resnest-normal-r1': lambda: ref_resnest(128, 128, 1, radix=1),
    'serd-normal': lambda: ref_serd(128, 128, 1),
    'serd-s2': lambda: ref_serd(64, 128, 2),
}


def parity_pair(pid):
    torch.manual_seed(0)
    ref, ours, mapping = PARITY[pid]()
    randomize_bn(ref, seed=3)  # also undoes timm's zero-init of bn3 that would hide the residual branch
    ours.load_state_dict(map_state(ref.state_dict(), mapping), strict=True)
    assert all(type(b) is nn.BatchNorm2d and b.eps == 1e-5 for b in ours.modules() if isinstance(b, nn.BatchNorm2d))
    return ref.eval(), ours.eval()


@needs_timm
@pytest.mark.parametrize('pid', list(PARITY))
def test_parity_with_timm(pid):
    ref, ours = parity_pair(pid)
    c1 = ref.conv1.in_channels
    with torch.no_grad():
        for shape in [(1, c1, 16, 16), (3, c1, 15, 21)]:
            x = torch.randn(shape)
            y_ref, y = ref(x.clone()), ours(x.clone())
            assert y.shape == y_ref.shape
            assert y_ref.std() > 0.1, 'trivial reference output'
            assert (y_ref - torch.relu(x if y.shape == x.shape else ref.downsample(x))).abs().max() > 0.1, \
                'residual branch contributes nothing: the comparison would not test it'
            assert (y - y_ref).abs().max().item() <= 1e-5
            yf = fuse(copy.deepcopy(ours))(x)  # and after YOLOv5-style fusion
            assert (yf - y_ref).abs().max().item() <= 1e-4 * max(1.0, y_ref.abs().max().item())


@needs_timm
def test_parity_detects_a_wrong_weight():
    """Negative control: the comparison notices a small change inside the split-attention path."""
    ref, ours = parity_pair('resnest-s2-r4k2-avdfirst')
    with torch.no_grad():
        ours.conv2.fc1.bn.bias += 0.5
        x = torch.randn(2, 64, 16, 16)
        assert (ours(x) - ref(x)).abs().max() > 1e-4


def test_radix_softmax_layout():
    """rSoftMax equals view(B, g, radix, -1).transpose(1, 2).softmax(1); with g > 1, view(B, radix, g, -1) is wrong."""
    B, g, r, c = 3, 2, 4, 5
    x = torch.randn(B, g * r * c, 1, 1)
    y = RadixSoftmax(r, g, g * r * c)(x)
    ref = x.view(B, g, r, -1).transpose(1, 2).softmax(1).reshape(B, -1, 1, 1)
    wrong = x.view(B, r, g, -1).softmax(1).reshape(B, -1, 1, 1)
    assert torch.equal(y, ref) and not torch.allclose(y, wrong)
    torch.testing.assert_close(y.view(B, r, -1).sum(1), torch.ones(B, g * c))
    torch.testing.assert_close(RadixSoftmax(1, 1, 6)(x[:, :6]), torch.sigmoid(x[:, :6]))


# ------------------------------------------------------------------------------------- behaviours of small parts
def test_droppath_drops_only_the_residual_branch():
    torch.manual_seed(0)
    m = randomize_bn(SEResNetDBottleneck(16, 16, drop_path=0.5, act=nn.ReLU())).train()
    x = torch.randn(64, 16, 8, 8)
    for b in m.modules():
        if isinstance(b, nn.BatchNorm2d):
            b.eval()  # freeze BN so that the branch is a fixed function of x
    y = m(x)
    with torch.no_grad():
        branch = m.conv3(m.conv2(m.conv1(x)))
        branch = branch * m.se.gate(branch)
    kept = torch.relu(x + branch / 0.5)
    dropped = torch.relu(x)
    is_kept = [(y[i] - kept[i]).abs().max() < 1e-5 for i in range(64)]
    is_dropped = [(y[i] - dropped[i]).abs().max() < 1e-6 for i in range(64)]
    assert all(a or b for a, b in zip(is_kept, is_dropped)), 'a sample is neither kept nor dropped per sample'
    assert 10 < sum(is_dropped) < 54, sum(is_dropped)
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x), torch.relu(x + branch))  # inert in eval
    assert DropPath(0.0).train()(x) is x


def test_biasconv_batch1_training_uses_running_stats():
    torch.manual_seed(0)
    m = randomize_bn(BiasConv(8, 16, act=False)).train()
    x = torch.randn(1, 8, 1, 1)
    mean, var = m.bn.running_mean.clone(), m.bn.running_var.clone()
    y = m(x)
    assert torch.equal(m.bn.running_mean, mean) and torch.equal(m.bn.running_var, var)
    torch.testing.assert_close(y, m.eval()(x))  # same as eval at batch 1
    m.train()
    y2 = m(torch.randn(4, 8, 1, 1))  # batch > 1: ordinary batch statistics, stats updated
    assert not torch.equal(m.bn.running_mean, mean)
    torch.testing.assert_close(y2.mean(0).flatten(), m.bn.bias.detach(), atol=1e-4, rtol=0)


def test_se_reduced_width_and_downsample_shapes():
    assert SqueezeExcite(24, 0.25).fc1.out_channels == 6  # TF rounding: int(24 * 0.25), not timm's 8
    assert SqueezeExcite(3, 0.25).fc1.out_channels == 1  # max(1, ...)
    d = DownsampleAvg(8, 16, 2)
    assert d(torch.randn(1, 8, 7, 9)).shape == (1, 16, 4, 5)  # ceil_mode
    assert isinstance(DownsampleAvg(8, 16, 1).pool, nn.Identity)
    assert SplitAttention(72, 72).inter == 36  # original rounding max(72*2//4, 32), timm would give 40
    assert Bottle2neck(16, 16).stage is False and Bottle2neck(16, 32).stage is True
    assert Bottle2neck(16, 16, stride=2).stage is True and Bottle2neck(16, 32, stage=False).stage is False


def test_blocks_are_registered():
    reg = registry.registered()
    for name in ('Bottle2neck', 'SplitAttention', 'ResNeStBottleneck', 'SEResNetDBottleneck', 'DeepStem',
                 'ResNetDDown'):
        assert name in reg and not reg[name].repeats
    for name in ('C3_Res2Block', 'C3_ResNeSt', 'C3_SEResNetD'):
        assert name in reg and reg[name].repeats


@pytest.mark.parametrize('module', ['_args', '_layers', 'blocks'] + [f.module for f in FAMILIES])
def test_no_print_in_blocks(module):
    tree = ast.parse(inspect.getsource(importlib.import_module(f'extensions.{module}')))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'print']
    assert not calls


# ------------------------------------------------------------------------------------------- invalid arguments
BAD = [
    (lambda: Bottle2neck(16, 16, scale=1), 'Bottle2neck', 'scale'),
    (lambda: Bottle2neck(16, 16, base_width=2), 'Bottle2neck', 'width'),
    (lambda: Bottle2neck(16, 16, base_width=0), 'Bottle2neck', 'base_width'),
    (lambda: Bottle2neck(16, 16, stride=3), 'Bottle2neck', 'stride'),
    (lambda: Bottle2neck(16, 16, g=4), 'Bottle2neck', 'g'),  # width 6 not divisible by 4
    (lambda: Bottle2neck(16, 16, e=0), 'Bottle2neck', 'e'),
    (lambda: Bottle2neck(16, 16, stage='yes'), 'Bottle2neck', 'stage'),
    (lambda: SplitAttention(18, 16, radix=4), 'SplitAttention', 'c1'),  # not divisible by g*radix
    (lambda: SplitAttention(16, 18, g=4), 'SplitAttention', 'c2'),
    (lambda: SplitAttention(16, 16, radix=0), 'SplitAttention', 'radix'),
    (lambda: SplitAttention(16, 16, s=4), 'SplitAttention', 's'),
    (lambda: SplitAttention(16, 16, k=2), 'SplitAttention', 'k'),
    (lambda: SplitAttention(16, 16, reduction=0), 'SplitAttention', 'reduction'),
    (lambda: SplitAttention(16, 16, min_inter=0), 'SplitAttention', 'min_inter'),
    (lambda: SplitAttention(16, 16, g=2, radix=1, min_inter=33), 'SplitAttention', 'g'),  # inter 33 odd
    (lambda: ResNeStBottleneck(16, 18, radix=4), 'ResNeStBottleneck', 'group_width'),
    (lambda: ResNeStBottleneck(16, 16, cardinality=0), 'ResNeStBottleneck', 'cardinality'),
    (lambda: ResNeStBottleneck(16, 16, radix=-1), 'ResNeStBottleneck', 'radix'),
    (lambda: ResNeStBottleneck(16, 16, stride=0), 'ResNeStBottleneck', 'stride'),
    (lambda: ResNeStBottleneck(16, 16, bottleneck_width=0), 'ResNeStBottleneck', 'bottleneck_width'),
    (lambda: SEResNetDBottleneck(16, 16, se_ratio=0), 'SEResNetDBottleneck', 'se_ratio'),
    (lambda: SEResNetDBottleneck(16, 16, se_ratio=1.5), 'SEResNetDBottleneck', 'se_ratio'),
    (lambda: SEResNetDBottleneck(16, 16, drop_path=1.0), 'SEResNetDBottleneck', 'drop_path'),
    (lambda: SEResNetDBottleneck(16, 16, drop_path=-0.1), 'SEResNetDBottleneck', 'drop_path'),
    (lambda: SEResNetDBottleneck(16, 16, stride=4), 'SEResNetDBottleneck', 'stride'),
    (lambda: SEResNetDBottleneck(16, 16, g=3), 'SEResNetDBottleneck', 'g'),
    (lambda: SqueezeExcite(16, 0.0), 'SqueezeExcite', 'se_ratio'),
    (lambda: DropPath(1.0), 'DropPath', 'p'),
    (lambda: DownsampleAvg(8, 8, 3), 'DownsampleAvg', 'stride'),
    (lambda: DeepStem(3, 32, s=3), 'DeepStem', 's'),
    (lambda: DeepStem(3, 32, c_=0), 'DeepStem', 'c_'),
    (lambda: ResNetDDown(16, 32, s=3), 'ResNetDDown', 's'),
    (lambda: ResNetDDown(16, 32, se_ratio=2), 'ResNetDDown', 'se_ratio'),
    (lambda: C3_Res2Block(16, 32, 1, True, 1, 0.5, 26, 1), 'Bottle2neck', 'scale'),
    (lambda: C3_Res2Block(16, 32, 0), 'C3_Res2Block', 'n'),
    (lambda: C3_Res2Block(16, 32, 1, 'no'), 'C3_Res2Block', 'shortcut'),
    (lambda: C3_Res2Block(16, 32, 1, True, 1, 0.0), 'C3_Res2Block', 'e'),
    (lambda: C3_ResNeSt(16, 32, 1, True, 2), 'C3_ResNeSt', 'g'),
    (lambda: C3_ResNeSt(16, 24, 1, True, 1, 0.5, 8), 'ResNeStBottleneck', 'group_width'),  # c_=12, radix 8
    (lambda: C3_SEResNetD(16, 32, 1, True, 1, 0.5, 2.0), 'SEResNetDBottleneck', 'se_ratio'),
    (lambda: C3_SEResNetD(16, 32, 1, True, 1, 0.5, 0.25, 1.5), 'SEResNetDBottleneck', 'drop_path'),
    # a normal Res2Net block cannot carry a stride; bools are not ints, flags are bools
    (lambda: Bottle2neck(16, 16, stride=2, stage=False), 'Bottle2neck', 'stage'),
    (lambda: Bottle2neck(16, 16, stage=1), 'Bottle2neck', 'stage'),
    (lambda: Bottle2neck(16, 16, shortcut='no'), 'Bottle2neck', 'shortcut'),
    (lambda: Bottle2neck(16, 16, g=True), 'Bottle2neck', 'g'),
    (lambda: ResNeStBottleneck(16, 16, shortcut=1), 'ResNeStBottleneck', 'shortcut'),
    (lambda: ResNeStBottleneck(16, 32, stride=2, avd=1), 'ResNeStBottleneck', 'avd'),
    (lambda: SEResNetDBottleneck(16, 16, shortcut=None), 'SEResNetDBottleneck', 'shortcut'),
    (lambda: SEResNetDBottleneck(16, 16, g=1.0), 'SEResNetDBottleneck', 'g'),
    (lambda: C3_ResNeSt(16, 32, 1, True, True), 'C3_ResNeSt', 'g'),
    # cardinality 3 does not divide the split attention's inter = max(36 // 4, 32) = 32
    (lambda: ResNeStBottleneck(16, 16, e=0.75, cardinality=3, radix=1), 'ResNeStBottleneck', 'cardinality'),
    (lambda: ResNeStBottleneck(16, 16, reduction=0), 'ResNeStBottleneck', 'reduction'),
    # non-finite or absurdly large values (MAX_WIDTH = 2**16 bounds every width)
    (lambda: Bottle2neck(16, 16, e=math.inf), 'Bottle2neck', 'e'),
    (lambda: Bottle2neck(16, 16, base_width=math.inf), 'Bottle2neck', 'base_width'),
    (lambda: Bottle2neck(16, 16, base_width=1e300), 'Bottle2neck', 'width'),
    (lambda: ResNeStBottleneck(16, 16, bottleneck_width=math.inf), 'ResNeStBottleneck', 'bottleneck_width'),
    (lambda: ResNeStBottleneck(16, 16, bottleneck_width=1e300), 'ResNeStBottleneck', 'group_width'),
    (lambda: SplitAttention(4096, 16, radix=32, reduction=1), 'SplitAttention', 'inter'),
    (lambda: SEResNetDBottleneck(16, 16, e=10 ** 400), 'SEResNetDBottleneck', 'e'),
    (lambda: C3_SEResNetD(16, 32, 1, True, 1, math.nan), 'C3_SEResNetD', 'e'),
    (lambda: DeepStem(3, 32, c_=2 ** 20), 'DeepStem', 'c_'),
    # ResNetDDown checks c1/c2 before computing int(c2 * e), under its own name
    (lambda: ResNetDDown(16, '32'), 'ResNetDDown', 'c2'),
    (lambda: ResNetDDown(16, None), 'ResNetDDown', 'c2'),
    (lambda: ResNetDDown(16, 0), 'ResNetDDown', 'c2'),
    (lambda: ResNetDDown(16, True), 'ResNetDDown', 'c2'),
    (lambda: ResNetDDown(16, 32, e=math.inf), 'ResNetDDown', 'e'),
]


@pytest.mark.parametrize('ctor,block,arg', BAD, ids=[f'{b}-{a}-{i}' for i, (_, b, a) in enumerate(BAD)])
def test_bad_arguments_raise(ctor, block, arg):
    """Message form: '<Block>: <arg> must be <allowed values>, got <value>', raised at construction."""
    with pytest.raises(ValueError, match=rf'^{block}: {arg} must be .+, got '):
        ctor()
