"""ResNeSt blocks for YOLOv5: radix softmax, the split-attention conv, its bottleneck and a C3 built from it.

Zhang et al., "ResNeSt: Split-Attention Networks", CVPRW 2022 (https://arxiv.org/abs/2004.08955); timm
``resnest50d`` for the reference semantics (``layers/split_attn.py``, ``models/resnest.py``).

Implementation (same math): the split-attention pooling averages the radix-stacked map once and adds the
pooled vectors (mean is linear) instead of materialising the sum of the splits; the weighted radix sum uses
``addcmul``; every reshape uses Python ints, so ONNX exports keep batch, height and width dynamic. (Radix 2 as
the sigmoid of the logit difference was measured and dropped: 52 ops per training step of a split attention
against the softmax's 45; docs/training_speed.md.)
"""

from __future__ import annotations

import torch
import torch.nn as nn
from models.common import Conv

from . import _args
from ._layers import BiasConv, C3Blocks, ResNetStage, act_module, add, inplace_relu, residual_shortcut
from .registry import fixed, register

__all__ = ['RadixSoftmax', 'SplitAttention', 'ResNeStBottleneck', 'C3_ResNeSt', 'ResNeStStage']


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
    """ResNeSt split-attention conv (SplAtConv2d). ``[B, c1, H, W] -> [B, c2, H/s, W/s]``.

    Grouped ``k x k`` conv ``c1 -> c2*radix`` with ``groups=g*radix``, BN, act; the radix splits (radix-major,
    ``c2`` channels each) are summed and averaged over space; fc1 (1x1, ``groups=g``, bias) to
    ``inter = max(c1*radix // reduction, min_inter)``, BN, ReLU; fc2 (1x1, ``groups=g``, bias) to ``c2*radix``;
    :class:`RadixSoftmax`; output ``sum_r a_r * split_r``.

    As the reference, fc1's activation is always ReLU (``act`` sets the grouped conv's). Deviation: BN after
    fc1 at batch 1 in training, see :class:`BiasConv`.
    """

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, g: int = 1, radix: int = 2, reduction: int = 4,
                 min_inter: int = 32, act=True):
        super().__init__()
        inter = _args.split_attention(c1, c2, k, s, g, radix, reduction, min_inter)  # attention width
        self.radix, self.c2, self.inter = radix, c2, inter
        self.conv = Conv(c1, c2 * radix, k, s, g=g * radix, act=act)
        self.fc1 = BiasConv(c2, inter, g=g, act=nn.ReLU(inplace=True))
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
    """ResNeSt bottleneck (the ``resnest50d`` block). ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``.

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
        gw = _args.resnest_bottleneck(c1, c2, shortcut, e, stride, radix, cardinality, bottleneck_width, avd,
                                      avd_first, reduction)  # group width
        act = inplace_relu(act)
        pool = avd and stride > 1
        self.conv1 = Conv(c1, gw, 1, 1, act=act)
        self.avd_first = nn.AvgPool2d(3, stride, 1) if pool and avd_first else nn.Identity()
        self.conv2 = SplitAttention(gw, gw, 3, 1 if pool else stride, cardinality, radix, reduction, act=act)
        self.avd_last = nn.AvgPool2d(3, stride, 1) if pool and not avd_first else nn.Identity()
        self.residual, self.shortcut = residual_shortcut(c1, c2, stride, shortcut)
        self.conv3 = Conv(gw, c2, 1, 1, act=False if self.residual else act)
        self.act = act_module(act) if self.residual else nn.Identity()

    def forward(self, x):
        y = self.conv3(self.avd_last(self.conv2(self.avd_first(self.conv1(x)))))
        return self.act(add(y, self.shortcut(x))) if self.residual else y


@register(repeats=True)
class C3_ResNeSt(C3Blocks):
    """C3 with :class:`ResNeStBottleneck` blocks, drop-in for ``C3``: ``[-1, 3, C3_ResNeSt, [128]]``.
    ``[B, c1, H, W] -> [B, c2, H, W]``. ``g`` must be 1 (ResNeSt's grouping is ``cardinality``); ``reduction``
    is the split-attention reduction factor (reference 4)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 radix: int = 2, cardinality: int = 1, reduction: int = 4):
        _args.check(_args.is_int(g) and g == 1, 'C3_ResNeSt', 'g', g,
                    'the int 1 (set the split-attention groups with cardinality)')
        super().__init__('C3_ResNeSt', c1, c2, n, shortcut, e,
                         lambda c: ResNeStBottleneck(c, c, shortcut, 1.0, 1, radix, cardinality, reduction=reduction))


@register(out=fixed)
class ResNeStStage(ResNetStage):
    """A stage of timm's ``resnest50d`` (``layer1`` .. ``layer4``): ``n`` :class:`ResNeStBottleneck` blocks with
    ReLU, ``e=0.25`` (group width ``c2 / 4`` at ``bottleneck_width=64``), split attention with ``radix`` 2 and
    ``cardinality`` 1, avd after the split attention (``avd_first=False``) in the strided first block only; the
    first block's shortcut is avg-pool + 1x1 (ResNet-D).

    YAML ``[-1, 1, ResNeStStage, [c2, n, stride]]``, e.g. ``[-1, 1, ResNeStStage, [512, 4, 2]]``;
    ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, stride: int = 1, radix: int = 2, cardinality: int = 1,
                 bottleneck_width: int = 64):
        super().__init__('ResNeStStage', c1, c2, n, stride,
                         lambda a, b, s: ResNeStBottleneck(a, b, True, 0.25, s, radix, cardinality, bottleneck_width,
                                                           True, False, act=nn.ReLU()))


# ----------------------------------------------------------------------- timm checkpoints (extensions/pretrained.py)
# The remap of timm's resnest50d weights into ResNeStStage, beside the block as timm keeps a model's checkpoint
# filter (pretrained_filter_fn) beside the model; pretrained.py finds it through the registry. Keys are relative to
# block j of stage k: timm ``layer<k>.<j>.<name>`` -> ``model.<k>.<j>.<ours>``, longest matching prefix first.
ResNeStStage.timm_block = 'split-attention bottleneck (ResNeSt)'  # the block as pretrained.py's messages name it
ResNeStStage.timm_marker = ('conv2.fc1.',)  # key prefixes that tell this block apart in a timm state dict
ResNeStStage.timm_keys = {
    'conv1.': 'conv1.conv.', 'bn1.': 'conv1.bn.', 'conv2.conv.': 'conv2.conv.conv.', 'conv2.bn0.': 'conv2.conv.bn.',
    'conv2.fc1.': 'conv2.fc1.conv.', 'conv2.bn1.': 'conv2.fc1.bn.', 'conv2.fc2.': 'conv2.fc2.', 'conv3.': 'conv3.conv.',
    'bn3.': 'conv3.bn.', 'downsample.1.': 'shortcut.conv.conv.', 'downsample.2.': 'shortcut.conv.bn.'}
