"""TensorFlow twins of the SE-ResNet-D blocks (``extensions/resnet_rs.py``), NHWC, built from the PyTorch block
``w``. Drop path is the identity at inference, so the twins leave it out."""

from __future__ import annotations

import tensorflow as tf

from .layers import TFC3Blocks, TFConv, TFResNetStage, TFSqueezeExcite, Twin, activation, twin

__all__ = ['TFSEResNetDBottleneck', 'TFC3_SEResNetD', 'TFDeepStem', 'TFResNetDDown', 'TFSEResNetDStage',
           'TFResNetStem']


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
    """:class:`extensions.resnet_rs.SEResNetDStage`: a stage of ``resnetrs50``, its :class:`TFSEResNetDBottleneck`
    twins in order."""


class TFResNetStem(Twin):
    """:class:`extensions.resnet_rs.ResNetStem`: subtract the ``mean`` buffer (before the zero-padded first conv,
    as in PyTorch), three 3x3 convs, then the stem pool (``MaxPool2d(3, 2, 1)`` or a stride-2 conv)."""

    def setup(self, w):
        self.mean = tf.constant(w.mean.detach().cpu().float().numpy().transpose(0, 2, 3, 1))  # [1, 1, 1, c1]
        self.conv1, self.conv2, self.conv3 = TFConv(w=w.conv1), TFConv(w=w.conv2), TFConv(w=w.conv3)
        self.pool = twin(w.pool)

    def call(self, x):
        return self.pool(self.conv3(self.conv2(self.conv1(x - self.mean))))
