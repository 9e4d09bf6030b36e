"""Helpers shared by the block, property and YAML tests."""

import torch
import torch.nn as nn
from models.common import Conv, DWConv
from utils.torch_utils import fuse_conv_and_bn


def randomize_bn(module: nn.Module, seed: int = 1, deep: bool = False) -> nn.Module:
    """Non-trivial BN affine parameters and running statistics (a fresh BN is the identity in eval).

    ``deep=True`` draws from narrower ranges, for whole models whose output multiplies 100+ BN scales.
    """
    g = torch.Generator().manual_seed(seed)
    w_lo, w_span, b_sd, m_sd, v_lo, v_span = (0.8, 0.4, 0.1, 0.1, 0.8, 0.4) if deep else (0.5, 1.0, 0.2, 0.2, 0.5, 1.5)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) * w_span + w_lo)
                m.bias.copy_(torch.randn(n, generator=g) * b_sd)
                m.running_mean.copy_(torch.randn(n, generator=g) * m_sd)
                m.running_var.copy_(torch.rand(n, generator=g) * v_span + v_lo)
    return module


def fuse(module: nn.Module) -> nn.Module:
    """Exactly YOLOv5's ``BaseModel.fuse()`` loop (models/yolo.py), applied to a bare block."""
    for m in module.modules():
        if isinstance(m, (Conv, DWConv)) and hasattr(m, 'bn'):
            m.conv = fuse_conv_and_bn(m.conv, m.bn)
            delattr(m, 'bn')
            m.forward = m.forward_fuse
    return module
