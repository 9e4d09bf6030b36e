"""Res2Net blocks for YOLOv5: the multi-scale bottleneck and a C3 built from it.

Gao et al., "Res2Net: A New Multi-scale Backbone Architecture", TPAMI 2021 (https://arxiv.org/abs/1904.01169).
Written from the paper and timm's ``res2net.py``; no code of the original (non-commercial) repository.

Speed notes (same math): one 1x1 conv produces all splits and ``torch.split`` returns views of it; in an ONNX
export the same conv is written as one conv per split, which onnxruntime runs without layout reorders; at
inference the hierarchical and residual adds write into the block's own temporaries.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from models.common import Conv

from . import _args
from ._layers import C3Blocks, ResNetStage, act_module, add, inference, inplace_relu, residual_shortcut
from .registry import fixed, register

__all__ = ['Bottle2neck', 'C3_Res2Block', 'Res2NetStage']


def conv_chunks(m: Conv, x, n: int) -> list:
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


@register()
class Bottle2neck(nn.Module):
    """Res2Net bottleneck. ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``.

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
        width = _args.bottle2neck(c1, c2, shortcut, e, stride, base_width, scale, stage, g)
        act = inplace_relu(act)
        self.width, self.scale = width, scale
        self.stage = bool(stride > 1 or c1 != c2) if stage is None else stage
        self.conv1 = Conv(c1, width * scale, 1, 1, act=act)
        self.convs = nn.ModuleList(Conv(width, width, 3, stride, g=g, act=act) for _ in range(scale - 1))
        self.pool = nn.AvgPool2d(3, stride, 1) if self.stage else nn.Identity()  # count_include_pad=True (ref.)
        self.residual, self.shortcut = residual_shortcut(c1, c2, stride, shortcut)
        self.conv3 = Conv(width * scale, c2, 1, 1, act=False if self.residual else act)
        self.act = act_module(act) if self.residual else nn.Identity()

    def forward(self, x):
        if torch.onnx.is_in_onnx_export() and not self.training:
            xs = conv_chunks(self.conv1, x, self.scale)  # same values; no Split node in the ONNX graph
        else:
            xs = self.conv1(x).split(self.width, 1)  # views of one tensor: no copy
        inplace = inference()  # x_i is not read again after y_{i-1} + x_i: add into its slot, no new buffer
        ys, y = [], None
        for i, conv in enumerate(self.convs):
            y = conv(xs[i] if (i == 0 or self.stage) else xs[i].add_(y) if inplace else y + xs[i])
            ys.append(y)
        ys.append(self.pool(xs[-1]))
        y = self.conv3(torch.cat(ys, 1))
        return self.act(add(y, self.shortcut(x))) if self.residual else y



@register(repeats=True)
class C3_Res2Block(C3Blocks):
    """C3 with :class:`Bottle2neck` blocks (normal, not stage), drop-in for ``C3`` in a YAML:
    ``[-1, 3, C3_Res2Block, [128]]``, ``[-1, 3, C3_Res2Block, [512, False, 1, 0.5, 26, 4]]``.
    ``[B, c1, H, W] -> [B, c2, H, W]``; ``g`` groups the 3x3 convs of each branch."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 base_width: int = 26, scale: int = 4):
        super().__init__('C3_Res2Block', c1, c2, n, shortcut, e,
                         lambda c: Bottle2neck(c, c, shortcut, 1.0, 1, base_width, scale, stage=False, g=g))


@register(out=fixed)
class Res2NetStage(ResNetStage):
    """A stage of timm's ``res2net50d`` (``layer1`` .. ``layer4``): ``n`` :class:`Bottle2neck` blocks with ReLU,
    ``e=0.25`` (``planes = c2 / 4``, width ``floor(planes * base_width / 64)``), ``scale`` splits. The first block
    is a stage block (it has a projection shortcut: avg-pool + 1x1, ResNet-D) and carries the stride; in
    ``layer1`` (stride 1, 64 -> 256) its last split goes through ``AvgPool2d(3, 1, 1)``, as timm.

    YAML ``[-1, 1, Res2NetStage, [c2, n, stride]]``, e.g. ``[-1, 1, Res2NetStage, [512, 4, 2]]``;
    ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, stride: int = 1, base_width: int = 26, scale: int = 4):
        super().__init__('Res2NetStage', c1, c2, n, stride,
                         lambda a, b, s: Bottle2neck(a, b, True, 0.25, s, base_width, scale, act=nn.ReLU()))


# ----------------------------------------------------------------------- timm checkpoints (extensions/pretrained.py)
# The remap of timm's res2net50d weights into Res2NetStage, beside the block as timm keeps a model's checkpoint
# filter (pretrained_filter_fn) beside the model; pretrained.py finds it through the registry. Keys are relative to
# block j of stage k: timm ``layer<k>.<j>.<name>`` -> ``model.<k>.<j>.<ours>``, longest matching prefix first.
Res2NetStage.timm_block = 'Bottle2neck (Res2Net)'  # the block as pretrained.py's messages name it
Res2NetStage.timm_marker = ('convs.',)  # key prefixes that tell this block apart in a timm state dict
Res2NetStage.timm_keys = {
    'conv1.': 'conv1.conv.', 'bn1.': 'conv1.bn.', 'conv3.': 'conv3.conv.', 'bn3.': 'conv3.bn.',
    **{f'convs.{i}.': f'convs.{i}.conv.' for i in range(64)}, **{f'bns.{i}.': f'convs.{i}.bn.' for i in range(64)},
    'downsample.1.': 'shortcut.conv.conv.', 'downsample.2.': 'shortcut.conv.bn.'}  # ResNet-D: avg-pool, conv, bn
