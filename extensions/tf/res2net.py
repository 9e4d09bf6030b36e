"""TensorFlow twins of the Res2Net blocks (``extensions/res2net.py``), NHWC, built from the PyTorch block ``w``."""

from __future__ import annotations

import tensorflow as tf

from .layers import TFC3Blocks, TFConv, TFResNetStage, Twin, activation, twin

__all__ = ['TFBottle2neck', 'TFC3_Res2Block', 'TFRes2NetStage']


class TFBottle2neck(Twin):
    """:class:`extensions.res2net.Bottle2neck`: 1x1 conv, split into ``scale`` parts, the hierarchical 3x3 convs
    (``y_i = K_i(y_{i-1} + x_i)``, or ``K_i(x_i)`` in a stage block), the last part passed through (or average
    pooled with zero padding counted, stage), concat, 1x1 conv, shortcut, activation."""

    def setup(self, w):
        self.scale, self.stage, self.residual = w.scale, w.stage, w.residual
        self.conv1 = TFConv(w=w.conv1)
        self.convs = [TFConv(w=c) for c in w.convs]
        self.pool = twin(w.pool)
        self.shortcut = twin(w.shortcut) if w.residual else None
        self.conv3 = TFConv(w=w.conv3)
        self.act = activation(w.act, 'Bottle2neck')

    def call(self, x):
        xs = tf.split(self.conv1(x), self.scale, axis=-1)
        ys, y = [], None
        for i, conv in enumerate(self.convs):
            y = conv(xs[i] if i == 0 or self.stage else y + xs[i])
            ys.append(y)
        ys.append(self.pool(xs[-1]))
        y = self.conv3(tf.concat(ys, axis=-1))
        return self.act(y + self.shortcut(x)) if self.residual else y


class TFC3_Res2Block(TFC3Blocks):
    """:class:`extensions.res2net.C3_Res2Block`: YOLOv5's C3 frame around :class:`TFBottle2neck` twins."""


class TFRes2NetStage(TFResNetStage):
    """:class:`extensions.res2net.Res2NetStage`: a stage of ``res2net50d``, its :class:`TFBottle2neck` twins in
    order."""
