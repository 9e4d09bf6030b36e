"""TensorFlow twins of the ResNeSt blocks (``extensions/resnest.py``), NHWC, built from the PyTorch block ``w``."""

from __future__ import annotations

import tensorflow as tf

from .layers import TFC3Blocks, TFConv, TFResNetStage, Twin, activation, mean_hw, twin

__all__ = ['TFRadixSoftmax', 'TFSplitAttention', 'TFResNeStBottleneck', 'TFC3_ResNeSt', 'TFResNeStStage']


class TFRadixSoftmax(Twin):
    """:class:`extensions.resnest.RadixSoftmax` on ``[B, 1, 1, g*radix*c]`` logits laid out ``[group][radix][c]``:
    softmax over the radix axis, returned laid out ``[radix][group][c]`` (the split layout); sigmoid for radix 1.
    Written as reshape, transpose to put radix last, softmax over the last axis (TFLite's SOFTMAX), transpose to
    ``[radix][group][c]``."""

    def setup(self, w):
        self.radix, self.g, self.c = w.radix, w.g, w.c

    def call(self, x):
        if self.radix == 1:
            return tf.sigmoid(x)
        x = tf.reshape(x, [-1, self.g, self.radix, self.c // (self.g * self.radix)])  # [B, group, radix, c]
        x = tf.nn.softmax(tf.transpose(x, [0, 1, 3, 2]), axis=-1)  # [B, group, c, radix]
        return tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, 1, 1, self.c])  # [B, radix, group, c]


class TFSplitAttention(Twin):
    """:class:`extensions.resnest.SplitAttention`: grouped conv (``g*radix`` groups), the radix splits' pooled sum,
    fc1 (BN, ReLU), fc2, radix softmax, weighted sum of the splits."""

    def setup(self, w):
        self.radix = w.radix
        self.conv = TFConv(w=w.conv)
        self.fc1 = TFConv(w=w.fc1)
        self.fc2 = TFConv(w=w.fc2)
        self.rsoftmax = TFRadixSoftmax(w=w.rsoftmax)

    def attention(self, gap):
        return self.rsoftmax(self.fc2(self.fc1(gap)))

    def call(self, x):
        x = self.conv(x)
        if self.radix == 1:
            return x * self.attention(mean_hw(x))
        xs = tf.split(x, self.radix, axis=-1)
        gs = tf.split(mean_hw(x), self.radix, axis=-1)
        gap = gs[0]
        for gr in gs[1:]:
            gap = gap + gr
        a = tf.split(self.attention(gap), self.radix, axis=-1)
        out = xs[0] * a[0]
        for xr, ar in zip(xs[1:], a[1:]):
            out = out + xr * ar
        return out


class TFResNeStBottleneck(Twin):
    """:class:`extensions.resnest.ResNeStBottleneck`: 1x1 conv, average-pool downsampling before or after the
    split attention (avd), 1x1 conv, shortcut, activation."""

    def setup(self, w):
        self.residual = w.residual
        self.conv1 = TFConv(w=w.conv1)
        self.avd_first = twin(w.avd_first)
        self.conv2 = TFSplitAttention(w=w.conv2)
        self.avd_last = twin(w.avd_last)
        self.conv3 = TFConv(w=w.conv3)
        self.shortcut = twin(w.shortcut) if w.residual else None
        self.act = activation(w.act, 'ResNeStBottleneck')

    def call(self, x):
        y = self.conv3(self.avd_last(self.conv2(self.avd_first(self.conv1(x)))))
        return self.act(y + self.shortcut(x)) if self.residual else y


class TFC3_ResNeSt(TFC3Blocks):
    """:class:`extensions.resnest.C3_ResNeSt`: YOLOv5's C3 frame around :class:`TFResNeStBottleneck` twins."""


class TFResNeStStage(TFResNetStage):
    """:class:`extensions.resnest.ResNeStStage`: a stage of ``resnest50d``, its :class:`TFResNeStBottleneck` twins
    in order."""
