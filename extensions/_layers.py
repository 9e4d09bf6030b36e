"""Parts shared by the block families: bias conv, drop path, squeeze-excitation, the ResNet-D shortcut and its
rule, the C3 base the C3 variants build on, and the stage base of the pretrained backbones (its BN keeps timm's
eps; a frozen stage keeps its ImageNet statistics).

Conventions (Ultralytics style): channel arguments first, ``c1`` input and ``c2`` output channels; the hidden
width of a bottleneck is ``c_ = int(c2 * e)`` (``e=1.0`` inside a C3); ``act=True`` means YOLOv5's default
activation (``Conv.default_act``, SiLU unless a YAML sets ``activation:``), ``act=False`` none, and a module
(e.g. ``nn.ReLU()``) that module. Every conv+BN pair is a YOLOv5 :class:`Conv` (or :class:`BiasConv`), so
``Model.fuse()`` folds all of them; plain ``nn.Conv2d`` only where the reference has no BN.

Shortcuts, for all three bottlenecks: identity when ``shortcut and c1 == c2 and stride == 1``; the ResNet-D
projection (:class:`DownsampleAvg`) when ``shortcut`` and the shape changes; no residual when
``shortcut=False`` (then the block is ``act(branch)``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from models.common import C3, Conv

from . import _args


def inference() -> bool:
    """True when no autograd graph is recorded and no ONNX graph traced: in-place arithmetic on a block's own
    temporaries is then safe and saves a buffer (an inplace activation's backward may need the tensor)."""
    return not torch.is_grad_enabled() and not torch.onnx.is_in_onnx_export()


def add(y, shortcut):
    """``y + shortcut`` written into ``y``, a block's own branch output that no backward reads (the output of
    BN or of a fused conv), in training too, as timm's ``x += shortcut``: one buffer and one write less. Out of
    place only while an ONNX graph is traced (the exported graph stays as it was)."""
    return y + shortcut if torch.onnx.is_in_onnx_export() else y.add_(shortcut)


def act_module(act) -> nn.Module:
    """YOLOv5 ``Conv``'s activation rule: True -> ``Conv.default_act``, a module -> itself, else Identity."""
    return Conv.default_act if act is True else act if isinstance(act, nn.Module) else nn.Identity()


def inplace_relu(act):
    """A block's activation argument with a plain ``nn.ReLU`` made in-place (as timm's blocks): every activation
    of a block acts on a tensor the block just made and no backward reads again (ReLU's backward reads its
    output), so this saves one buffer per activation and changes no value. Anything else is returned as is."""
    return nn.ReLU(inplace=True) if type(act) is nn.ReLU and not act.inplace else act


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
        _args.ratio('DropPath', 'p', p, zero_ok=True)
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
        _args.ratio('SqueezeExcite', 'se_ratio', se_ratio)
        rd = max(1, int(c * se_ratio))
        self.fc1 = nn.Conv2d(c, rd, 1, bias=True)
        self.act = nn.ReLU(inplace=True)  # on fc1's fresh output; its backward reads the result
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
        _args.check(_args.is_int(stride) and stride in (1, 2), 'DownsampleAvg', 'stride', stride, '1 or 2')
        self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False) if stride > 1 \
            else nn.Identity()
        self.conv = Conv(c1, c2, 1, 1, act=False)

    def forward(self, x):
        return self.conv(self.pool(x))


def residual_shortcut(c1: int, c2: int, stride: int, enabled: bool):
    """(residual?, shortcut module): identity, ResNet-D projection, or no residual at all."""
    if not enabled:
        return False, None
    if c1 == c2 and stride == 1:
        return True, nn.Identity()
    return True, DownsampleAvg(c1, c2, stride)


class C3Blocks(C3):
    """CSP bottleneck of YOLOv5 (``C3``: cv1, cv2, cv3 and ``m``) whose ``m`` holds ``n`` family blocks of width
    ``c_ = int(c2 * e)`` (each with ``c1 == c2 == c_``, stride 1, ``e=1.0``). Forward is ``C3.forward``."""

    def __init__(self, name: str, c1, c2, n, shortcut, e, block):
        nn.Module.__init__(self)  # C3.__init__ would build (and then discard) plain Bottlenecks
        c_ = _args.c3(name, c1, c2, n, shortcut, e)  # hidden channels
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(block(c_) for _ in range(n)))


# ------------------------------------------------------------------------------- layers of pretrained backbones
class PretrainedBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` of the layers that take ImageNet weights (:class:`ResNetStage` subclasses and
    ``ResNetStem``): ``eps=1e-5``, the value the timm weights were trained and evaluated with.

    YOLOv5's ``initialize_weights`` (run by every ``Model()``: train.py, val.py, a checkpoint's first build)
    sets ``eps=1e-3`` on each module whose type *is* ``nn.BatchNorm2d``; a subclass keeps its own. With 1e-3 a
    pretrained channel whose running variance is 0.01 would be scaled by 0.95 instead of 1.0. Momentum is
    YOLOv5's 0.03, the rate its other BN layers use while fine-tuning; it does not enter inference."""

    def __init__(self, c: int, eps: float = 1e-5, momentum: float = 0.03):
        super().__init__(c, eps=eps, momentum=momentum)


def pretrained_bn(module: nn.Module) -> nn.Module:
    """Replace every plain ``nn.BatchNorm2d`` inside ``module`` (freshly built, so no statistics are lost) by a
    :class:`PretrainedBatchNorm2d` of the same width. Returns ``module``."""
    for m in list(module.modules()):
        for name, child in list(m.named_children()):
            if type(child) is nn.BatchNorm2d:
                setattr(m, name, PretrainedBatchNorm2d(child.num_features))
    return module


class FrozenStatsMixin:
    """``train(True)`` leaves the BatchNorm layers of a layer in eval mode when none of its parameters requires a
    gradient, i.e. when ``train.py --freeze`` froze it: a frozen pretrained stage then keeps its ImageNet
    running statistics instead of re-estimating them from detection batches (as mmdetection's
    ``frozen_stages`` + ``norm_eval``). Layers that train behave as any YOLOv5 layer."""

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and not any(p.requires_grad for p in self.parameters()):
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


class ResNetStage(FrozenStatsMixin, nn.Sequential):
    """One stage of a ResNet-50-style backbone as timm builds it (``layer1`` .. ``layer4``): ``n`` blocks, the
    first ``c1 -> c2`` with ``stride``, the others ``c2 -> c2`` with stride 1.

    ``[B, c1, H, W] -> [B, c2, ceil(H/stride), ceil(W/stride)]``. A ``Sequential`` of the blocks, so block ``j``'s
    parameters are ``<layer>.<j>.<name>`` as timm's ``layer<k>.<j>.<name>``. Subclasses (one per family) give
    ``block(c_in, c_out, stride)``; every BN is a :class:`PretrainedBatchNorm2d`, every activation ReLU (what the
    ImageNet weights were trained with). The depth ``n`` is an explicit argument, not the YAML repeat column
    (``depth_multiple`` would scale that); the output channels are exact (``register(out=fixed)``).
    """

    def __init__(self, name: str, c1: int, c2: int, n: int, stride: int, block):
        _args.int_in(name, 'n', n, 1, 1024)
        _args.check(_args.is_int(stride) and stride in (1, 2), name, 'stride', stride, '1 or 2')
        super().__init__(*(block(c1 if j == 0 else c2, c2, stride if j == 0 else 1) for j in range(n)))
        pretrained_bn(self)
