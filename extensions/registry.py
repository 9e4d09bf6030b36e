"""The registry of extension blocks, and the few functions YOLOv5's ``parse_model`` calls (patches/0001).

A block family registers its YAML-usable classes with :func:`register`; each registration states

* how the block's output channels follow from its input channels ``c1 = ch[f]``, its first YAML argument
  and the width multiple ``gw`` (:func:`scaled`, YOLOv5's rule for ``Conv``/``C3``; :func:`fixed`; or
  :func:`same`; or any function ``rule(c1, arg, gw) -> c2``), and
* whether it takes the repeat count ``n`` as its third constructor argument, as ``C3`` does.

``parse_model`` then builds every registered block as it builds ``C3``: the constructor receives
``(c1, c2, [n,] *rest)``. Adding a family means writing its module and adding its row to
:mod:`extensions.families`; the patch to the base never changes.

Errors in a model YAML are raised as :class:`ModelConfigError`, one message naming the YAML file, the layer
index, the module and the fix.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from . import families, model_yaml
from .errors import ModelConfigError
from .families import FAMILIES

__all__ = ['BlockSpec', 'ModelConfigError', 'MissingTwinError', 'NO_TF_TWIN', 'register', 'unregister', 'registered',
           'scaled', 'fixed', 'same', 'resolve', 'literal_args', 'activation', 'is_block', 'block_args', 'layer',
           'parse', 'tf_twin']


# ----------------------------------------------------------------------------------------------- channel rules
def scaled(c1: int, arg, gw: float) -> int:
    """YOLOv5's rule for Conv/C3: the first YAML argument times the width multiple, rounded up to 8."""
    return int(math.ceil(arg * gw / 8) * 8)


def fixed(c1: int, arg, gw: float) -> int:
    """The first YAML argument is the exact number of output channels (no width scaling)."""
    return int(arg)


def same(c1: int, arg, gw: float) -> int:
    """Output channels equal input channels; the YAML arguments do not start with a channel count."""
    return c1


same.consumes_arg = False  # the YAML args are passed after (c1, c2) unchanged


# --------------------------------------------------------------------------------------------------- registry
class _NoTFTwin:
    """The type of :data:`NO_TF_TWIN`."""

    def __repr__(self) -> str:
        return 'NO_TF_TWIN'


NO_TF_TWIN = _NoTFTwin()  # register(..., tf=NO_TF_TWIN): the block declares that it has no TensorFlow twin


@dataclass(frozen=True)
class BlockSpec:
    name: str
    module: type
    out_channels: Callable[[int, object, float], int]
    repeats: bool
    family: str  # key of its row in extensions.families, or the module name for a block outside the table
    # TensorFlow twin: 'module:Class'; None: the convention of tf_target(); NO_TF_TWIN: none, by declaration
    tf: str | _NoTFTwin | None = None

    @property
    def consumes_arg(self) -> bool:
        return getattr(self.out_channels, 'consumes_arg', True)

    @property
    def has_tf_twin(self) -> bool:
        """False when the registration declares that the block has no TensorFlow twin (``tf=NO_TF_TWIN``)."""
        return self.tf is not NO_TF_TWIN

    def tf_target(self) -> str | None:
        """Where the block's TensorFlow (Keras) twin lives, as ``'module:Class'``: the registration's ``tf=``, else
        ``extensions.tf.<module of the block>:TF<ClassName>`` (``extensions/tf/res2net.py`` for a block of
        ``extensions/res2net.py``); None when the block declares none (``tf=NO_TF_TWIN``)."""
        if not self.has_tf_twin:
            return None
        return self.tf or f'extensions.tf.{self.module.__module__.rsplit(".", 1)[-1]}:TF{self.module.__name__}'


_REGISTRY: dict[str, BlockSpec] = {}
_BY_CLASS: dict[type, BlockSpec] = {}
_loaded = False


def load_families() -> None:
    """Import the module of every family in :data:`extensions.families.FAMILIES` once: that registers its blocks."""
    global _loaded
    if not _loaded:
        for family in FAMILIES:
            importlib.import_module(f'extensions.{family.module}')
        _loaded = True


def register(cls=None, *, out: Callable = scaled, repeats: bool = False, family: str | None = None,
             name: str | None = None, tf: str | _NoTFTwin | None = None):
    """Class decorator: make a block usable by name from a model YAML.

    ``@register(repeats=True)`` for a C3-like block ``(c1, c2, n=1, ...)``; ``@register()`` for a block
    ``(c1, c2, ...)`` whose output channels scale with the width multiple; ``out=same`` for one that keeps
    its input channels. ``tf='package.module:Class'`` names the block's TensorFlow twin for the SavedModel,
    GraphDef and TFLite exports when it is not ``extensions.tf.<module>:TF<ClassName>`` (:func:`tf_twin`);
    ``tf=NO_TF_TWIN`` declares that there is none: those exports then refuse a model with the block, naming it, and
    the TensorFlow export tests skip its family for that reason. Registering a second, different class under a
    taken name raises ``ValueError``.
    """
    if not (tf is None or tf is NO_TF_TWIN or (isinstance(tf, str) and tf.count(':') == 1)):
        raise ValueError(f"register(tf={tf!r}): expected 'package.module:Class' (the twin), NO_TF_TWIN (no twin) or "
                         f'None (the twin extensions.tf.<module>:TF<ClassName>)')

    def wrap(c):
        key = name or c.__name__
        old = _REGISTRY.get(key)
        if old is not None and old.module is not c:
            raise ValueError(f"extension block name '{key}' is taken by {old.module.__module__}.{old.module.__name__}"
                             f"; register {c.__module__}.{c.__name__} under another name (register(name=...))")
        row = families.of_module(c.__module__)  # a family of the table, else the module's own name
        fam = family or (row.key if row else c.__module__.rsplit('.', 1)[-1])
        spec = BlockSpec(key, c, out, repeats, fam, tf)
        _REGISTRY[key] = spec
        _BY_CLASS[c] = spec
        return c

    return wrap(cls) if cls is not None else wrap


def unregister(name: str) -> None:
    """Remove a block (tests register throwaway blocks)."""
    spec = _REGISTRY.pop(name)
    _BY_CLASS.pop(spec.module, None)


def registered() -> dict[str, BlockSpec]:
    """A copy of the registry: {YAML name: BlockSpec}."""
    load_families()
    return dict(_REGISTRY)


# ---------------------------------------------------------------------------------------------------- errors
def _known_blocks() -> str:
    return ', '.join(sorted(_REGISTRY)) or '(none)'


def _signature(m) -> str:
    try:
        return f'{getattr(m, "__name__", m)}{inspect.signature(m)}'
    except (TypeError, ValueError):
        return str(m)


def _close_names(m: str, names: list, n: int = 3) -> list:
    """Up to ``n`` names like ``m``, longest shared prefix first (C3_Res2Net -> C3_Res2Block before C3_ResNeSt)."""
    close = difflib.get_close_matches(m, names, n=2 * n)
    prefix = lambda c: len(os.path.commonprefix([c.lower(), m.lower()]))  # noqa: E731
    return sorted(close, key=prefix, reverse=True)[:n]  # stable: ties keep difflib's order


# ------------------------------------------------------------------------------------- what parse_model calls
def resolve(m, i: int, namespace: dict):
    """Module for the YAML name ``m`` of layer ``i``, by lookup only: a registered block, a YOLOv5 module of
    ``namespace`` (parse_model's globals) or ``nn.<Name>``. Names are never evaluated
    (:func:`extensions.model_yaml.lookup_module`)."""
    load_families()
    if not isinstance(m, str):
        return m
    if m in _REGISTRY:
        return _REGISTRY[m].module
    found = model_yaml.lookup_module(m, i, namespace)
    if found is not None:
        return found
    close = _close_names(m, list(_REGISTRY) + [k for k in namespace if k[:1].isupper()])
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ''
    raise ModelConfigError(
        i, m, f"unknown module '{m}'",
        f'{hint}use a YOLOv5 module (Conv, C3, SPPF, nn.Upsample, Concat, Detect, ...) or an extension block: '
        f'{_known_blocks()}; a new block is added with @register in extensions/ (see README)')


def literal_args(args, i: int, m, names: dict) -> list:
    """Layer ``i``'s YAML arguments as data (:func:`extensions.model_yaml.literal_args`): what parse_model passes on."""
    return model_yaml.literal_args(args, i, getattr(m, '__name__', str(m)), names)


def activation(text):
    """The ``activation:`` of a model YAML (``nn.SiLU()``-style) built by lookup (:func:`model_yaml.activation`)."""
    return model_yaml.activation(text)


def is_block(m) -> bool:
    return m in _BY_CLASS


def block_args(m, ch: list, f, args: list, n: int, gw: float, i: int = -1):
    """Constructor args, output channels and repeat count of a registered block, as parse_model uses them.

    Returns ``(c2, args, n)`` with ``args = [c1, c2, (n,) *rest]``; for a repeating block ``n`` becomes 1
    (the block repeats internally, like C3).
    """
    spec = _BY_CLASS[m]
    if not isinstance(f, int):
        raise ModelConfigError(i, spec.name, f'takes one input but from={f}',
                               'give a single layer index in the from column, or Concat the inputs first')
    c1 = ch[f]
    if spec.consumes_arg:
        if not args or isinstance(args[0], bool) or not isinstance(args[0], (int, float)) or args[0] <= 0:
            raise ModelConfigError(i, spec.name, f'first argument must be the output channels (a positive number), '
                                   f'got {args[0] if args else "no arguments"!r}',
                                   f'write e.g. [-1, 3, {spec.name}, [256]]; constructor: {_signature(m)}')
        c2, rest = spec.out_channels(c1, args[0], gw), list(args[1:])
    else:
        c2, rest = spec.out_channels(c1, None, gw), list(args)
    args = [c1, c2, *rest]
    if spec.repeats:
        args.insert(2, n)
        n = 1
    return c2, args, n


@contextlib.contextmanager
def layer(i: int, m, args):
    """Turn any error raised while constructing layer ``i`` into a :class:`ModelConfigError`."""
    try:
        yield
    except ModelConfigError:
        raise
    except Exception as e:
        name = getattr(m, '__name__', str(m))
        raise ModelConfigError(i, name, f'cannot build it with arguments {args}: {type(e).__name__}: {e}',
                               f'check the YAML arguments against {_signature(m)} '
                               f'(c1, c2 and n are filled in by parse_model)') from e


def parse(parse_model, d: dict, ch: list, yaml_file: str = ''):
    """Run upstream ``parse_model`` and check the result once on a small input.

    Every error names ``yaml_file`` and the layer: construction errors come from :func:`resolve`,
    :func:`block_args` and :func:`layer`; a shape or channel mismatch between layers (for instance a
    hand-written channel count, or a ``from`` index that points at a layer of another resolution) is found
    by one forward pass at 64x64 (256x256 where 64 is too small for a P6/P7 model) in eval mode, which changes no
    parameter or BatchNorm statistic.
    """
    try:
        model_yaml.check_model_dict(d)
        model, save = parse_model(d, ch)
        try:
            _dry_run(model, ch[0])
        except ModelConfigError as small:
            try:  # a P6/P7 model needs a larger input than 64: only what fails at 256 too is an error
                _dry_run(model, ch[0], 256)
            except ModelConfigError:
                raise small from small.__cause__
    except ModelConfigError as e:
        e.yaml_file = yaml_file or e.yaml_file
        e.args = (str(e),)
        raise
    return model, save


def _shapes(x):
    return [tuple(t.shape) for t in x] if isinstance(x, (list, tuple)) else tuple(x.shape)


def _dry_run(model, ch: int, size: int = 64) -> None:
    import torch

    training = model.training
    model.eval()
    model[-1].train()  # the head returns raw maps in train mode; in eval it needs strides not yet known
    try:
        y, x = [], torch.zeros(1, ch, size, size)
        with torch.no_grad():
            for m in model:
                if m.f != -1:
                    x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
                try:
                    x = m(x)
                except Exception as e:
                    raise ModelConfigError(
                        m.i, m.type, f'fails on its input of shape {_shapes(x)} (from={m.f}): {type(e).__name__}: {e}',
                        'make its input channels and the from index agree with the layers it reads '
                        '(each Concat input must have the same resolution)') from e
                y.append(x)
    finally:
        model.train(training)


# ------------------------------------------------------------------------------- TensorFlow twins (patches/0014)
class MissingTwinError(NotImplementedError):
    """A registered block has no TensorFlow twin, so the SavedModel/GraphDef/TFLite exports cannot rebuild it."""


def tf_twin(m):
    """The TensorFlow (Keras) twin class of the registered block ``m`` (class or YAML name), imported on first use.

    YOLOv5's TF exports rebuild the PyTorch model layer by layer in Keras (``models/tf.py``); a twin is called
    as ``Twin(*args, w=module)`` with the block's constructor arguments and the PyTorch module whose weights it
    takes. Raises :class:`MissingTwinError` naming the block and what to write when there is none.
    """
    load_families()
    spec = _REGISTRY[m] if isinstance(m, str) else _BY_CLASS[m]
    target = spec.tf_target()
    if target is None:
        raise MissingTwinError(
            f"extension block '{spec.name}' ({spec.module.__module__}.{spec.module.__name__}) declares that it has no "
            f'TensorFlow twin (registered with tf=NO_TF_TWIN), so the SavedModel, GraphDef and TFLite exports cannot '
            f'rebuild it. Fix: export to ONNX, OpenVINO or TorchScript, or write its twin (see '
            f'extensions/tf/res2net.py) and drop tf=NO_TF_TWIN from its @register')
    module, _, cls = target.partition(':')
    fix = (f'write class TF{spec.module.__name__}(keras.layers.Layer) in '
           f'{"extensions/tf/" + module.rsplit(".", 1)[-1] + ".py" if spec.tf is None else module} whose '
           f'__init__(self, *args, w=None) builds the Keras layers from the PyTorch module w and whose call() computes '
           f'the block on NHWC tensors (see extensions/tf/res2net.py), or name an existing twin with '
           f"@register(..., tf='package.module:Class')")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name in ('tensorflow', 'keras'):
            raise ModuleNotFoundError('the TensorFlow exports need TensorFlow: pip install "tensorflow-cpu>=2.20" '
                                      '(see requirements.txt)', name=e.name) from e
        if not module.startswith(e.name or '\0'):
            raise  # an import inside the twin's module failed: its own error is the useful one
        raise MissingTwinError(f"extension block '{spec.name}' ({spec.module.__module__}.{spec.module.__name__}) has "
                               f'no TensorFlow twin: module {module} does not exist. Fix: {fix}') from None
    twin = getattr(mod, cls, None)
    if twin is None:
        raise MissingTwinError(f"extension block '{spec.name}' ({spec.module.__module__}.{spec.module.__name__}) has "
                               f'no TensorFlow twin: {module} has no {cls}. Fix: {fix}')
    return twin
