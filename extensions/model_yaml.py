"""Model YAMLs are data: what ``parse_model`` reads from one is looked up or parsed as a literal, never evaluated.

Upstream YOLOv5 ``eval()``-s the module name, every string argument and the ``activation`` of a model YAML, so a
YAML copied from the internet could run any code while it is parsed. Here (patches/0001, 0014):

* a module name is a registered block, a YOLOv5 module class of ``models/`` (``Conv``, ``C3``, ``Detect``, ...)
  or a ``torch.nn`` module class as ``nn.<Name>`` (:func:`lookup_module`);
* a string argument is ``nc`` or ``anchors`` (the header's values), ``None``/``True``/``False``, a Python literal,
  or else a plain word kept as a string (``'nearest'``), as upstream keeps names it cannot resolve
  (:func:`literal_args`);
* ``activation: nn.SiLU()`` is a ``torch.nn`` module class called with literal arguments (:func:`activation`);
* the header and the layer rows are checked before anything is built (:func:`check_model_dict`).

Anything else is a :class:`~extensions.errors.ModelConfigError` naming the layer or key and the text, saying that
expressions are not evaluated.
"""

from __future__ import annotations

import ast
import math
import re

from .errors import ModelConfigError

__all__ = ['lookup_module', 'literal_args', 'activation', 'check_model_dict']

NN_NAME = re.compile(r'(?:torch\.)?nn\.([A-Za-z_]\w*)')
NOT_BUILT_FROM_YAML = ('DetectMultiBackend',)  # loads weights files or connects to servers when built
CONSTANTS = {'None': None, 'True': True, 'False': False}
DATA_HINT = ('model YAMLs are data and expressions are not evaluated: write a number, a list, a quoted string, '
             'None/True/False, nc or anchors')


def _is_module_class(obj) -> bool:
    import torch.nn as nn

    return isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__name__ not in NOT_BUILT_FROM_YAML


def lookup_module(m: str, i: int, namespace: dict):
    """The module class a YAML name stands for, by lookup: ``nn.<Name>``/``torch.nn.<Name>``, or a module class
    that ``namespace`` (parse_model's globals) binds under the name. None for an unknown name; a name that is
    not a name (an expression) raises :class:`ModelConfigError`."""
    import torch.nn as nn

    match = NN_NAME.fullmatch(m)
    if match:
        obj = getattr(nn, match.group(1), None)
        return obj if _is_module_class(obj) else None
    if not m.isidentifier():
        raise ModelConfigError(i, m[:60], f'module {m!r} is not a module name',
                               'model YAMLs are data and expressions are not evaluated: name a YOLOv5 module '
                               '(Conv, C3, nn.Upsample, ...) or a registered block')
    obj = namespace.get(m)
    return obj if _is_module_class(obj) else None


def _plain(a) -> bool:
    """YAML data (what yaml.safe_load makes): numbers, strings, None, lists and dicts of them."""
    if a is None or isinstance(a, (bool, int, float, str)):
        return True
    if isinstance(a, (list, tuple)):
        return all(_plain(x) for x in a)
    if isinstance(a, dict):
        return all(_plain(k) and _plain(v) for k, v in a.items())
    return isinstance(a, type)  # a module class given by a program that builds the dict itself


def _literal(a, i: int, module: str, names: dict):
    if not isinstance(a, str):
        if not _plain(a):
            raise ModelConfigError(i, module, f'argument {a!r} is a {type(a).__name__}, not YAML data', DATA_HINT)
        return a
    if a in names:
        return names[a]
    if a in CONSTANTS:
        return CONSTANTS[a]
    if a.isidentifier():
        return a  # a word such as 'nearest': upstream keeps names it cannot resolve as strings
    try:
        return ast.literal_eval(a)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ModelConfigError(i, module, f'argument {a!r} is an expression, not a value', DATA_HINT) from None


def literal_args(args, i: int, module: str, names: dict) -> list:
    """Layer ``i``'s arguments with ``nc``/``anchors`` (``names``), ``None``/``True``/``False`` and literals in
    strings substituted; raises :class:`ModelConfigError` for an expression."""
    if not isinstance(args, (list, tuple)):
        raise ModelConfigError(i, module, f'arguments must be a list, got {args!r}', 'write e.g. [64, 3, 2]')
    return [_literal(a, i, module, names) for a in args]


def activation(text):
    """``nn.SiLU()``, ``nn.LeakyReLU(0.1)``, ``torch.nn.ReLU(inplace=True)`` ...: a torch.nn module class called with
    literal arguments, built by lookup. Raises :class:`ModelConfigError` (key 'activation') otherwise."""
    import torch.nn as nn

    fix = 'write a torch.nn activation with literal arguments, e.g. nn.SiLU() or nn.LeakyReLU(0.1); ' + \
          'expressions are not evaluated'
    try:
        call = ast.parse(str(text).strip(), mode='eval').body
    except SyntaxError:
        call = None
    if not isinstance(call, ast.Call):
        raise ModelConfigError(None, None, f'{text!r} is not a call of a torch.nn activation', fix, key='activation')
    name = ast.unparse(call.func)
    match = NN_NAME.fullmatch(name)
    cls_name = match.group(1) if match else name if name.isidentifier() else None
    cls = getattr(nn, cls_name, None) if cls_name else None
    if not _is_module_class(cls):
        raise ModelConfigError(None, None, f'{name!r} is not a torch.nn module class', fix, key='activation')
    try:
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
        if len(kwargs) != len(call.keywords):
            raise ValueError('**kwargs')
    except (ValueError, SyntaxError, TypeError):
        raise ModelConfigError(None, None, f'{text!r} has arguments that are not literals', fix,
                               key='activation') from None
    try:
        return cls(*args, **kwargs)
    except Exception as e:
        raise ModelConfigError(None, None, f'{text!r} cannot be built: {type(e).__name__}: {e}', fix,
                               key='activation') from e


# ---------------------------------------------------------------------------------------------------- header
def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _key_error(key, problem, fix):
    return ModelConfigError(None, None, problem, fix, key=key)


def _check_anchors(anchors) -> None:
    fix = ('give the number of anchors per output (e.g. anchors: 3) or one list of w,h pairs per output, e.g. '
           '[[10,13, 16,30, 33,23], [30,61, 62,45, 59,119], [116,90, 156,198, 373,326]]')
    if isinstance(anchors, int) and not isinstance(anchors, bool):
        if anchors < 1:
            raise _key_error('anchors', f'must be at least 1, got {anchors}', fix)
        return
    rows = anchors if isinstance(anchors, list) and anchors else None
    if rows is None or not all(isinstance(r, list) and r and len(r) % 2 == 0 for r in rows):
        raise _key_error('anchors', f'must be a count or non-empty lists of w,h pairs, got {anchors!r}', fix)
    if len({len(r) for r in rows}) != 1:
        raise _key_error('anchors', f'every output needs the same number of anchors, got {[len(r) // 2 for r in rows]}',
                         fix)
    if not all(_number(v) and math.isfinite(v) and v > 0 for r in rows for v in r):
        raise _key_error('anchors', f'anchor sizes must be positive numbers, got {anchors!r}', fix)


def _check_from(f, i: int, module: str) -> None:
    where = f'layer {i} can read the input (-1)' if i == 0 else \
        f'layer {i} can read earlier layers: 0..{i - 1}, or -1..-{i} counted back'
    fix = f'{where}; the from column never points forward'
    indices = f if isinstance(f, list) else [f]
    if not indices or not all(isinstance(j, int) and not isinstance(j, bool) for j in indices):
        raise ModelConfigError(i, module, f'from={f!r} must be a layer index or a list of them', fix)
    for j in indices:
        if i == 0 and j != -1 or i > 0 and not -i <= j < i:
            raise ModelConfigError(i, module, f'from index {j} points {"forward" if j >= i else "before the input"}',
                                   fix)


def check_model_dict(d: dict) -> None:
    """Check a model YAML's header (``nc``, ``depth_multiple``, ``width_multiple``, ``anchors``, ``ch``) and the shape
    of its layer rows before anything is built; raises :class:`ModelConfigError` naming the key or layer."""
    if not isinstance(d, dict):
        raise _key_error('(top level)', f'a model YAML is a mapping, got a {type(d).__name__}',
                         'start from yolov5/models/yolov5s.yaml')
    for key in ('nc', 'depth_multiple', 'width_multiple', 'anchors', 'backbone', 'head'):
        if key not in d:
            raise _key_error(key, 'is missing', f'add it as in yolov5/models/yolov5s.yaml ({key}: ...)')
    nc = d['nc']
    if not isinstance(nc, int) or isinstance(nc, bool) or nc < 1:
        raise _key_error('nc', f'must be a whole number of classes >= 1, got {nc!r}', 'e.g. nc: 80')
    for key in ('depth_multiple', 'width_multiple'):
        v = d[key]
        if not _number(v) or not math.isfinite(v) or v <= 0:
            raise _key_error(key, f'must be a finite number > 0, got {v!r}',
                             f'e.g. {key}: 0.33 (yolov5s: depth 0.33, width 0.50)')
    ch = d.get('ch', 3)
    if not isinstance(ch, int) or isinstance(ch, bool) or ch < 1:
        raise _key_error('ch', f'must be a whole number of input channels >= 1, got {ch!r}', 'e.g. ch: 3')
    _check_anchors(d['anchors'])
    for part in ('backbone', 'head'):
        if not isinstance(d[part], list):
            raise _key_error(part, f'must be a list of [from, number, module, args] rows, got {d[part]!r}',
                             'write one row per layer, e.g. - [-1, 1, Conv, [64, 6, 2, 2]]')
    for i, row in enumerate(d['backbone'] + d['head']):
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise ModelConfigError(i, '?', f'row {row!r} is not [from, number, module, args]',
                                   'write e.g. [-1, 3, C3, [128]]')
        f, n, m, args = row
        module = m if isinstance(m, str) else getattr(m, '__name__', repr(m))
        _check_from(f, i, module)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ModelConfigError(i, module, f'number (repeats) must be a whole number >= 1, got {n!r}',
                                   'write e.g. [-1, 3, C3, [128]]')
        if not isinstance(m, (str, type)):
            raise ModelConfigError(i, repr(m), 'module must be a name', 'name a YOLOv5 module or a registered block')
        if not isinstance(args, list):
            raise ModelConfigError(i, module, f'arguments must be a list, got {args!r}', 'write e.g. [128]')
