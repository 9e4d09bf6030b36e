"""Every extension block, importable from one public path: ``from extensions.blocks import C3_Res2Block``.

The blocks live one family per module (:mod:`extensions.res2net`, :mod:`extensions.resnest`,
:mod:`extensions.resnet_rs`) with their shared parts in :mod:`extensions._layers`. Checkpoints saved while all
blocks lived in this module pickle them as ``extensions.blocks.<Class>``; these names keep them loading.
"""

from ._layers import BiasConv, DownsampleAvg, DropPath, PretrainedBatchNorm2d, SqueezeExcite
from .res2net import Bottle2neck, C3_Res2Block, Res2NetStage
from .resnest import C3_ResNeSt, RadixSoftmax, ResNeStBottleneck, ResNeStStage, SplitAttention
from .resnet_rs import C3_SEResNetD, DeepStem, ResNetDDown, ResNetStem, SEResNetDBottleneck, SEResNetDStage

__all__ = [
    'BiasConv', 'DropPath', 'SqueezeExcite', 'DownsampleAvg', 'Bottle2neck', 'RadixSoftmax', 'SplitAttention',
    'ResNeStBottleneck', 'SEResNetDBottleneck', 'DeepStem', 'ResNetDDown', 'C3_Res2Block', 'C3_ResNeSt',
    'C3_SEResNetD', 'PretrainedBatchNorm2d', 'ResNetStem', 'Res2NetStage', 'ResNeStStage', 'SEResNetDStage']
