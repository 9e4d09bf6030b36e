"""SE-ResNet-D blocks for YOLOv5, as in ResNet-RS: the SE bottleneck with the ResNet-D shortcut, a C3 built from
it, the deep stem and the ResNet-D stage transition; and, for ImageNet-pretrained backbones, timm's ResNet stem
(``ResNetStem``, shared by the three families' ``*50d`` models) and the ResNet-RS-50 stage.

Bello et al., "Revisiting ResNets: Improved Training and Scaling Strategies", NeurIPS 2021
(https://arxiv.org/abs/2103.07579; TF ``resnet_rs``, timm ``resnetrs``); Hu et al., "Squeeze-and-Excitation
Networks", CVPR 2018; He et al., "Bag of Tricks for Image Classification", CVPR 2019 (ResNet-C/D).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from models.common import Conv

from . import _args
from ._layers import (
    C3Blocks,
    DropPath,
    FrozenStatsMixin,
    ResNetStage,
    SqueezeExcite,
    act_module,
    inference,
    inplace_relu,
    pretrained_bn,
    residual_shortcut,
)
from .registry import fixed, register

__all__ = ['SEResNetDBottleneck', 'C3_SEResNetD', 'DeepStem', 'ResNetDDown', 'ResNetStem', 'SEResNetDStage']


@register()
class SEResNetDBottleneck(nn.Module):
    """SE-ResNet-D bottleneck. ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``.

    1x1 ``c1 -> c_`` (BN, act), 3x3 ``c_ -> c_`` carrying the stride and groups ``g`` (BN, act), 1x1
    ``c_ -> c2`` (BN, no act), :class:`SqueezeExcite` on ``c2`` channels (``max(1, int(c2 * se_ratio))``
    reduced), :class:`DropPath` on this residual branch only (never the shortcut), add the shortcut (identity
    or ResNet-D avg-pool projection), act.

    Deviations: the last BN's gamma is not zero-initialised (YOLOv5 initialises every block the same way);
    the drop-path rate is a per-block constant (``C3_SEResNetD`` uses one rate for its blocks, as TF's
    per-group schedule does).
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 1.0, stride: int = 1,
                 se_ratio: float = 0.25, drop_path: float = 0.0, act=True, g: int = 1):
        super().__init__()
        c_ = _args.se_resnetd_bottleneck(c1, c2, shortcut, e, stride, se_ratio, drop_path, g)  # hidden channels
        act = inplace_relu(act)
        self.conv1 = Conv(c1, c_, 1, 1, act=act)
        self.conv2 = Conv(c_, c_, 3, stride, g=g, act=act)
        self.conv3 = Conv(c_, c2, 1, 1, act=False)
        self.se = SqueezeExcite(c2, se_ratio)
        self.drop_path = DropPath(drop_path)
        self.residual, self.shortcut = residual_shortcut(c1, c2, stride, shortcut)
        self.act = act_module(act)

    def forward(self, x):
        y = self.conv3(self.conv2(self.conv1(x)))
        gate = self.se.gate(y)
        if not self.residual:
            return self.act(y * gate)
        if self.training and self.drop_path.p > 0.0:
            return self.act(self.drop_path(y * gate) + self.shortcut(x))
        if inference() or torch.onnx.is_in_onnx_export():
            return self.act(torch.addcmul(self.shortcut(x), y, gate))  # shortcut + y * gate, one kernel
        return self.act((y * gate).add_(self.shortcut(x)))  # training: addcmul's backward multiplies once more


@register(repeats=True)
class C3_SEResNetD(C3Blocks):
    """C3 with :class:`SEResNetDBottleneck` blocks, drop-in for ``C3``: ``[-1, 3, C3_SEResNetD, [128]]``.
    ``[B, c1, H, W] -> [B, c2, H, W]``; ``g`` groups the 3x3 convs; every block uses the same ``drop_path``."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 se_ratio: float = 0.25, drop_path: float = 0.0):
        super().__init__('C3_SEResNetD', c1, c2, n, shortcut, e,
                         lambda c: SEResNetDBottleneck(c, c, shortcut, 1.0, 1, se_ratio, drop_path, g=g))


@register()
class DeepStem(nn.Module):
    """ResNet-C / ResNet-RS deep stem: three 3x3 convs (BN, act each), the first with stride ``s``.

    ``[B, c1, H, W] -> [B, c2, ceil(H/s), ceil(W/s)]``, widths ``c_, c_, c2`` with ``c_ = c2 // 2`` by default
    (ResNet-RS: 32, 32, 64). Replaces YOLOv5's 6x6 stride-2 stem conv (layer 0). ResNet-RS's stride-2 3x3 conv
    that replaces the max-pool is YOLOv5's next layer (the P2/4 downsample), so it is not part of this module.
    """

    def __init__(self, c1: int, c2: int, s: int = 2, c_: int | None = None, act=True):
        super().__init__()
        c_ = _args.deep_stem(c1, c2, s, c_)  # width of the first two convs
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
        # checked under this class's name and argument names (s, not stride), so errors never name the base class
        _args.se_resnetd_bottleneck(c1, c2, True, e, s, se_ratio, 0.0, 1, 'ResNetDDown', 's')
        super().__init__(c1, c2, True, e, s, se_ratio, 0.0, act)


@register(out=fixed)
class ResNetStem(FrozenStatsMixin, nn.Module):
    """The deep stem of timm's ``res2net50d``, ``resnest50d`` and ``resnetrs50`` (ResNet-C/D), stride 4, ReLU.

    ``[B, c1, H, W] -> [B, c2, ceil(H/4), ceil(W/4)]`` (for even H, W). Three 3x3 convs ``c1 -> c_ -> c_ -> c2``,
    BN and ReLU each, the first with stride 2 (timm ``conv1.0..6``, ``bn1``), then timm's stem pool: ``MaxPool2d(3,
    2, 1)``, or with ``replace_pool=True`` (ResNet-RS) a 3x3 stride-2 conv, BN, ReLU (timm ``maxpool.0/1``).

    Input normalisation: the buffer ``mean`` (shape ``[1, c1, 1, 1]``, zeros unless set) is subtracted from the
    input before the first, zero-padded conv; ``scripts/init_backbone.py`` sets it to the ImageNet mean and
    divides ``conv1``'s weights by the std per input channel. Padding a mean-subtracted input with zeros is what
    the pretrained network saw (``(x - mean) / std``, then zero padding), so the fold is exact at the borders
    too, where a fold into a bias would not be: a bias is also added where the window covers padding.

    YAML ``[-1, 1, ResNetStem, [64, 32, False]]`` (``c2``, ``c_``, ``replace_pool``); it replaces YOLOv5's 6x6
    stem conv and its P2/4 downsample. Unlike :class:`DeepStem` (stride 2, YOLOv5's activation) it is the
    pretrained network's stem exactly; every BN is a :class:`~extensions._layers.PretrainedBatchNorm2d`.
    """

    def __init__(self, c1: int, c2: int = 64, c_: int = 32, replace_pool: bool = False):
        super().__init__()
        _args.common('ResNetStem', c1, c2, 1.0, 2, 's')
        _args.int_in('ResNetStem', 'c_', c_)
        _args.flag('ResNetStem', 'replace_pool', replace_pool)
        relu = nn.ReLU(inplace=True)  # as timm's stem; each acts on its BN's fresh output
        self.conv1 = Conv(c1, c_, 3, 2, act=relu)
        self.conv2 = Conv(c_, c_, 3, 1, act=relu)
        self.conv3 = Conv(c_, c2, 3, 1, act=relu)
        self.pool = Conv(c2, c2, 3, 2, act=relu) if replace_pool else nn.MaxPool2d(3, 2, 1)
        self.register_buffer('mean', torch.zeros(1, c1, 1, 1))
        pretrained_bn(self)

    def forward(self, x):
        return self.pool(self.conv3(self.conv2(self.conv1(x - self.mean))))


@register(out=fixed)
class SEResNetDStage(ResNetStage):
    """A stage of timm's ``resnetrs50`` (``layer1`` .. ``layer4``): ``n`` :class:`SEResNetDBottleneck` blocks with
    ReLU, ``e=0.25`` (hidden ``c2 / 4``), squeeze-excitation ratio ``se_ratio`` (0.25: ``c2 / 4`` reduced, equal to
    timm's rounding for these widths), no drop path; the first block carries the stride in its 3x3 conv and has
    the ResNet-D shortcut (avg-pool + 1x1).

    YAML ``[-1, 1, SEResNetDStage, [c2, n, stride]]``, e.g. ``[-1, 1, SEResNetDStage, [512, 4, 2]]``;
    ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, stride: int = 1, se_ratio: float = 0.25):
        super().__init__('SEResNetDStage', c1, c2, n, stride,
                         lambda a, b, s: SEResNetDBottleneck(a, b, True, 0.25, s, se_ratio, act=nn.ReLU()))


# ----------------------------------------------------------------------- timm checkpoints (extensions/pretrained.py)
# The remaps of timm's resnetrs50 weights (the stem also res2net50d's and resnest50d's), beside the blocks as timm
# keeps a model's checkpoint filter (pretrained_filter_fn) beside the model; pretrained.py finds them through the
# registry. Longest matching prefix first.
# timm stem -> layer 0: conv1 = Sequential(conv, bn, relu, conv, bn, relu, conv), then bn1, act1, and maxpool (a
# max-pool, or with replace_stem_pool Sequential(conv, bn, relu)).
ResNetStem.timm_keys = {
    'conv1.0.': 'conv1.conv.', 'conv1.1.': 'conv1.bn.', 'conv1.3.': 'conv2.conv.', 'conv1.4.': 'conv2.bn.',
    'conv1.6.': 'conv3.conv.', 'bn1.': 'conv3.bn.', 'maxpool.0.': 'pool.conv.', 'maxpool.1.': 'pool.bn.'}
# timm block j of stage k -> block j of layer k: layer<k>.<j>.<name> -> model.<k>.<j>.<ours>
SEResNetDStage.timm_block = 'SE bottleneck (ResNet-RS / SE-ResNet)'  # the block as pretrained.py's messages name it
SEResNetDStage.timm_marker = ('se.', 'conv3.')  # key prefixes that tell this block apart (SE basic blocks: no conv3)
SEResNetDStage.timm_keys = {
    'conv1.': 'conv1.conv.', 'bn1.': 'conv1.bn.', 'conv2.': 'conv2.conv.', 'bn2.': 'conv2.bn.', 'conv3.': 'conv3.conv.',
    'bn3.': 'conv3.bn.', 'se.fc1.': 'se.fc1.', 'se.fc2.': 'se.fc2.', 'downsample.1.': 'shortcut.conv.conv.',
    'downsample.2.': 'shortcut.conv.bn.'}
