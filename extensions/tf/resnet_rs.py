"""TensorFlow twins of the SE-ResNet-D blocks (``extensions/resnet_rs.py``), NHWC, built from the PyTorch block
``w``. Drop path is the identity at inference, so the twins leave it out."""

from __future__ import annotations

import tensorflow as tf
from models.common import Conv

from .layers import TFC3Blocks, TFConv, TFResNetStage, TFSqueezeExcite, Twin, activation, twin

__all__ = ['TFSEResNetDBottleneck', 'TFC3_SEResNetD', 'TFDeepStem', 'TFResNetDDown', 'TFSEResNetDStage', 'TFResNetStem']


class TFSEResNetDBottleneck(Twin):
    """:class:`extensions.resnet_rs.SEResNetDBottleneck`: 1x1, 3x3 (stride, groups), 1x1 convs, squeeze-excite
    gate, shortcut (identity or ResNet-D average pool + 1x1), activation."""

    def setup(self, w):
        self.residual = w.residual
        self.conv1, self.conv2, self.conv3 = TFConv(w=w.conv1), TFConv(w=w.conv2), TFConv(w=w.conv3)
        self.se = TFSqueezeExcite(w=w.se)
        self.shortcut = twin(w.shortcut) if w.residual else None
        self.act = activation(w.act, type(w).__name__)

    def call(self, x):
        y = self.conv3(self.conv2(self.conv1(x)))
        y = y * self.se.gate(y)
        return self.act(y + self.shortcut(x) if self.residual else y)


class TFC3_SEResNetD(TFC3Blocks):
    """:class:`extensions.resnet_rs.C3_SEResNetD`: YOLOv5's C3 frame around :class:`TFSEResNetDBottleneck` twins."""


class TFDeepStem(Twin):
    """:class:`extensions.resnet_rs.DeepStem`: three 3x3 convs, the first strided."""

    def setup(self, w):
        self.conv1, self.conv2, self.conv3 = TFConv(w=w.conv1), TFConv(w=w.conv2), TFConv(w=w.conv3)

    def call(self, x):
        return self.conv3(self.conv2(self.conv1(x)))


class TFResNetDDown(TFSEResNetDBottleneck):
    """:class:`extensions.resnet_rs.ResNetDDown`: the stride-``s`` SE-ResNet-D bottleneck with the ResNet-D
    shortcut."""


class TFSEResNetDStage(TFResNetStage):
    """:class:`extensions.resnet_rs.SEResNetDStage`: its :class:`TFSEResNetDBottleneck` twins in order."""


class TFResNetStem(Twin):
    """:class:`extensions.resnet_rs.ResNetStem`: subtract the ``mean`` buffer, three 3x3 convs (the first strided),
    then the stem pool: ``MaxPool2d(3, 2, 1)`` or a strided 3x3 conv. The max pool reads ReLU outputs (>= 0), so
    padding them with zeros, as here, gives PyTorch's result (which pads with -inf): every window holds a real
    value >= 0."""

    def setup(self, w):
        self.mean = tf.constant(w.mean.detach().permute(0, 2, 3, 1).numpy())  # [1, 1, 1, c] for NHWC
        self.conv1, self.conv2, self.conv3 = TFConv(w=w.conv1), TFConv(w=w.conv2), TFConv(w=w.conv3)
        self.pool = TFConv(w=w.pool) if isinstance(w.pool, Conv) else None
        if self.pool is None:
            p = w.pool
            if (p.kernel_size, p.stride, p.padding, p.dilation, p.ceil_mode) != (3, 2, 1, 1, False):
                raise NotImplementedError(f'TFResNetStem: stem pool {p} is not supported (MaxPool2d(3, 2, 1) only)')

    def call(self, x):
        x = self.conv3(self.conv2(self.conv1(x - self.mean)))
        if self.pool is not None:
            return self.pool(x)
        return tf.nn.max_pool2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 2, 'VALID')
