"""Pairing a trained YOLOv5 model with a YAML model layer by layer, and copying what matches.

Layer ``i`` of the YAML model is paired with layer ``i`` of the checkpoint's model. A pair is

* ``copy``: the same module type with the same tensor shapes; every tensor is copied;
* ``swap``: a C3 (or any registered block) and a registered block of another type with the same ``from``
  wiring and the same input and output channels; tensors matching by name and shape are copied (C3's
  ``cv1``/``cv2``/``cv3`` for the C3 variants), the rest is fitted (:mod:`extensions.warm_start.fit`);
* ``detect``: the Detect head with another class count; per anchor the box and objectness rows (the first 5 of
  the ``5 + nc`` rows) are copied and the class rows keep YOLOv5's initialisation, as train.py's own transfer
  leaves a head of another shape.

Anything else raises :class:`WarmStartError` naming the first layer that differs and both modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..registry import registered


class WarmStartError(ValueError):
    """Input the warm start cannot use; ``str(e)`` is one line naming the file, layer or argument and the fix."""


@dataclass(frozen=True)
class Pair:
    index: int
    kind: str  # 'copy', 'swap' or 'detect'
    teacher: str  # module type in the checkpoint
    student: str  # module type in the YAML model


def swappable_types() -> set:
    """Module type names that may replace one another: C3 and every registered block."""
    return {'C3', *registered()}


def _shapes(m: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def _channels(m: nn.Module) -> str:
    """'c1->c2' from the first and last conv of a module, for messages."""
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    if not convs:
        return 'no conv'
    return f'{convs[0].in_channels}->{convs[-1].out_channels}'


def describe(m: nn.Module) -> str:
    n = sum(p.numel() for p in m.parameters())
    return f'{type(m).__name__} ({_channels(m)} channels, {n} params)'


def _scale_hint(teacher, student) -> str:
    t, s = getattr(teacher, 'yaml', {}) or {}, getattr(student, 'yaml', {}) or {}
    tm = (t.get('depth_multiple'), t.get('width_multiple'))
    sm = (s.get('depth_multiple'), s.get('width_multiple'))
    if None not in tm and tm != sm:
        return (f' The checkpoint is depth_multiple {tm[0]}, width_multiple {tm[1]}; the YAML {sm[0]}, {sm[1]}: '
                f'another scale (e.g. a yolov5s checkpoint for a yolov5n YAML).')
    return ''


def _detect_compatible(t: nn.Module, s: nn.Module) -> bool:
    """Same Detect but for the class count: layers, anchors per layer, input channels."""
    if not (hasattr(t, 'nl') and hasattr(t, 'na') and hasattr(t, 'm')):
        return False
    return (t.nl, t.na) == (s.nl, s.na) and [c.in_channels for c in t.m] == [c.in_channels for c in s.m]


def _layer_outputs(model, img: int = 64) -> list:
    """Output shape of every layer of ``model`` on a zero image (eval, no grad)."""
    shapes, hooks = [], []
    for m in model.model:
        hooks.append(m.register_forward_hook(lambda _m, _i, o: shapes.append(
            tuple(o.shape) if isinstance(o, torch.Tensor) else None)))
    was = model.training
    try:
        model.eval()
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, 3, img, img, device=p.device, dtype=p.dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return shapes


def pair_layers(teacher, student, source: str = 'the checkpoint', cfg: str = 'the YAML') -> list[Pair]:
    """Pair every layer of ``student`` (built from ``cfg``) with the same layer of ``teacher`` (from ``source``).

    Raises :class:`WarmStartError` at the first layer that is neither a copy, a swap nor a Detect of another
    class count, naming both modules."""
    tl, sl = list(teacher.model), list(student.model)
    hint = _scale_hint(teacher, student)
    if len(tl) != len(sl):
        raise WarmStartError(f'{source} has a model of {len(tl)} layers, {cfg} one of {len(sl)}: not the same '
                             f'architecture.{hint} Fix: give the YAML that matches the checkpoint with C3 swapped '
                             f'for a family block (models_yaml/yolov5<scale>-<family>.yaml)')
    ok = swappable_types()
    pairs = []
    for i, (t, s) in enumerate(zip(tl, sl)):
        tn, sn = type(t).__name__, type(s).__name__
        where = f'layer {i}: {source} has {describe(t)}, {cfg} has {describe(s)}'
        if getattr(t, 'f', None) != getattr(s, 'f', None):
            raise WarmStartError(f'{where}, with inputs from {t.f} and {s.f}: another wiring.{hint} Fix: give the '
                                 f'YAML of the checkpoint\'s architecture with only C3 swapped')
        if tn == sn:
            if _shapes(t) == _shapes(s):
                pairs.append(Pair(i, 'copy', tn, sn))
            elif tn == 'Detect' and _detect_compatible(t, s):
                pairs.append(Pair(i, 'detect', tn, sn))
            else:
                k = next((k for k, v in _shapes(s).items() if _shapes(t).get(k) != v), '?')
                raise WarmStartError(f'{where}: tensor {k} is {_shapes(t).get(k)} in the checkpoint and '
                                     f'{_shapes(s).get(k)} in the YAML.{hint} Fix: give the YAML of the '
                                     f'checkpoint\'s scale with the family\'s blocks')
        elif tn in ok and sn in ok:
            pairs.append(Pair(i, 'swap', tn, sn))
        else:
            raise WarmStartError(f'{where}: only C3 and registered blocks may differ between them.{hint} Fix: give '
                                 f'the YAML of the checkpoint\'s architecture with only C3 swapped')
    swaps = [p.index for p in pairs if p.kind == 'swap']
    if swaps:  # a swap must keep input and output channels: compare every layer's output shape
        to, so = _layer_outputs(teacher), _layer_outputs(student)
        for i in range(len(tl)):
            if to[i] != so[i] and pairs[i].kind != 'detect':
                raise WarmStartError(f'layer {i}: {source} has {describe(tl[i])} with output {to[i]}, {cfg} has '
                                     f'{describe(sl[i])} with output {so[i]} (for a 64 px input): a swapped block '
                                     f'must keep input and output channels.{hint}')
    return pairs


def copy_matching(teacher, student, pairs: list[Pair]) -> dict:
    """Copy into ``student`` every tensor of ``teacher`` that matches by name and shape (train.py's rule, anchors
    included), and the box/objectness rows of a Detect of another class count.

    Returns ``{'copied': n, 'keys': {names}, 'partial': [names], 'total': n}``: state-dict entries copied whole
    (and their names), entries copied in part (the Detect outputs), and the student's entry count."""
    tsd, ssd = teacher.state_dict(), student.state_dict()
    keys, partial = set(), []
    with torch.no_grad():
        for k, v in tsd.items():
            if k in ssd and ssd[k].shape == v.shape:
                ssd[k].copy_(v.to(ssd[k].dtype))
                keys.add(k)
        for p in pairs:
            if p.kind != 'detect':
                continue
            t, s = teacher.model[p.index], student.model[p.index]
            for j, (tc, sc) in enumerate(zip(t.m, s.m)):
                for name in ('weight', 'bias'):
                    tv, sv = getattr(tc, name), getattr(sc, name)
                    tv = tv.detach().view(t.na, t.no, *tv.shape[1:])
                    sv.data.view(s.na, s.no, *sv.shape[1:])[:, :5].copy_(tv[:, :5].to(sv.dtype))
                    partial.append(f'model.{p.index}.m.{j}.{name}')
    return {'copied': len(keys), 'keys': keys, 'partial': partial, 'total': len(ssd)}
