"""What a block family builds on, from one public module: the shared layers, the argument checks and the registry.

A family module (README "Adding a block family") imports from here, never from the private ``_layers``/``_args``::

    from models.common import Conv

    from extensions.layers import C3Blocks, check, is_int, register

* layers: :class:`C3Blocks` (the C3 frame of the C3 variants), :class:`ResNetStage` (a stage of a pretrained
  ResNet-style backbone), :class:`BiasConv`, :class:`DropPath`, :class:`SqueezeExcite`, :class:`DownsampleAvg`
  (the ResNet-D shortcut), :func:`residual_shortcut` (the shortcut rule), :func:`act_module` (YOLOv5's ``act``
  argument), :func:`add` and :func:`inference` (in-place adds at inference), :class:`PretrainedBatchNorm2d`,
  :func:`pretrained_bn` and :class:`FrozenStatsMixin` (layers that take ImageNet weights);
* argument checks, each raising ``ValueError("<Block>: <arg> must be <allowed>, got <value>")``: :func:`check`,
  :func:`flag`, :func:`int_in`, :func:`ratio`, :func:`common` (c1, c2, e and stride; returns ``int(c2 * e)``),
  :func:`is_int`, :func:`is_real` and the bound ``MAX_WIDTH``;
* the registry: :func:`register` with the channel rules :func:`scaled` (YOLOv5's), :func:`fixed` and :func:`same`,
  and :data:`NO_TF_TWIN` for a block without a TensorFlow twin.
"""

from ._args import MAX_WIDTH, check, common, flag, int_in, is_int, is_real, ratio
from ._layers import (
    BiasConv,
    C3Blocks,
    DownsampleAvg,
    DropPath,
    FrozenStatsMixin,
    PretrainedBatchNorm2d,
    ResNetStage,
    SqueezeExcite,
    act_module,
    add,
    inference,
    pretrained_bn,
    residual_shortcut,
)
from .registry import NO_TF_TWIN, fixed, register, same, scaled

__all__ = [
    'C3Blocks', 'ResNetStage', 'BiasConv', 'DropPath', 'SqueezeExcite', 'DownsampleAvg', 'residual_shortcut',
    'act_module', 'add', 'inference', 'PretrainedBatchNorm2d', 'pretrained_bn', 'FrozenStatsMixin',
    'check', 'flag', 'int_in', 'ratio', 'common', 'is_int', 'is_real', 'MAX_WIDTH',
    'register', 'scaled', 'fixed', 'same', 'NO_TF_TWIN']
