"""Res2Net, ResNeSt and SE-ResNet-D (ResNet-RS) blocks for YOLOv5, usable from a model YAML like ``C3``.

Conventions (Ultralytics style): channel arguments first, ``c1`` input and ``c2`` output channels; the hidden
width of a bottleneck is ``c_ = int(c2 * e)`` (``e=1.0`` inside a C3); ``act=True`` means YOLOv5's default
activation (``Conv.default_act``, SiLU unless a YAML sets ``activation:``), ``act=False`` none, and a module
(e.g. ``nn.ReLU()``) that module. Every conv+BN pair is a YOLOv5 :class:`Conv` (or the subclass
:class:`BiasConv`), so ``Model.fuse()`` folds all of them; plain ``nn.Conv2d`` is used only where the
reference has no BN (squeeze-excitation fcs, split-attention fc2).

Shortcuts, for all three bottlenecks: identity when ``shortcut and c1 == c2 and stride == 1``; the ResNet-D
projection (:class:`DownsampleAvg`) when ``shortcut`` and the shape changes; no residual when
``shortcut=False`` (then the block is ``act(branch)``).

Blocks registered for YAML use (see :mod:`extensions.registry`):

* C3-like, ``[-1, n, C3_Res2Block, [c2, shortcut, g, e, ...]]``: :class:`C3_Res2Block`, :class:`C3_ResNeSt`,
  :class:`C3_SEResNetD`.
* Single blocks, ``[-1, 1, Block, [c2, ...]]``: :class:`Bottle2neck`, :class:`ResNeStBottleneck`,
  :class:`SEResNetDBottleneck`, :class:`SplitAttention`, :class:`DeepStem` (ResNet-RS stem) and
  :class:`ResNetDDown` (ResNet-D stage transition).

Speed notes (same math as the references, fewer copies and kernels): one 1x1 conv produces all Res2Net
splits and ``torch.split`` returns views of it (in an ONNX export the same conv is written as one conv per
split, which onnxruntime runs without layout reorders); the split-attention pooling averages the radix-stacked map
once and adds the pooled vectors (mean is linear) instead of materialising the sum of the splits; the
weighted radix sum and the SE gate-multiply-add use ``addcmul``; at inference (no autograd, not exporting)
the hierarchical and residual adds write into the block's own temporaries instead of new buffers; every
reshape uses Python ints (no shape is read from a tensor), so ONNX exports with dynamic batch/H/W.

Invalid hyperparameters raise ``ValueError("<Block>: <arg> must be <allowed>, got <value>")`` at construction,
never a TypeError or OverflowError: ints are ints (not bools, ``True == 1``), flags are bools, real numbers are finite,
and channel counts, derived widths and counts of parts are at most ``MAX_WIDTH`` (2**16), checked before any
``int()`` of a derived width.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from models.common import C3, Conv

from .registry import register

__all__ = [
    'BiasConv', 'DropPath', 'SqueezeExcite', 'DownsampleAvg', 'Bottle2neck', 'RadixSoftmax', 'SplitAttention',
    'ResNeStBottleneck', 'SEResNetDBottleneck', 'DeepStem', 'ResNetDDown', 'C3_Res2Block', 'C3_ResNeSt',
    'C3_SEResNetD']


# ------------------------------------------------------------------------------------------------------ helpers
def _check(ok: bool, block: str, arg: str, value, allowed: str) -> None:
    """Raise the documented construction error: ``<block>: <arg> must be <allowed>, got <value>``."""
    if not ok:
        try:
            shown = repr(value)
        except ValueError:  # an int past sys.get_int_max_str_digits()
            shown = f'an int of {value.bit_length()} bits'
        raise ValueError(f'{block}: {arg} must be {allowed}, got {shown}')


MAX_WIDTH = 2 ** 16  # sanity bound on channel counts, derived widths and counts of parts (n, scale, radix, ...)


def _is_int(v) -> bool:
    """An int, not a bool (``True == 1`` would otherwise pass as 1)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    """A finite real number: an int or float, not a bool; an int beyond the float range is not finite."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _scaled(c: int, x, d: int) -> float:
    """``c * x / d`` for a channel count ``c`` and a finite number ``x``, exactly as written; ``inf`` where the
    result leaves the float range (an int ``x`` would raise OverflowError there). Compared with the limits before
    any ``int()`` of it."""
    try:
        return c * x / d
    except OverflowError:
        return math.inf


def _shown(w: float):
    """A derived width for an error message: ``floor(w)``, or ``w`` itself when it is too large to be one."""
    return math.floor(w) if w < 2 ** 53 else w


def _check_common(block: str, c1, c2, e, stride, stride_name: str = 'stride') -> int:
    """Checks shared by every block; returns the hidden width ``c_ = int(c2 * e)``."""
    _check(_is_int(c1) and 1 <= c1 <= MAX_WIDTH, block, 'c1', c1, f'a positive int <= {MAX_WIDTH}')
    _check(_is_int(c2) and 1 <= c2 <= MAX_WIDTH, block, 'c2', c2, f'a positive int <= {MAX_WIDTH}')
    _check(_is_real(e) and e > 0, block, 'e', e, 'a finite number > 0')
    _check(_is_int(stride) and stride in (1, 2), block, stride_name, stride, '1 or 2')
    x = c2 * e  # an int, or a float (inf past the float range): compared before int()
    _check(x >= 1, block, 'e', e, f'large enough that int(c2 * e) >= 1 (c2={c2})')
    _check(x < MAX_WIDTH + 1, block, 'e', e, f'small enough that int(c2 * e) <= {MAX_WIDTH} (c2={c2})')
    return int(x)


def _check_bool(block: str, arg: str, value) -> None:
    _check(isinstance(value, bool), block, arg, value, 'True or False')


def _inference() -> bool:
    """True when no autograd graph is recorded and no ONNX graph traced: in-place arithmetic on a block's own
    temporaries is then safe and saves a buffer (an inplace activation's backward may need the tensor)."""
    return not torch.is_grad_enabled() and not torch.onnx.is_in_onnx_export()


def _add(y, shortcut):
    """``y + shortcut`` for a block's own branch output ``y``, written into ``y`` at inference."""
    return y.add_(shortcut) if _inference() else y + shortcut


def _act(act) -> nn.Module:
    """YOLOv5 ``Conv``'s activation rule: True -> ``Conv.default_act``, a module -> itself, else Identity."""
    return Conv.default_act if act is True else act if isinstance(act, nn.Module) else nn.Identity()


# ------------------------------------------------------------------------------------------------ small modules
class BiasConv(Conv):
    """1x1 conv **with bias**, then BN and activation; a YOLOv5 ``Conv`` so that ``Model.fuse()`` folds the BN.

    Used for ResNeSt's split-attention ``fc1 + bn1`` (the reference's fc1 has a bias). Input ``[B, c1, H, W]``,
    output ``[B, c2, H, W]`` (``H = W = 1`` in split attention).

    Deviation (documented): in training, when BN would see a single value per channel (``B*H*W == 1``, i.e.
    batch 1 on pooled features, which plain BatchNorm rejects with "Expected more than 1 value per channel"),
    BN normalises with its running statistics and leaves them unchanged for that step; gamma, beta and the
    conv still receive gradients. Eval mode, batch > 1 training and the fused model are exactly the reference.
    """

    def __init__(self, c1: int, c2: int, g: int = 1, act=True):
        super().__init__(c1, c2, 1, 1, g=g, act=act)
        self.conv = nn.Conv2d(c1, c2, 1, 1, 0, groups=g, bias=True)

    def forward(self, x):
        if self.training and x.numel() == x.shape[1]:  # one value per channel: batch statistics undefined
            bn = self.bn
            y = F.batch_norm(self.conv(x), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
            return self.act(y)
        return self.act(self.bn(self.conv(x)))


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016; ResNet-RS): per sample, zero the input with probability ``p`` and
    scale survivors by ``1 / (1 - p)``. Identity in eval mode or when ``p == 0``. Shape preserved."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        _check(_is_real(p) and 0.0 <= p < 1.0, 'DropPath', 'p', p, 'a float in [0, 1)')
        self.p = float(p)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f'p={self.p}'


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation as in ResNet-RS (Bello et al. 2021; TF ``squeeze_excitation``).

    ``[B, c, H, W] -> [B, c, H, W]``: global average pool, 1x1 conv ``c -> rd`` with bias, ReLU, 1x1 conv
    ``rd -> c`` with bias, sigmoid, multiply. ``rd = max(1, int(c * se_ratio))`` (TF rounding; timm rounds to a
    multiple of 8 instead, which differs for c not a multiple of 32). No BN, so nothing to fold.
    """

    def __init__(self, c: int, se_ratio: float = 0.25):
        super().__init__()
        _check(_is_real(se_ratio) and 0.0 < se_ratio <= 1.0, 'SqueezeExcite', 'se_ratio', se_ratio,
               'a float in (0, 1]')
        rd = max(1, int(c * se_ratio))
        self.fc1 = nn.Conv2d(c, rd, 1, bias=True)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(rd, c, 1, bias=True)

    def gate(self, x):
        """The per-channel weights ``sigmoid(fc2(relu(fc1(mean(x)))))``, shape ``[B, c, 1, 1]``."""
        return torch.sigmoid(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))

    def forward(self, x):
        return x * self.gate(x)


class DownsampleAvg(nn.Module):
    """ResNet-D projection shortcut (He et al. 2019, "Bag of Tricks"): ``AvgPool2d(stride, stride,
    ceil_mode=True, count_include_pad=False)`` when ``stride > 1``, then 1x1 conv and BN, no activation.

    ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``. Same as timm ``downsample_avg`` and TF
    'same' average pooling (padding excluded), also at odd H/W.
    """

    def __init__(self, c1: int, c2: int, stride: int = 1):
        super().__init__()
        _check(_is_int(stride) and stride in (1, 2), 'DownsampleAvg', 'stride', stride, '1 or 2')
        self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False) if stride > 1 \
            else nn.Identity()
        self.conv = Conv(c1, c2, 1, 1, act=False)

    def forward(self, x):
        return self.conv(self.pool(x))


def _conv_chunks(m: Conv, x, n: int) -> list:
    """``act(bn(conv(x)))`` of a YOLOv5 ``Conv`` (groups 1, fused or not, eval) as ``n`` convs over equal chunks of
    its output channels: the same values as ``m(x).split(c2 // n, 1)``, written so that an ONNX graph has one Conv
    per chunk and no Split node (onnxruntime then keeps the whole block in its blocked NCHWc layout; a Split
    forces layout reorders around it, measured +3% latency for yolov5s-res2)."""
    conv, k = m.conv, m.conv.out_channels // n
    bn = getattr(m, 'bn', None)  # absent once Model.fuse() has folded it into the conv
    out = []
    for i in range(n):
        c = slice(i * k, (i + 1) * k)
        y = F.conv2d(x, conv.weight[c], None if conv.bias is None else conv.bias[c], conv.stride, conv.padding,
                     conv.dilation)
        if bn is not None:
            y = F.batch_norm(y, bn.running_mean[c], bn.running_var[c], bn.weight[c], bn.bias[c], False, 0.0, bn.eps)
        out.append(m.act(y))
    return out


def _shortcut(c1: int, c2: int, stride: int, shortcut: bool):
    """(residual?, shortcut module): identity, ResNet-D projection, or no residual at all."""
    if not shortcut:
        return False, None
    if c1 == c2 and stride == 1:
        return True, nn.Identity()
    return True, DownsampleAvg(c1, c2, stride)


# ------------------------------------------------------------------------------------------------------ Res2Net
@register()
class Bottle2neck(nn.Module):
    """Res2Net bottleneck (Gao et al., "Res2Net: A New Multi-scale Backbone Architecture", TPAMI 2021).

    ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``.

    ``width = floor(c_ * base_width / 64)``; 1x1 conv ``c1 -> width*scale`` (BN, act); split into ``scale``
    parts ``x_0..x_{s-1}``; ``scale-1`` 3x3 convs (stride ``stride``, groups ``g``, BN, act):
    ``y_0 = K_0(x_0)``, ``y_i = K_i(y_{i-1} + x_i)`` in a normal block, ``y_i = K_i(x_i)`` in a stage block;
    the last split passes through (normal) or goes through ``AvgPool2d(3, stride, 1)`` (stage); concat
    ``[y_0, .., y_{s-2}, x_{s-1}']``; 1x1 conv to ``c2`` (BN, no act); add the shortcut; act.
    ``stage=None`` means stage when ``stride > 1 or c1 != c2`` (as timm; the original code also marks the
    first block of layer1, stride 1, as stage: pass ``stage=True`` for that). ``stage=False`` with ``stride > 1``
    is rejected: a normal block adds the strided ``y_{i-1}`` to the unstrided ``x_i``.

    Follows the reference, including the stage pool's ``count_include_pad=True`` (zero padding counts in the
    border average; timm keeps it too, as ``False`` "hurts original weights"). Deviations: the shortcut
    projection is the v1b/ResNet-D one (avg-pool then 1x1), never a strided 1x1; ``g > 1`` groups the 3x3
    convs (Res2NeXt-style) and is YOLOv5's ``g`` argument of ``C3``.
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 1.0, stride: int = 1,
                 base_width: int = 26, scale: int = 4, stage: bool | None = None, act=True, g: int = 1):
        super().__init__()
        name = 'Bottle2neck'
        c_ = _check_common(name, c1, c2, e, stride)
        _check_bool(name, 'shortcut', shortcut)
        _check(_is_int(scale) and 2 <= scale <= MAX_WIDTH, name, 'scale', scale, f'an int in [2, {MAX_WIDTH}]')
        _check(_is_real(base_width) and base_width > 0, name, 'base_width', base_width, 'a finite number > 0')
        w = _scaled(c_, base_width, 64)  # width before floor(); inf past the float range
        _check(w >= 1, name, 'width', _shown(w), f'>= 1: width = floor(c_ * base_width / 64) with c_={c_}, '
               f'base_width={base_width}; raise base_width or c2*e')
        hi = MAX_WIDTH // scale  # conv1 has width*scale output channels
        _check(w < hi + 1, name, 'width', _shown(w), f'<= {MAX_WIDTH} // scale = {hi}: width = floor(c_ * '
               f'base_width / 64) with c_={c_}, base_width={base_width}; lower base_width or c2*e')
        width = int(math.floor(w))
        _check(_is_int(g) and g >= 1 and width % g == 0, name, 'g', g, f'a positive int dividing width={width}')
        _check(stage is None or isinstance(stage, bool), name, 'stage', stage, 'None, True or False')
        # a normal block adds y_{i-1} (strided) to x_i (not strided): only a stage block can carry the stride
        _check(stage is not False or stride == 1, name, 'stage', stage, 'True (or None) when stride > 1')
        self.width, self.scale = width, scale
        self.stage = bool(stride > 1 or c1 != c2) if stage is None else bool(stage)
        self.conv1 = Conv(c1, width * scale, 1, 1, act=act)
        self.convs = nn.ModuleList(Conv(width, width, 3, stride, g=g, act=act) for _ in range(scale - 1))
        self.pool = nn.AvgPool2d(3, stride, 1) if self.stage else nn.Identity()  # count_include_pad=True (ref.)
        self.residual, self.shortcut = _shortcut(c1, c2, stride, shortcut)
        self.conv3 = Conv(width * scale, c2, 1, 1, act=False if self.residual else act)
        self.act = _act(act) if self.residual else nn.Identity()

    def forward(self, x):
        if torch.onnx.is_in_onnx_export() and not self.training:
            xs = _conv_chunks(self.conv1, x, self.scale)  # same values; no Split node in the ONNX graph
        else:
            xs = self.conv1(x).split(self.width, 1)  # views of one tensor: no copy
        inplace = _inference()  # x_i is not read again after y_{i-1} + x_i: add into its slot, no new buffer
        ys, y = [], None
        for i, conv in enumerate(self.convs):
            y = conv(xs[i] if (i == 0 or self.stage) else xs[i].add_(y) if inplace else y + xs[i])
            ys.append(y)
        ys.append(self.pool(xs[-1]))
        y = self.conv3(torch.cat(ys, 1))
        return self.act(_add(y, self.shortcut(x))) if self.residual else y


# ------------------------------------------------------------------------------------------------------ ResNeSt
class RadixSoftmax(nn.Module):
    """ResNeSt rSoftMax: ``[B, g*radix*c, 1, 1]`` logits laid out ``[group][radix][c]`` (fc2's grouped output)
    -> ``[B, radix*g*c, 1, 1]`` weights laid out ``[radix][group][c]`` (the split layout). Exactly
    ``view(B, g, radix, -1).transpose(1, 2)`` then softmax over the radix axis; sigmoid when ``radix == 1``.
    The batch dimension is ``-1`` and the rest Python ints, so ONNX keeps the batch dynamic."""

    def __init__(self, radix: int, g: int, channels: int):
        super().__init__()
        self.radix, self.g, self.c = radix, g, channels  # channels = radix * c2 (fc2 output)

    def forward(self, x):
        if self.radix == 1:
            return torch.sigmoid(x)
        x = x.reshape(-1, self.g, self.radix, self.c // (self.g * self.radix)).transpose(1, 2)
        return x.softmax(1).reshape(-1, self.c, 1, 1)


@register()
class SplitAttention(nn.Module):
    """ResNeSt split-attention conv, SplAtConv2d (Zhang et al., "ResNeSt: Split-Attention Networks", 2020).

    ``[B, c1, H, W] -> [B, c2, H/s, W/s]``. Grouped ``k x k`` conv ``c1 -> c2*radix`` with ``groups=g*radix``,
    BN, act; the radix splits (radix-major, ``c2`` channels each) are summed and averaged over space; fc1
    (1x1, ``groups=g``, bias) to ``inter = max(c1*radix // reduction, min_inter)``, BN, ReLU; fc2 (1x1,
    ``groups=g``, bias) to ``c2*radix``; :class:`RadixSoftmax`; output ``sum_r a_r * split_r``.

    As the reference, fc1's activation is always ReLU (``act`` sets the grouped conv's). Implementation
    (same math): the pooled vector is the sum of the per-split means (mean is linear), so the summed map is
    never materialised. Deviation: BN after fc1 at batch 1 in training, see :class:`BiasConv`.
    """

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, g: int = 1, radix: int = 2, reduction: int = 4,
                 min_inter: int = 32, act=True):
        super().__init__()
        name = 'SplitAttention'
        _check_common(name, c1, c2, 1.0, s, 's')
        _check(_is_int(k) and 1 <= k <= MAX_WIDTH and k % 2 == 1, name, 'k', k, f'an odd int in [1, {MAX_WIDTH}]')
        _check(_is_int(radix) and 1 <= radix <= MAX_WIDTH // c2, name, 'radix', radix,
               f'an int in [1, {MAX_WIDTH // c2}] (c2 * radix <= {MAX_WIDTH}, c2={c2})')
        _check(_is_int(g) and g >= 1, name, 'g', g, 'an int >= 1')
        _check(c1 % (g * radix) == 0, name, 'c1', c1, f'divisible by g*radix = {g * radix}')
        _check(c2 % g == 0, name, 'c2', c2, f'divisible by g = {g}')
        _check(_is_int(reduction) and reduction >= 1, name, 'reduction', reduction, 'an int >= 1')
        _check(_is_int(min_inter) and 1 <= min_inter <= MAX_WIDTH, name, 'min_inter', min_inter,
               f'an int in [1, {MAX_WIDTH}]')
        inter = max(c1 * radix // reduction, min_inter)
        _check(inter <= MAX_WIDTH, name, 'inter', inter, f'<= {MAX_WIDTH}: inter = max(c1*radix // reduction, '
               f'min_inter) with c1={c1}, radix={radix}, reduction={reduction}; raise reduction')
        _check(inter % g == 0, name, 'g', g, f'a divisor of inter = max(c1*radix//reduction, min_inter) = {inter}')
        self.radix, self.c2, self.inter = radix, c2, inter
        self.conv = Conv(c1, c2 * radix, k, s, g=g * radix, act=act)
        self.fc1 = BiasConv(c2, inter, g=g, act=nn.ReLU())
        self.fc2 = nn.Conv2d(inter, c2 * radix, 1, groups=g, bias=True)
        self.rsoftmax = RadixSoftmax(radix, g, c2 * radix)

    def forward(self, x):
        x = self.conv(x)
        if self.radix == 1:
            return x * self.rsoftmax(self.fc2(self.fc1(x.mean((2, 3), keepdim=True))))
        xs = x.split(self.c2, 1)
        gs = x.mean((2, 3), keepdim=True).split(self.c2, 1)
        gap = gs[0]
        for gr in gs[1:]:
            gap = gap + gr
        a = self.rsoftmax(self.fc2(self.fc1(gap))).split(self.c2, 1)
        out = xs[0] * a[0]
        for xr, ar in zip(xs[1:], a[1:]):
            out = torch.addcmul(out, xr, ar)
        return out


@register()
class ResNeStBottleneck(nn.Module):
    """ResNeSt bottleneck (Zhang et al. 2020; the ``resnest50d`` block).

    ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``.
    ``group_width = int(c_ * bottleneck_width / 64) * cardinality``; 1x1 conv ``c1 -> group_width`` (BN, act);
    :class:`SplitAttention` 3x3 (``g=cardinality``, ``radix``); with ``avd and stride > 1`` the stride is
    taken by ``AvgPool2d(3, stride, 1)`` before (``avd_first``) or after the split attention instead of the
    conv; 1x1 conv to ``c2`` (BN, no act); add the shortcut; act.

    Deviations: avd only when ``stride > 1`` (the reference's ``is_first`` stride-1 case never occurs in
    ResNeSt-50..269, whose layer1 has ``is_first=False``); the shortcut projection is always the ResNet-D one
    (avg-pool then 1x1), which is ``resnest*d``'s; the split-attention ``inter`` uses the original rounding
    ``max(c*radix//4, 32)``, not timm's multiple of 8 (equal for widths 64*2^k).
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 1.0, stride: int = 1, radix: int = 2,
                 cardinality: int = 1, bottleneck_width: int = 64, avd: bool = True, avd_first: bool = False,
                 act=True, reduction: int = 4):
        super().__init__()
        name = 'ResNeStBottleneck'
        c_ = _check_common(name, c1, c2, e, stride)
        _check_bool(name, 'shortcut', shortcut)
        _check(_is_int(radix) and 1 <= radix <= MAX_WIDTH, name, 'radix', radix, f'an int in [1, {MAX_WIDTH}]')
        _check(_is_int(cardinality) and 1 <= cardinality <= MAX_WIDTH, name, 'cardinality', cardinality,
               f'an int in [1, {MAX_WIDTH}]')
        _check(_is_real(bottleneck_width) and bottleneck_width > 0, name, 'bottleneck_width', bottleneck_width,
               'a finite number > 0')
        _check_bool(name, 'avd', avd)
        _check_bool(name, 'avd_first', avd_first)
        _check(_is_int(reduction) and reduction >= 1, name, 'reduction', reduction, 'an int >= 1')
        b = _scaled(c_, bottleneck_width, 64)  # width per group before int(); inf past the float range
        hi = MAX_WIDTH // (cardinality * radix)  # the split attention's conv has group_width*radix channels
        _check(b < hi + 1, name, 'group_width', _shown(b) * cardinality,
               f'<= {hi * cardinality} (group_width * radix <= {MAX_WIDTH}; group_width = int(c_ * '
               f'bottleneck_width / 64) * cardinality, c_={c_}); lower c2, e, bottleneck_width, radix or cardinality')
        gw = int(b) * cardinality
        _check(gw >= 1 and gw % (cardinality * radix) == 0, name, 'group_width', gw,
               f'>= 1 and divisible by cardinality*radix = {cardinality * radix} (group_width = '
               f'int(c_ * bottleneck_width / 64) * cardinality, c_={c_}); change c2, e, radix or cardinality')
        inter = max(gw * radix // reduction, 32)  # SplitAttention's inter (its default min_inter=32), grouped
        _check(inter % cardinality == 0, name, 'cardinality', cardinality,
               f'a divisor of the split attention\'s inter = max(group_width*radix // reduction, 32) = {inter} '
               f'(group_width={gw}, radix={radix}, reduction={reduction})')
        pool = avd and stride > 1
        self.conv1 = Conv(c1, gw, 1, 1, act=act)
        self.avd_first = nn.AvgPool2d(3, stride, 1) if pool and avd_first else nn.Identity()
        self.conv2 = SplitAttention(gw, gw, 3, 1 if pool else stride, cardinality, radix, reduction, act=act)
        self.avd_last = nn.AvgPool2d(3, stride, 1) if pool and not avd_first else nn.Identity()
        self.residual, self.shortcut = _shortcut(c1, c2, stride, shortcut)
        self.conv3 = Conv(gw, c2, 1, 1, act=False if self.residual else act)
        self.act = _act(act) if self.residual else nn.Identity()

    def forward(self, x):
        y = self.conv3(self.avd_last(self.conv2(self.avd_first(self.conv1(x)))))
        return self.act(_add(y, self.shortcut(x))) if self.residual else y


# ------------------------------------------------------------------------------------------ SE-ResNet-D / RS
@register()
class SEResNetDBottleneck(nn.Module):
    """SE-ResNet-D bottleneck as in ResNet-RS (Bello et al., "Revisiting ResNets", 2021; timm ``resnetrs``).

    ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``. 1x1 ``c1 -> c_`` (BN, act), 3x3 ``c_ -> c_``
    carrying the stride and groups ``g`` (BN, act), 1x1 ``c_ -> c2`` (BN, no act), :class:`SqueezeExcite` on
    ``c2`` channels (``max(1, int(c2 * se_ratio))`` reduced), :class:`DropPath` on this residual branch only
    (never the shortcut), add the shortcut (identity or ResNet-D avg-pool projection), act.

    Deviations: the last BN's gamma is not zero-initialised (YOLOv5 initialises every block the same way);
    the drop-path rate is a per-block constant (``C3_SEResNetD`` uses one rate for its blocks, as TF's
    per-group schedule does).
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 1.0, stride: int = 1,
                 se_ratio: float = 0.25, drop_path: float = 0.0, act=True, g: int = 1):
        super().__init__()
        name = 'SEResNetDBottleneck'
        c_ = _check_common(name, c1, c2, e, stride)
        _check_bool(name, 'shortcut', shortcut)
        _check(_is_real(se_ratio) and 0.0 < se_ratio <= 1.0, name, 'se_ratio', se_ratio, 'a float in (0, 1]')
        _check(_is_real(drop_path) and 0.0 <= drop_path < 1.0, name, 'drop_path', drop_path, 'a float in [0, 1)')
        _check(_is_int(g) and g >= 1 and c_ % g == 0, name, 'g', g, f'a positive int dividing c_={c_}')
        self.conv1 = Conv(c1, c_, 1, 1, act=act)
        self.conv2 = Conv(c_, c_, 3, stride, g=g, act=act)
        self.conv3 = Conv(c_, c2, 1, 1, act=False)
        self.se = SqueezeExcite(c2, se_ratio)
        self.drop_path = DropPath(drop_path)
        self.residual, self.shortcut = _shortcut(c1, c2, stride, shortcut)
        self.act = _act(act)

    def forward(self, x):
        y = self.conv3(self.conv2(self.conv1(x)))
        gate = self.se.gate(y)
        if not self.residual:
            return self.act(y * gate)
        if self.training and self.drop_path.p > 0.0:
            return self.act(self.drop_path(y * gate) + self.shortcut(x))
        return self.act(torch.addcmul(self.shortcut(x), y, gate))  # shortcut + y * gate, one kernel


@register()
class DeepStem(nn.Module):
    """ResNet-C / ResNet-RS deep stem: three 3x3 convs (BN, act each), the first with stride ``s``.

    ``[B, c1, H, W] -> [B, c2, ceil(H/s), ceil(W/s)]``, widths ``c_, c_, c2`` with ``c_ = c2 // 2`` by default
    (ResNet-RS: 32, 32, 64). Replaces YOLOv5's 6x6 stride-2 stem conv (layer 0). ResNet-RS's stride-2 3x3 conv
    that replaces the max-pool is YOLOv5's next layer (the P2/4 downsample), so it is not part of this module.
    """

    def __init__(self, c1: int, c2: int, s: int = 2, c_: int | None = None, act=True):
        super().__init__()
        name = 'DeepStem'
        _check_common(name, c1, c2, 1.0, s, 's')
        c_ = max(1, c2 // 2) if c_ is None else c_
        _check(_is_int(c_) and 1 <= c_ <= MAX_WIDTH, name, 'c_', c_, f'None or a positive int <= {MAX_WIDTH}')
        self.conv1 = Conv(c1, c_, 3, s, act=act)
        self.conv2 = Conv(c_, c_, 3, 1, act=act)
        self.conv3 = Conv(c_, c2, 3, 1, act=act)

    def forward(self, x):
        return self.conv3(self.conv2(self.conv1(x)))


@register()
class ResNetDDown(SEResNetDBottleneck):
    """ResNet-D stage transition: the first block of a ResNet-RS stage, used in place of YOLOv5's 3x3
    stride-2 ``Conv`` between stages. Downsamples without any strided 1x1: the 3x3 conv carries the stride
    (ResNet-B) and the shortcut is avg-pool then 1x1 (ResNet-D).

    ``[B, c1, H, W] -> [B, c2, ceil(H/s), ceil(W/s)]``; an :class:`SEResNetDBottleneck` with ``stride=s`` and
    a projection shortcut. Default ``e=0.5`` (hidden ``c2/2``, i.e. ``c1`` at YOLO's channel doubling) keeps
    params and FLOPs close to the 3x3 conv it replaces; the ResNet reference uses ``e=0.25``.
    """

    def __init__(self, c1: int, c2: int, s: int = 2, e: float = 0.5, se_ratio: float = 0.25, act=True):
        # every argument is checked here, under this class's name and argument names (s, not stride), so that the
        # base class's checks (the same ones) cannot fail and never name SEResNetDBottleneck
        name = 'ResNetDDown'
        _check_common(name, c1, c2, e, s, 's')
        _check(_is_real(se_ratio) and 0.0 < se_ratio <= 1.0, name, 'se_ratio', se_ratio, 'a float in (0, 1]')
        super().__init__(c1, c2, True, e, s, se_ratio, 0.0, act)


# ---------------------------------------------------------------------------------------------- C3 variants
class _C3Blocks(C3):
    """CSP bottleneck of YOLOv5 (``C3``: cv1, cv2, cv3 and ``m``) whose ``m`` holds ``n`` family blocks of width
    ``c_ = int(c2 * e)`` (each with ``c1 == c2 == c_``, stride 1, ``e=1.0``). Forward is ``C3.forward``."""

    def _build(self, name: str, c1, c2, n, shortcut, e, block) -> None:
        nn.Module.__init__(self)  # C3.__init__ would build (and then discard) plain Bottlenecks
        _check(_is_int(n) and 1 <= n <= MAX_WIDTH, name, 'n', n, f'an int in [1, {MAX_WIDTH}]')
        _check_bool(name, 'shortcut', shortcut)
        c_ = _check_common(name, c1, c2, e, 1)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(block(c_) for _ in range(n)))


@register(repeats=True)
class C3_Res2Block(_C3Blocks):
    """C3 with :class:`Bottle2neck` blocks (normal, not stage), drop-in for ``C3`` in a YAML:
    ``[-1, 3, C3_Res2Block, [128]]``, ``[-1, 3, C3_Res2Block, [512, False, 1, 0.5, 26, 4]]``.
    ``[B, c1, H, W] -> [B, c2, H, W]``; ``g`` groups the 3x3 convs of each branch."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 base_width: int = 26, scale: int = 4):
        self._build('C3_Res2Block', c1, c2, n, shortcut, e,
                    lambda c: Bottle2neck(c, c, shortcut, 1.0, 1, base_width, scale, stage=False, g=g))


@register(repeats=True)
class C3_ResNeSt(_C3Blocks):
    """C3 with :class:`ResNeStBottleneck` blocks, drop-in for ``C3``: ``[-1, 3, C3_ResNeSt, [128]]``.
    ``[B, c1, H, W] -> [B, c2, H, W]``. ``g`` must be 1 (ResNeSt's grouping is ``cardinality``); ``reduction``
    is the split-attention reduction factor (reference 4)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 radix: int = 2, cardinality: int = 1, reduction: int = 4):
        _check(_is_int(g) and g == 1, 'C3_ResNeSt', 'g', g, 'the int 1 (set the split-attention groups with '
               'cardinality)')
        self._build('C3_ResNeSt', c1, c2, n, shortcut, e,
                    lambda c: ResNeStBottleneck(c, c, shortcut, 1.0, 1, radix, cardinality, reduction=reduction))


@register(repeats=True)
class C3_SEResNetD(_C3Blocks):
    """C3 with :class:`SEResNetDBottleneck` blocks, drop-in for ``C3``: ``[-1, 3, C3_SEResNetD, [128]]``.
    ``[B, c1, H, W] -> [B, c2, H, W]``; ``g`` groups the 3x3 convs; every block uses the same ``drop_path``."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 se_ratio: float = 0.25, drop_path: float = 0.0):
        self._build('C3_SEResNetD', c1, c2, n, shortcut, e,
                    lambda c: SEResNetDBottleneck(c, c, shortcut, 1.0, 1, se_ratio, drop_path, g=g))
