"""Property-based tests (hypothesis) of extensions/blocks.py over random valid and invalid block configurations.

Valid configurations (every block, random channels respecting the divisibility rules, shortcut, stride, e, scale /
base_width, radix / cardinality / reduction, se_ratio, drop_path, act, batch 1..3, H and W 8..40, odd and even):

* eval: output shape ``(B, c2, ceil(H/s), ceil(W/s))``, finite, each sample's output independent of the rest of
  the batch, input not modified;
* fusion: after randomising BN statistics and affine parameters, YOLOv5's ``Model.fuse()`` loop leaves no BN and
  changes the output by at most 1e-5 of its max abs (with a negative control: dropping the BNs without folding
  them must be noticed);
* ONNX (opset 17, ``dynamo=False``, dynamic batch/H/W): onnxruntime at another batch and size than exported
  matches PyTorch within 1e-4;
* training at batch 1: forward + backward run, with finite gradients for the input and every parameter.

Invalid configurations (one argument of a valid configuration replaced by a bad value) raise
``ValueError("<Block>: <arg> must be <allowed>, got <value>")`` at construction.

Every test runs per block (parametrised) with ``derandomize=True``, so CI sees the same examples every run. A
falsifying example prints as a constructor call, e.g. ``Bottle2neck(c1=8, c2=16, ..., act=nn.ReLU())``.
Bugs these properties found (a non-stage strided Res2Net block, infinite or huge hyperparameters raising
OverflowError, ResNetDDown blaming ``e`` for a bad ``c2``, bools passing as ints) are fixed; their regression
tests are at the end of the file.
"""

from __future__ import annotations

import copy
import io
import math
import re
import warnings

import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
from block_utils import fuse, randomize_bn
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from models.common import Conv, DWConv

import extensions  # noqa: F401  (registers the blocks)
from extensions._args import MAX_WIDTH
from extensions.blocks import (
    Bottle2neck,
    C3_Res2Block,
    C3_ResNeSt,
    C3_SEResNetD,
    DeepStem,
    ResNeStBottleneck,
    ResNetDDown,
    SEResNetDBottleneck,
    SplitAttention,
)

pytestmark = pytest.mark.usefixtures('one_thread')  # conftest.py


BLOCKS = {c.__name__: c for c in (Bottle2neck, C3_Res2Block, SplitAttention, ResNeStBottleneck, C3_ResNeSt,
                                  SEResNetDBottleneck, C3_SEResNetD, DeepStem, ResNetDDown)}
NAMES = list(BLOCKS)
STRIDE_ARG = {'SplitAttention': 's', 'DeepStem': 's', 'ResNetDDown': 's'}  # the others: 'stride' (C3s: none)


def _fmt(v) -> str:
    return 'nn.ReLU()' if isinstance(v, nn.ReLU) else repr(v)


class Cfg:
    """A block configuration: ``BLOCKS[block](**kwargs)``; ``c1``, ``c2``, ``s`` for the expected shapes. Its repr
    is the constructor call, so a falsifying example can be pasted into a Python shell."""

    def __init__(self, block: str, **kwargs):
        self.block, self.kwargs = block, kwargs
        self.c1, self.c2 = kwargs['c1'], kwargs['c2']
        self.s = kwargs.get(STRIDE_ARG.get(block, 'stride'), 1)

    def build(self, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return BLOCKS[self.block](**copy.deepcopy(self.kwargs))  # fresh activation modules per build

    def replace(self, **kw) -> Cfg:
        return Cfg(self.block, **{**self.kwargs, **kw})

    def __repr__(self):
        return f'{self.block}(' + ', '.join(f'{k}={_fmt(v)}' for k, v in self.kwargs.items()) + ')'

    def _repr_pretty_(self, p, cycle):  # hypothesis' printer
        p.text(repr(self))


# ------------------------------------------------------------------------------------------- valid configurations
CH = st.integers(8, 64)


def same_or_ch(c1):
    """c2: half the time c1 itself, so that the identity-shortcut path (c1 == c2, stride 1) is common."""
    return st.just(c1) | CH


STRIDES = st.sampled_from([1, 2])
E = st.sampled_from([0.25, 0.5, 1.0]) | st.floats(0.125, 1.0)  # c2 >= 8: int(c2 * e) >= 1
ACT = st.sampled_from([True, nn.ReLU()])
SE_RATIO = st.sampled_from([0.25, 1.0, 1e-3]) | st.floats(0.0, 1.0, exclude_min=True)  # (0, 1], tiny ones: rd = 1
DROP_PATH = st.sampled_from([0.0, 0.2]) | st.floats(0.0, 1.0, exclude_max=True)  # [0, 1)


def _divisors(n: int, options=(1, 2, 3, 4)) -> list:
    return [d for d in options if n % d == 0]


def _res2_widths(draw, c_):
    """(base_width, scale, g) with width = floor(c_ * base_width / 64) >= 1 and g | width."""
    lo = -(-64 // c_)  # smallest base_width giving width >= 1
    base_width = draw(st.integers(lo, max(lo, 48)))
    width = c_ * base_width // 64
    return base_width, draw(st.integers(2, 5)), draw(st.sampled_from(_divisors(width)))


@st.composite
def bottle2neck_cfg(draw):
    c1, stride, e = draw(CH), draw(STRIDES), draw(E)
    c2 = draw(same_or_ch(c1))
    base_width, scale, g = _res2_widths(draw, int(c2 * e))
    stage = draw(st.sampled_from([None, True] if stride == 2 else [None, True, False]))  # stride 2: not False
    return Cfg('Bottle2neck', c1=c1, c2=c2, shortcut=draw(st.booleans()), e=e, stride=stride,
               base_width=base_width, scale=scale, stage=stage, act=draw(ACT), g=g)


@st.composite
def c3_res2_cfg(draw):
    c1, e = draw(CH), draw(E)
    c2 = draw(same_or_ch(c1))
    base_width, scale, g = _res2_widths(draw, int(c2 * e))
    return Cfg('C3_Res2Block', c1=c1, c2=c2, n=draw(st.integers(1, 2)), shortcut=draw(st.booleans()), g=g, e=e,
               base_width=base_width, scale=scale)


@st.composite
def split_attention_cfg(draw):
    g, radix = draw(st.sampled_from([1, 2, 4])), draw(st.sampled_from([1, 2, 3, 4]))
    gr = g * radix
    c1 = gr * draw(st.integers(-(-8 // gr), 64 // gr))  # multiple of g*radix in 8..64
    c2 = g * draw(st.integers(-(-8 // g), 64 // g))  # multiple of g
    min_inter = g * draw(st.integers(1, 40 // g))
    # inter = max(c1*radix // reduction, min_inter) must be divisible by g (reduction 1 always is)
    reds = [r for r in range(1, 9) if (c1 * radix // r) % g == 0 or c1 * radix // r <= min_inter]
    return Cfg('SplitAttention', c1=c1, c2=c2, k=draw(st.sampled_from([1, 3, 5])), s=draw(STRIDES), g=g,
               radix=radix, reduction=draw(st.sampled_from(reds)), min_inter=min_inter, act=draw(ACT))


def _resnest_ok_reductions(gw, radix, card):
    """Reductions for which the split attention's inter = max(gw*radix // r, 32) is divisible by cardinality."""
    return [r for r in range(1, 9) if max(gw * radix // r, 32) % card == 0]


@st.composite
def resnest_cfg(draw):
    c1, stride, e = draw(CH), draw(STRIDES), draw(E)
    c2 = draw(same_or_ch(c1))
    radix, card = draw(st.sampled_from([1, 2, 3, 4])), draw(st.sampled_from([1, 2, 3, 4]))
    c_ = int(c2 * e)
    bws = [bw for bw in (8, 16, 24, 32, 48, 64, 96, 128)
           if (b := int(c_ * bw / 64)) >= 1 and b % radix == 0 and b * card <= 96
           and _resnest_ok_reductions(b * card, radix, card)]
    assume(bws)
    bw = draw(st.sampled_from(bws))
    gw = int(c_ * bw / 64) * card
    return Cfg('ResNeStBottleneck', c1=c1, c2=c2, shortcut=draw(st.booleans()), e=e, stride=stride, radix=radix,
               cardinality=card, bottleneck_width=bw, avd=draw(st.booleans()), avd_first=draw(st.booleans()),
               act=draw(ACT), reduction=draw(st.sampled_from(_resnest_ok_reductions(gw, radix, card))))


@st.composite
def c3_resnest_cfg(draw):
    c1, e = draw(CH), draw(E)
    c2 = draw(same_or_ch(c1))
    c_ = int(c2 * e)  # inner blocks: bottleneck_width 64, so group_width = c_ * cardinality
    radix = draw(st.sampled_from(_divisors(c_)))
    card = draw(st.sampled_from([k for k in (1, 2, 3, 4) if c_ * k <= 96] or [1]))
    reds = _resnest_ok_reductions(c_ * card, radix, card)
    assume(reds)
    return Cfg('C3_ResNeSt', c1=c1, c2=c2, n=draw(st.integers(1, 2)), shortcut=draw(st.booleans()), g=1, e=e,
               radix=radix, cardinality=card, reduction=draw(st.sampled_from(reds)))


@st.composite
def serd_cfg(draw):
    c1, e = draw(CH), draw(E)
    c2 = draw(same_or_ch(c1))
    return Cfg('SEResNetDBottleneck', c1=c1, c2=c2, shortcut=draw(st.booleans()), e=e, stride=draw(STRIDES),
               se_ratio=draw(SE_RATIO), drop_path=draw(DROP_PATH), act=draw(ACT),
               g=draw(st.sampled_from(_divisors(int(c2 * e)))))


@st.composite
def c3_serd_cfg(draw):
    c1, e = draw(CH), draw(E)
    c2 = draw(same_or_ch(c1))
    return Cfg('C3_SEResNetD', c1=c1, c2=c2, n=draw(st.integers(1, 2)), shortcut=draw(st.booleans()),
               g=draw(st.sampled_from(_divisors(int(c2 * e)))), e=e, se_ratio=draw(SE_RATIO),
               drop_path=draw(DROP_PATH))


@st.composite
def deep_stem_cfg(draw):
    return Cfg('DeepStem', c1=draw(st.integers(1, 64)), c2=draw(CH), s=draw(STRIDES),
               c_=draw(st.none() | st.integers(1, 48)), act=draw(ACT))


@st.composite
def resnetd_down_cfg(draw):
    c1 = draw(CH)
    return Cfg('ResNetDDown', c1=c1, c2=draw(same_or_ch(c1)), s=draw(STRIDES), e=draw(E), se_ratio=draw(SE_RATIO),
               act=draw(ACT))


VALID = {'Bottle2neck': bottle2neck_cfg(), 'C3_Res2Block': c3_res2_cfg(), 'SplitAttention': split_attention_cfg(),
         'ResNeStBottleneck': resnest_cfg(), 'C3_ResNeSt': c3_resnest_cfg(), 'SEResNetDBottleneck': serd_cfg(),
         'C3_SEResNetD': c3_serd_cfg(), 'DeepStem': deep_stem_cfg(), 'ResNetDDown': resnetd_down_cfg()}
assert set(VALID) == set(BLOCKS)

SIDE = st.integers(8, 40)
SEED = st.integers(0, 2 ** 16)


# ------------------------------------------------------------------------------------------------------- helpers
def expected_shape(cfg: Cfg, b: int, h: int, w: int) -> tuple:
    return b, cfg.c2, math.ceil(h / cfg.s), math.ceil(w / cfg.s)


def drop_bn_unfolded(module: nn.Module) -> nn.Module:
    """A broken fuse (negative control): removes every BN without folding it into its conv."""
    for m in module.modules():
        if isinstance(m, (Conv, DWConv)) and hasattr(m, 'bn'):
            delattr(m, 'bn')
            m.forward = m.forward_fuse
    return module


def rel_diff(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


# ------------------------------------------------------------------------------------------ valid: eval invariants
@pytest.mark.parametrize('block', NAMES)
@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.data(), b=st.integers(1, 3), h=SIDE, w=SIDE, seed=SEED)
def test_eval_shape_finite_batch_independent(block, data, b, h, w, seed):
    cfg = data.draw(VALID[block], label='cfg')
    m = cfg.build(seed).eval()
    x = torch.randn(b, cfg.c1, h, w)
    x0 = x.clone()
    with torch.no_grad():
        y = m(x)
        assert y.shape == expected_shape(cfg, b, h, w)
        assert torch.isfinite(y).all()
        assert torch.equal(x, x0), 'the input was modified in place'
        scale = y.abs().max().clamp_min(1e-6)
        for i in range(b):  # no mixing across the batch (reshapes use -1 for the batch)
            yi = m(x[i:i + 1])
            assert ((yi - y[i:i + 1]).abs().max() / scale).item() <= 1e-5, f'sample {i} depends on the batch'


# --------------------------------------------------------------------------------------------------------- fusion
@pytest.mark.parametrize('block', NAMES)
@settings(max_examples=30, deadline=None, derandomize=True)
@given(data=st.data(), b=st.integers(1, 3), h=SIDE, w=SIDE, seed=SEED)
def test_fused_matches_unfused(block, data, b, h, w, seed):
    cfg = data.draw(VALID[block], label='cfg')
    m = randomize_bn(cfg.build(seed), seed).eval()
    x = torch.randn(b, cfg.c1, h, w)
    with torch.no_grad():
        y = m(x)
        fm = fuse(copy.deepcopy(m))
        yf = fm(x)
        y_broken = drop_bn_unfolded(copy.deepcopy(m))(x)
    assert not any(isinstance(n, nn.BatchNorm2d) for n in fm.modules()), 'a BatchNorm was left unfused'
    assert y.abs().max() > 1e-3, 'trivial output: the comparison would test nothing'
    assert yf.shape == y.shape
    assert rel_diff(yf, y) <= 1e-5
    assert rel_diff(y_broken, y) > 1e-3, 'negative control: dropping the BNs unfolded went unnoticed'


# ----------------------------------------------------------------------------------------------------------- ONNX
@st.composite
def onnx_sizes(draw):
    """(export size, test size): batch, H and W all different (8..40 each, odd and even)."""
    b1, h1, w1 = draw(st.integers(1, 3)), draw(SIDE), draw(SIDE)
    b2 = draw(st.sampled_from([v for v in (1, 2, 3) if v != b1]))
    h2, w2 = (8 + (v - 8 + draw(st.integers(1, 32))) % 33 for v in (h1, w1))  # != h1, != w1
    return (b1, h1, w1), (b2, h2, w2)


@pytest.mark.parametrize('block', NAMES)
@settings(max_examples=10, deadline=None, derandomize=True)
@given(data=st.data(), sizes=onnx_sizes(), fused=st.booleans(), seed=SEED)
def test_onnx_dynamic_matches_pytorch(block, data, sizes, fused, seed):
    cfg = data.draw(VALID[block], label='cfg')
    m = randomize_bn(cfg.build(seed), seed).eval()
    if fused:
        m = fuse(m)
    (b1, h1, w1), (b2, h2, w2) = sizes
    f = io.BytesIO()
    axes = {0: 'b', 2: 'h', 3: 'w'}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(m, torch.randn(b1, cfg.c1, h1, w1), f, opset_version=17, dynamo=False, input_names=['x'],
                          output_names=['y'], dynamic_axes={'x': axes, 'y': axes})
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(f.getvalue(), so, providers=['CPUExecutionProvider'])
    x = torch.randn(b2, cfg.c1, h2, w2)
    with torch.no_grad():
        ref = m(x)
    out = torch.from_numpy(sess.run(None, {'x': x.numpy()})[0])
    assert tuple(out.shape) == expected_shape(cfg, b2, h2, w2)
    assert (out - ref).abs().max().item() <= 1e-4


# ------------------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize('block', NAMES)
@settings(max_examples=20, deadline=None, derandomize=True)
@given(data=st.data(), h=SIDE, w=SIDE, seed=SEED)
def test_train_batch1_forward_backward(block, data, h, w, seed):
    """YOLOv5 builds every model with a batch-1 forward pass in train mode."""
    cfg = data.draw(VALID[block], label='cfg')
    m = cfg.build(seed).train()
    x = torch.randn(1, cfg.c1, h, w, requires_grad=True)
    y = m(x)
    assert y.shape == expected_shape(cfg, 1, h, w)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in m.named_parameters():
        assert p.numel() > 0, f'{name} is empty (a zero-width layer)'
        assert p.grad is not None, f'{name} got no gradient'
        assert torch.isfinite(p.grad).all(), name


# ------------------------------------------------------------------------------------------ invalid configurations
DERIVED = object()  # the message reports a derived value (width, group_width, ...), not the argument itself

HUGE_INTS = [MAX_WIDTH + 1, 2 ** 70, 10 ** 400]  # past the sanity bound; 10**400 is past the float range too
BAD_CHANNELS = (st.sampled_from([0, -8, 16.0, '16', True, None, math.inf, *HUGE_INTS]) | st.integers(-64, 0)
                | st.integers(MAX_WIDTH + 1))
BAD_STRIDE = st.sampled_from([0, 3, 4, -1, 2.0, 1.0, '2', True, False, None]) | st.integers(3, 64)
BAD_POS_INT = st.sampled_from([0, -1, 2.0, '2', True, None])  # for 'an int >= 1' (reduction: no upper bound)
BAD_COUNT = BAD_POS_INT | st.sampled_from([math.inf, 2 ** 70, 10 ** 400])  # n, radix, cardinality, min_inter
BAD_NUMBER_GT0 = (st.sampled_from([0, 0.0, -1, -0.5, float('nan'), float('inf'), 10 ** 400, '1', True, None])
                  | st.floats(max_value=0.0))  # 10**400: an int past the float range, not a finite number
BAD_SE_RATIO = (st.sampled_from([0, 0.0, -0.25, 1.0000001, 2, float('nan'), True, '0.25', None])
                | st.floats(max_value=0.0) | st.floats(min_value=1.0, exclude_min=True))
BAD_DROP_PATH = (st.sampled_from([-0.1, 1, 1.0, 1.5, float('nan'), float('inf'), True, '0.1', None])
                 | st.floats(max_value=-1e-9) | st.floats(min_value=1.0))
BAD_BOOL = st.sampled_from([1, 0, 'no', '', None, 1.0, 0.0])


def _bad_e(draw, c2):
    """e <= 0 / not a finite number, or positive but so small that int(c2 * e) == 0, or so large that
    int(c2 * e) > MAX_WIDTH (up to 1e308 and ints past the float range)."""
    e = draw(BAD_NUMBER_GT0 | st.floats(0.0, 1.0 / c2, exclude_min=True, exclude_max=True)
             | st.floats((MAX_WIDTH + 1) / c2, 1e308) | st.integers(MAX_WIDTH // c2 + 1, 10 ** 400))
    if isinstance(e, float) and 0 < e < 1:
        assume(int(c2 * e) == 0)  # c2 * e may round up to 1.0 just below 1 / c2
    if isinstance(e, float) and e >= 1:
        assume(c2 * e >= MAX_WIDTH + 1)  # c2 * e may round down to just below the bound
    return e


def _bad_groups(draw, n, also):
    """A bad groups value for a width ``n``: an int >= 2 that does not divide n, or one of ``also``."""
    g = draw(st.sampled_from(['non-divisor', *also]))
    return draw(st.sampled_from([v for v in range(2, n + 9) if n % v])) if g == 'non-divisor' else g


@st.composite
def invalid_case(draw, block):
    """(cfg, block named in the message, arg named, value reported or DERIVED): one argument of a valid
    configuration of ``block`` replaced by an invalid value."""
    cfg = draw(VALID[block])
    kw = cfg.kwargs
    # The family arguments of a C3 variant are checked by its inner block (the message may name either).
    inner = {'C3_Res2Block': '(?:C3_Res2Block|Bottle2neck)', 'C3_ResNeSt': '(?:C3_ResNeSt|ResNeStBottleneck)',
             'C3_SEResNetD': '(?:C3_SEResNetD|SEResNetDBottleneck)'}.get(block, block)
    kinds = ['c1', 'c2']
    if 'e' in kw:
        kinds.append('e')
    if block in STRIDE_ARG or 'stride' in kw:
        kinds.append(STRIDE_ARG.get(block, 'stride'))
    kinds += {'Bottle2neck': ['scale', 'base_width', 'width', 'g', 'shortcut', 'stage'],
              'C3_Res2Block': ['scale', 'base_width', 'width', 'g', 'n', 'shortcut'],
              'SplitAttention': ['c1%', 'c2%', 'radix', 'g', 'k', 'reduction', 'min_inter', 'inter%'],
              'ResNeStBottleneck': ['radix', 'cardinality', 'bottleneck_width', 'group_width', 'shortcut', 'avd',
                                    'avd_first', 'reduction'],
              'C3_ResNeSt': ['g', 'radix', 'cardinality', 'group_width', 'n', 'shortcut', 'reduction'],
              'SEResNetDBottleneck': ['se_ratio', 'drop_path', 'g', 'shortcut'],
              'C3_SEResNetD': ['se_ratio', 'drop_path', 'g', 'n', 'shortcut'],
              'DeepStem': ['c_'],
              'ResNetDDown': ['se_ratio']}[block]
    kind = draw(st.sampled_from(kinds))

    def bad(arg, value, named=block):
        return cfg.replace(**{arg: value}), named, arg, value

    if kind in ('c1', 'c2'):  # ResNetDDown checks every argument itself, under its own name
        return bad(kind, draw(BAD_CHANNELS))
    if kind == 'e':
        return bad('e', _bad_e(draw, kw['c2']))
    if kind in ('stride', 's'):
        return bad(kind, draw(BAD_STRIDE))
    if kind == 'n':
        return bad('n', draw(BAD_COUNT))
    if kind in ('shortcut', 'avd', 'avd_first'):  # bools only (1 == True would pass a truthiness test)
        return bad(kind, draw(BAD_BOOL))
    if kind == 'stage':  # None, True or False; False only at stride 1 (a normal block cannot carry a stride)
        stage = draw(st.sampled_from([1, 0, 1.0, 'yes', 'False'] + ([False] if kw['stride'] > 1 else [])))
        return bad('stage', stage)
    if kind == 'reduction':  # an int >= 1, no upper bound (a huge one only gives inter = min_inter)
        return bad('reduction', draw(BAD_POS_INT), inner)
    if kind == 'se_ratio':
        return bad('se_ratio', draw(BAD_SE_RATIO), inner)
    if kind == 'drop_path':
        return bad('drop_path', draw(BAD_DROP_PATH), inner)
    if kind == 'c_':  # None is valid (c2 // 2)
        return bad('c_', draw(st.sampled_from([0, -1, 8.0, '8', True, *HUGE_INTS]) | st.integers(-64, 0)))
    c_ = int(kw['c2'] * kw.get('e', 1.0))
    if block in ('Bottle2neck', 'C3_Res2Block'):
        if kind == 'scale':
            return bad('scale', draw(st.sampled_from([1, 0, -1, 4.0, True, '4', None, *HUGE_INTS])), inner)
        if kind == 'base_width':
            return bad('base_width', draw(BAD_NUMBER_GT0), inner)
        if kind == 'width':  # base_width finite > 0 but floor(c_ * base_width / 64) == 0 or * scale > MAX_WIDTH
            hi = MAX_WIDTH // kw['scale']
            bw = draw(st.floats(0.0, 64 / c_, exclude_min=True, exclude_max=True)
                      | st.floats(64 * (hi + 1) / c_, 1e308) | st.integers(64 * (hi + 1), 10 ** 300))
            w = c_ * bw / 64
            assume(w < 1 or w >= hi + 1)  # (c_ * bw may be inf: the block must report that too)
            return bad('base_width', bw, inner)[:2] + ('width', DERIVED)
        if kind == 'g':
            width = c_ * kw['base_width'] // 64
            return bad('g', _bad_groups(draw, width, [0, -1, True, 2.0]), inner)
    if block == 'SEResNetDBottleneck' or block == 'C3_SEResNetD':  # kind == 'g'
        return bad('g', _bad_groups(draw, c_, [0, -2, True, 1.0]), inner)
    if block == 'SplitAttention':
        g, radix = kw['g'], kw['radix']
        if kind == 'c1%':  # c1 not divisible by g*radix
            assume(g * radix > 1)
            return bad('c1', draw(st.sampled_from([c for c in range(1, 65) if c % (g * radix)])))
        if kind == 'c2%':
            assume(g > 1)
            return bad('c2', draw(st.sampled_from([c for c in range(1, 65) if c % g])))
        if kind == 'inter%':  # min_inter (hence inter) not divisible by g
            assume(g > 1)
            mi = draw(st.sampled_from([v for v in range(1, 65) if v % g]))
            return cfg.replace(min_inter=mi, reduction=kw['c1'] * kw['radix']), block, 'g', g  # inter = mi
        if kind in ('radix', 'min_inter'):
            return bad(kind, draw(BAD_COUNT))
        if kind == 'g':
            return bad('g', draw(st.sampled_from([0, -1, True, 1.0, None])))
        if kind == 'k':
            return bad('k', draw(st.sampled_from([0, -1, 3.0, True, None, MAX_WIDTH + 1, 2 ** 70 + 1])
                                 | st.integers(1, 8).map(lambda v: 2 * v)))
    if block in ('ResNeStBottleneck', 'C3_ResNeSt'):
        if kind == 'g':  # C3_ResNeSt: g must be the int 1 (not True, not 1.0)
            return bad('g', draw(st.sampled_from([0, 2, 4, -1, 2.0, 1.0, True, None]) | st.integers(2, 8)))
        if kind in ('radix', 'cardinality'):
            return bad(kind, draw(BAD_COUNT), inner)
        if kind == 'bottleneck_width':
            return bad('bottleneck_width', draw(BAD_NUMBER_GT0))
        if kind == 'group_width':  # int(c_ * bottleneck_width / 64) not a positive multiple of radix, or too wide
            if block == 'ResNeStBottleneck':
                bws = [v for v in range(1, 129) if int(c_ * v / 64) % kw['radix'] != 0 or int(c_ * v / 64) == 0]
                big = draw(st.floats(64 * (MAX_WIDTH + 1) / c_, 1e308) | st.integers(64 * (MAX_WIDTH + 1), 10 ** 300))
                bw = draw(st.sampled_from(bws) | st.just(big)) if bws else big  # no bws for radix 1, c_ >= 64
                return bad('bottleneck_width', bw)[:2] + ('group_width', DERIVED)
            radix = draw(st.sampled_from([r for r in range(2, 10) if c_ % r]))
            return bad('radix', radix, inner)[:2] + ('group_width', DERIVED)
    raise AssertionError(f'unhandled {block} {kind}')  # pragma: no cover


@pytest.mark.parametrize('block', NAMES)
@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.data())
def test_invalid_config_raises_named_value_error(block, data):
    cfg, named, arg, value = data.draw(invalid_case(block), label='case')
    with pytest.raises(ValueError) as ei:
        cfg.build()
    msg = str(ei.value)
    assert re.match(rf'{named}: {arg} must be .+, got .+', msg, re.S), msg
    if value is not DERIVED:
        assert msg.endswith(f', got {value!r}'), msg


# ------------------------------------------------------------- regressions: bugs the properties found, now fixed
def test_bottle2neck_stride2_non_stage_rejected():
    """A normal (non-stage) Res2Net block adds the strided y_{i-1} to the unstrided x_i: it cannot carry a stride.
    It used to build and then fail in forward with a size mismatch."""
    with pytest.raises(ValueError) as ei:
        Bottle2neck(16, 16, stride=2, stage=False)
    assert str(ei.value) == 'Bottle2neck: stage must be True (or None) when stride > 1, got False'
    for stage in (None, True):  # the valid strided blocks still work
        assert Bottle2neck(16, 16, stride=2, stage=stage).eval()(torch.randn(1, 16, 8, 8)).shape == (1, 16, 4, 4)


# (constructor, block named, argument named): infinite, NaN, beyond the float range, or finite but absurdly large
# (a derived width over MAX_WIDTH). These raised OverflowError (int(inf), float(10**400)) or TypeError.
NON_FINITE_OR_HUGE = [
    (lambda: Bottle2neck(16, 16, e=math.inf), 'Bottle2neck', 'e'),
    (lambda: Bottle2neck(16, 16, e=1e300), 'Bottle2neck', 'e'),
    (lambda: Bottle2neck(16, 16, e=10 ** 400), 'Bottle2neck', 'e'),
    (lambda: Bottle2neck(16, 16, base_width=math.inf), 'Bottle2neck', 'base_width'),
    (lambda: Bottle2neck(16, 16, base_width=math.nan), 'Bottle2neck', 'base_width'),
    (lambda: Bottle2neck(16, 16, base_width=1e300), 'Bottle2neck', 'width'),
    (lambda: Bottle2neck(16, 16, base_width=10 ** 300), 'Bottle2neck', 'width'),
    (lambda: Bottle2neck(16, 16, scale=10 ** 400), 'Bottle2neck', 'scale'),
    (lambda: Bottle2neck(10 ** 400, 16), 'Bottle2neck', 'c1'),
    (lambda: ResNeStBottleneck(16, 16, bottleneck_width=math.inf), 'ResNeStBottleneck', 'bottleneck_width'),
    (lambda: ResNeStBottleneck(16, 16, bottleneck_width=1e300), 'ResNeStBottleneck', 'group_width'),
    (lambda: ResNeStBottleneck(16, 16, bottleneck_width=10 ** 308), 'ResNeStBottleneck', 'group_width'),
    (lambda: ResNeStBottleneck(16, 16, e=math.inf), 'ResNeStBottleneck', 'e'),
    (lambda: ResNeStBottleneck(16, 16, radix=2 ** 70), 'ResNeStBottleneck', 'radix'),
    (lambda: ResNeStBottleneck(16, 16, cardinality=10 ** 400), 'ResNeStBottleneck', 'cardinality'),
    (lambda: C3_ResNeSt(16, 32, 1, True, 1, math.inf), 'C3_ResNeSt', 'e'),
    (lambda: C3_ResNeSt(16, 32, 2 ** 70), 'C3_ResNeSt', 'n'),
    (lambda: SplitAttention(16, 16, radix=2 ** 70), 'SplitAttention', 'radix'),
    (lambda: SplitAttention(16, 16, min_inter=10 ** 400), 'SplitAttention', 'min_inter'),
    (lambda: SplitAttention(16, 16, k=2 ** 70 + 1), 'SplitAttention', 'k'),
    (lambda: SplitAttention(4096, 16, radix=32, reduction=1), 'SplitAttention', 'inter'),  # inter 131072
    (lambda: SEResNetDBottleneck(16, 16, e=math.inf), 'SEResNetDBottleneck', 'e'),
    (lambda: SEResNetDBottleneck(16, 16, se_ratio=math.inf), 'SEResNetDBottleneck', 'se_ratio'),
    (lambda: SEResNetDBottleneck(16, 16, drop_path=math.nan), 'SEResNetDBottleneck', 'drop_path'),
    (lambda: C3_SEResNetD(16, 32, 1, True, 1, math.inf), 'C3_SEResNetD', 'e'),
    (lambda: C3_SEResNetD(16, 32, 10 ** 400), 'C3_SEResNetD', 'n'),
    (lambda: DeepStem(3, 32, c_=10 ** 400), 'DeepStem', 'c_'),
    (lambda: DeepStem(3, 2 ** 70), 'DeepStem', 'c2'),
    (lambda: ResNetDDown(16, 32, e=math.inf), 'ResNetDDown', 'e'),
    (lambda: ResNetDDown(16, 32, e=1e300), 'ResNetDDown', 'e'),
    (lambda: ResNetDDown(16, 32, se_ratio=math.nan), 'ResNetDDown', 'se_ratio'),
    (lambda: C3_Res2Block(16, 32, e=math.inf), 'C3_Res2Block', 'e'),
    (lambda: C3_Res2Block(16, 32, 1, True, 1, 0.5, math.inf), 'Bottle2neck', 'base_width'),
]


@pytest.mark.parametrize('ctor,block,arg', NON_FINITE_OR_HUGE,
                         ids=[f'{b}-{a}-{i}' for i, (_, b, a) in enumerate(NON_FINITE_OR_HUGE)])
def test_non_finite_or_huge_hyperparameter_is_named_value_error(ctor, block, arg):
    with pytest.raises(ValueError, match=rf'^{block}: {arg} must be .+, got '):
        ctor()


@pytest.mark.parametrize('c2', [0, -8, True, None, '32', 32.0, MAX_WIDTH + 1])
def test_resnetd_down_bad_c2_is_named(c2):
    """ResNetDDown used to compute int(c2 * e) before c2 was validated: TypeError, or a bad c2 blamed on e."""
    with pytest.raises(ValueError) as ei:
        ResNetDDown(16, c2)
    assert str(ei.value).startswith('ResNetDDown: c2 must be '), ei.value
    assert str(ei.value).endswith(f', got {c2!r}'), ei.value


# (constructor, block named, argument named): a bool is an int in Python (True == 1) and any value is truthy or not;
# ints must be ints (not bools or floats) and flags bools.
BOOL_INT_CONFUSION = [
    (lambda: Bottle2neck(16, 16, stage=1), 'Bottle2neck', 'stage'),
    (lambda: Bottle2neck(16, 16, stage=0), 'Bottle2neck', 'stage'),
    (lambda: Bottle2neck(16, 16, stage=1.0), 'Bottle2neck', 'stage'),
    (lambda: Bottle2neck(16, 16, g=True), 'Bottle2neck', 'g'),
    (lambda: Bottle2neck(16, 16, g=1.0), 'Bottle2neck', 'g'),
    (lambda: Bottle2neck(16, 16, shortcut='no'), 'Bottle2neck', 'shortcut'),
    (lambda: Bottle2neck(16, 16, shortcut=1), 'Bottle2neck', 'shortcut'),
    (lambda: Bottle2neck(16, 16, shortcut=None), 'Bottle2neck', 'shortcut'),
    (lambda: C3_Res2Block(16, 32, 1, True, True), 'Bottle2neck', 'g'),
    (lambda: C3_Res2Block(16, 32, 1, 1), 'C3_Res2Block', 'shortcut'),
    (lambda: ResNeStBottleneck(16, 16, shortcut='no'), 'ResNeStBottleneck', 'shortcut'),
    (lambda: ResNeStBottleneck(16, 16, shortcut=0), 'ResNeStBottleneck', 'shortcut'),
    (lambda: ResNeStBottleneck(16, 32, stride=2, avd=1), 'ResNeStBottleneck', 'avd'),
    (lambda: ResNeStBottleneck(16, 32, stride=2, avd_first='yes'), 'ResNeStBottleneck', 'avd_first'),
    (lambda: ResNeStBottleneck(16, 16, cardinality=True), 'ResNeStBottleneck', 'cardinality'),
    (lambda: C3_ResNeSt(16, 32, 1, True, True), 'C3_ResNeSt', 'g'),
    (lambda: C3_ResNeSt(16, 32, 1, True, 1.0), 'C3_ResNeSt', 'g'),
    (lambda: C3_ResNeSt(16, 32, 1, 'no'), 'C3_ResNeSt', 'shortcut'),
    (lambda: SplitAttention(16, 16, g=True), 'SplitAttention', 'g'),
    (lambda: SplitAttention(16, 16, g=1.0), 'SplitAttention', 'g'),
    (lambda: SEResNetDBottleneck(16, 16, g=True), 'SEResNetDBottleneck', 'g'),
    (lambda: SEResNetDBottleneck(16, 16, g=1.0), 'SEResNetDBottleneck', 'g'),
    (lambda: SEResNetDBottleneck(16, 16, shortcut='no'), 'SEResNetDBottleneck', 'shortcut'),
    (lambda: SEResNetDBottleneck(16, 16, shortcut=1), 'SEResNetDBottleneck', 'shortcut'),
    (lambda: C3_SEResNetD(16, 32, 1, True, True), 'SEResNetDBottleneck', 'g'),
    (lambda: C3_SEResNetD(16, 32, 1, 0), 'C3_SEResNetD', 'shortcut'),
    (lambda: ResNetDDown(16, True), 'ResNetDDown', 'c2'),
    (lambda: ResNetDDown(16, 32, s=True), 'ResNetDDown', 's'),
]


@pytest.mark.parametrize('ctor,block,arg', BOOL_INT_CONFUSION,
                         ids=[f'{b}-{a}-{i}' for i, (_, b, a) in enumerate(BOOL_INT_CONFUSION)])
def test_bool_int_confusion_is_named_value_error(ctor, block, arg):
    with pytest.raises(ValueError, match=rf'^{block}: {arg} must be .+, got '):
        ctor()


@pytest.mark.parametrize('block', [ResNeStBottleneck, C3_ResNeSt])
def test_resnest_cardinality_not_dividing_inter_names_cardinality(block):
    """The split attention's fc1/fc2 are grouped by cardinality, so cardinality must divide its inter width. The
    error used to name SplitAttention's g, which the user never passed."""
    with pytest.raises(ValueError) as ei:  # both: group_width 36, inter = max(36 // 4, 32) = 32
        if block is ResNeStBottleneck:
            ResNeStBottleneck(16, 16, e=0.75, cardinality=3, radix=1)
        else:
            C3_ResNeSt(16, 24, 1, True, 1, 0.5, 1, 3)  # c_ = 12, as above
    assert re.match(r'ResNeStBottleneck: cardinality must be a divisor of .*inter.* = 32\b.*, got 3$', str(ei.value)), \
        ei.value
