"""TensorFlow twins of the parts the blocks share (``extensions/_layers.py``), and the twin base class.

A twin is a Keras layer built from the PyTorch module ``w`` it mirrors: it reads the structure (channels,
strides, which shortcut, activations) and the weights from ``w``, so ``Twin(*args, w=module)`` ignores the
constructor arguments ``models/tf.py`` also passes. Tensors are NHWC. In inference it computes what the PyTorch
module computes in eval mode:

* every YOLOv5 ``Conv`` (also ``BiasConv`` and a plain ``nn.Conv2d``) becomes one Keras ``Conv2D`` with the BN
  folded into its weights and bias in float64 (the same fold as YOLOv5's ``Model.fuse()``), so a fused and an
  unfused PyTorch model give the same Keras model; padding is explicit where TF's 'same' would differ from
  PyTorch's symmetric padding (stride 2);
* a grouped conv is one ``Conv2D`` per group on a channel split, then a concat: the same values, and only
  SPLIT/CONV_2D/CONCATENATION in TFLite, which every TFLite delegate runs (grouped CONV_2D is not);
* ``AvgPool2d(3, s, 1)`` (count_include_pad=True) is a zero pad then a VALID average pool;
  ``AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)`` (the ResNet-D shortcut) is TF's 'same' average
  pool, which also averages only the values inside the map; ``MaxPool2d(3, 2, 1)`` (the pretrained backbones'
  stem) is a mirror pad then a VALID max pool: each mirrored value is a copy of one inside the same window, so
  the maximum is PyTorch's (which pads with -inf), with no infinite constant for TFLite's quantiser to meet;
* drop path is the identity, as in eval mode.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import torch.nn as nn
from models.common import Conv
from tensorflow import keras
from utils import activations as yolo_act

from .. import registry
from .._layers import BiasConv, C3Blocks, DownsampleAvg, DropPath, ResNetStage, SqueezeExcite

__all__ = ['Twin', 'activation', 'folded', 'twin', 'TFConv', 'TFAvgPool', 'TFMaxPool', 'TFSqueezeExcite',
           'TFDropPath', 'TFDownsampleAvg', 'TFC3Blocks', 'TFResNetStage', 'mean_hw']


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(x) for x in v)


def identity(x):
    return x


def mean_hw(x):
    """Global average over height and width, keeping the dims: ``x.mean((2, 3), keepdim=True)`` in NHWC."""
    return tf.reduce_mean(x, axis=[1, 2], keepdims=True)


def activation(m, where: str = ''):
    """The TF function of a PyTorch activation module (``None`` or ``nn.Identity``: the identity)."""
    if m is None or isinstance(m, nn.Identity):
        return identity
    if isinstance(m, (nn.SiLU, yolo_act.SiLU)):
        return lambda x: x * tf.sigmoid(x)
    if isinstance(m, nn.ReLU):
        return tf.nn.relu
    if isinstance(m, nn.ReLU6):
        return tf.nn.relu6
    if isinstance(m, nn.Sigmoid):
        return tf.sigmoid
    if isinstance(m, nn.LeakyReLU):
        slope = float(m.negative_slope)
        return lambda x: tf.nn.leaky_relu(x, alpha=slope)
    if isinstance(m, (nn.Hardswish, yolo_act.Hardswish)):
        return lambda x: x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)
    raise NotImplementedError(
        f'no TensorFlow twin for the activation {type(m).__name__}{" in " + where if where else ""}: the TF exports '
        f'support SiLU, ReLU, ReLU6, Sigmoid, LeakyReLU, Hardswish and Identity. Fix: use one of them in the model '
        f"YAML's activation:, or add {type(m).__name__} to extensions/tf/layers.py activation()")


def folded(conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None):
    """``(weight, bias)`` of ``bn(conv(x))`` as one conv, computed in float64 and returned as float32 numpy
    (weight ``[c2, c1/g, kh, kw]``; bias ``None`` for a conv without bias and BN)."""
    w = conv.weight.detach().cpu().double().numpy()
    b = None if conv.bias is None else conv.bias.detach().cpu().double().numpy()
    if bn is not None:
        var, mean = bn.running_var.detach().cpu().double().numpy(), bn.running_mean.detach().cpu().double().numpy()
        gamma = np.ones_like(var) if bn.weight is None else bn.weight.detach().cpu().double().numpy()
        beta = np.zeros_like(var) if bn.bias is None else bn.bias.detach().cpu().double().numpy()
        scale = gamma / np.sqrt(var + bn.eps)
        w = w * scale[:, None, None, None]
        b = ((0.0 if b is None else b) - mean) * scale + beta
    return w.astype(np.float32), None if b is None else b.astype(np.float32)


class Twin(keras.layers.Layer):
    """Base of the twins: ``Twin(*args, w=module, **options)`` calls ``self.setup(module, **options)``; the
    positional arguments (the PyTorch constructor's, passed by ``models/tf.py``) are not needed."""

    def __init__(self, *args, w=None, **options):
        if w is None:
            raise TypeError(f'{type(self).__name__} is built from the PyTorch module it mirrors: pass w=<module>')
        super().__init__()
        self.setup(w, **options)

    def setup(self, w, **options):
        raise NotImplementedError

    def build(self, input_shape):  # every sublayer is made in setup(); Keras builds them on their first call
        self.built = True


class TFConv(Twin):
    """YOLOv5 ``Conv`` / ``BiasConv`` (conv, BN, activation; fused or not) or a plain ``nn.Conv2d``: one Keras
    ``Conv2D`` per group with the BN folded in, then the activation (``act=`` overrides it)."""

    def setup(self, w, act=None):
        if isinstance(w, Conv):
            conv, bn, a = w.conv, getattr(w, 'bn', None), w.act
        elif isinstance(w, nn.Conv2d):
            conv, bn, a = w, None, None
        else:
            raise TypeError(f'TFConv mirrors a YOLOv5 Conv or an nn.Conv2d, got {type(w).__name__}')
        self.act = activation(a if act is None else act, type(w).__name__)
        k, s, d = _pair(conv.kernel_size), _pair(conv.stride), _pair(conv.dilation)
        p = conv.padding
        if isinstance(p, str) or conv.padding_mode != 'zeros' or d != (1, 1):
            raise NotImplementedError(f'TFConv: {conv} is not supported (needs integer zero padding and dilation 1)')
        p = _pair(p)
        if p == (0, 0):
            padding, self.pad = 'valid', None
        elif s == (1, 1) and all(ki % 2 == 1 and pi == ki // 2 for ki, pi in zip(k, p)):
            padding, self.pad = 'same', None  # TF 'same' pads symmetrically here, as PyTorch does
        else:
            padding, self.pad = 'valid', [[0, 0], [p[0], p[0]], [p[1], p[1]], [0, 0]]
        weight, bias = folded(conv, bn)
        kernel = weight.transpose(2, 3, 1, 0)  # [kh, kw, c1/g, c2]
        self.groups = g = conv.groups
        cg = kernel.shape[3] // g  # output channels per group
        self.convs = [keras.layers.Conv2D(
            cg, k, s, padding, use_bias=bias is not None,
            kernel_initializer=keras.initializers.Constant(kernel[..., i * cg:(i + 1) * cg]),
            bias_initializer='zeros' if bias is None else keras.initializers.Constant(bias[i * cg:(i + 1) * cg]))
            for i in range(g)]

    def call(self, x):
        if self.pad is not None:
            x = tf.pad(x, self.pad)
        if self.groups == 1:
            return self.act(self.convs[0](x))
        xs = tf.split(x, self.groups, axis=-1)
        return self.act(tf.concat([conv(xi) for conv, xi in zip(self.convs, xs)], axis=-1))


class TFAvgPool(Twin):
    """``nn.AvgPool2d`` in the two forms the blocks use: zero padding counted (``count_include_pad=True``, no
    ceil mode) as pad + VALID pool; ``kernel == stride == 2`` with ``ceil_mode=True`` and no padding as TF 'same'
    (the partial last window averages only the values inside the map, as PyTorch's ceil mode does)."""

    def setup(self, w):
        if not isinstance(w, nn.AvgPool2d):
            raise TypeError(f'TFAvgPool mirrors an nn.AvgPool2d, got {type(w).__name__}')
        k, p = _pair(w.kernel_size), _pair(w.padding)
        s = _pair(w.stride if w.stride is not None else w.kernel_size)
        self.k, self.s, self.pad = [1, *k, 1], [1, *s, 1], None
        if w.divisor_override:
            raise NotImplementedError(f'TFAvgPool: {w} (divisor_override) is not supported')
        if w.ceil_mode:
            if p != (0, 0) or k != s or max(s) > 2:
                raise NotImplementedError(f'TFAvgPool: {w} is not supported: with ceil_mode=True only padding 0 and '
                                          f'kernel == stride <= 2 (the ResNet-D shortcut) map to TF pooling')
            self.padding = 'SAME'  # pads at the end only for stride 2, and excludes the padding from the mean
        elif p == (0, 0):
            self.padding = 'VALID'
        elif w.count_include_pad:
            self.padding, self.pad = 'VALID', [[0, 0], [p[0], p[0]], [p[1], p[1]], [0, 0]]
        else:
            raise NotImplementedError(f'TFAvgPool: {w} is not supported (padding excluded from the mean without '
                                      f'ceil mode)')

    def call(self, x):
        if self.pad is not None:
            x = tf.pad(x, self.pad)
        return tf.nn.avg_pool2d(x, self.k, self.s, self.padding)


class TFMaxPool(Twin):
    """``nn.MaxPool2d(k, s, p)`` without ceil mode or dilation: mirror padding (``SYMMETRIC``: the first padded
    row repeats row 0, ...) then a VALID max pool. PyTorch pads with -inf; every window that covers a mirrored
    value also covers the value it copies whenever ``p <= k / 2`` (which PyTorch requires), so the maxima are
    equal (checked at odd and even sizes in tests/test_deploy_tf.py)."""

    def setup(self, w):
        if not isinstance(w, nn.MaxPool2d):
            raise TypeError(f'TFMaxPool mirrors an nn.MaxPool2d, got {type(w).__name__}')
        k, p, d = _pair(w.kernel_size), _pair(w.padding), _pair(w.dilation)
        s = _pair(w.stride if w.stride is not None else w.kernel_size)
        if w.ceil_mode or d != (1, 1) or any(pi > ki // 2 for pi, ki in zip(p, k)):
            raise NotImplementedError(f'TFMaxPool: {w} is not supported (needs ceil_mode=False, dilation 1)')
        self.k, self.s = [1, *k, 1], [1, *s, 1]
        self.pad = None if p == (0, 0) else [[0, 0], [p[0], p[0]], [p[1], p[1]], [0, 0]]

    def call(self, x):
        if self.pad is not None:
            x = tf.pad(x, self.pad, mode='SYMMETRIC')
        return tf.nn.max_pool2d(x, self.k, self.s, 'VALID')


class TFSqueezeExcite(Twin):
    """:class:`extensions._layers.SqueezeExcite`: ``x * sigmoid(fc2(relu(fc1(mean(x)))))``."""

    def setup(self, w):
        self.fc1 = TFConv(w=w.fc1, act=w.act)
        self.fc2 = TFConv(w=w.fc2)

    def gate(self, x):
        return tf.sigmoid(self.fc2(self.fc1(mean_hw(x))))

    def call(self, x):
        return x * self.gate(x)


class TFDropPath(Twin):
    """:class:`extensions._layers.DropPath` at inference: the identity."""

    def setup(self, w):
        pass

    def call(self, x):
        return x


class TFDownsampleAvg(Twin):
    """:class:`extensions._layers.DownsampleAvg`: the ResNet-D shortcut, average pool (stride > 1) then 1x1 conv."""

    def setup(self, w):
        self.pool = twin(w.pool)
        self.conv = TFConv(w=w.conv)

    def call(self, x):
        return self.conv(self.pool(x))


class TFC3Blocks(Twin):
    """:class:`extensions._layers.C3Blocks` (YOLOv5's C3 frame): ``cv3(concat(m(cv1(x)), cv2(x)))`` with the twins
    of the blocks in ``m``."""

    def setup(self, w):
        if not isinstance(w, C3Blocks):
            raise TypeError(f'{type(self).__name__} mirrors a C3 of extension blocks, got {type(w).__name__}')
        self.cv1, self.cv2, self.cv3 = TFConv(w=w.cv1), TFConv(w=w.cv2), TFConv(w=w.cv3)
        self.m = [twin(b) for b in w.m]

    def call(self, x):
        y = self.cv1(x)
        for block in self.m:
            y = block(y)
        return self.cv3(tf.concat([y, self.cv2(x)], axis=-1))


class TFResNetStage(Twin):
    """:class:`extensions._layers.ResNetStage` (a stage of a pretrained backbone): the twins of its blocks in
    order."""

    def setup(self, w):
        if not isinstance(w, ResNetStage):
            raise TypeError(f'{type(self).__name__} mirrors a ResNetStage, got {type(w).__name__}')
        self.blocks = [twin(b) for b in w]

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return x


PARTS = {Conv: TFConv, nn.Conv2d: TFConv, BiasConv: TFConv, nn.AvgPool2d: TFAvgPool, nn.MaxPool2d: TFMaxPool,
         SqueezeExcite: TFSqueezeExcite, DropPath: TFDropPath, DownsampleAvg: TFDownsampleAvg}


def twin(m: nn.Module):
    """The TF twin of a block's child module ``m``: a registered block's registered twin, a shared part's twin
    (:data:`PARTS`), or the identity for ``nn.Identity``. Anything else is an error naming the module."""
    cls = type(m)
    if registry.is_block(cls):
        return registry.tf_twin(cls)(w=m)
    if isinstance(m, nn.Identity):
        return identity
    for base in cls.__mro__:
        if base in PARTS:
            return PARTS[base](w=m)
    raise NotImplementedError(f'no TensorFlow twin for {cls.__module__}.{cls.__name__} (a part of an extension block). '
                              f'Fix: write its twin in extensions/tf/ and add it to extensions/tf/layers.py PARTS')
