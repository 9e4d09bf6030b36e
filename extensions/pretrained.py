"""ImageNet-pretrained backbones from timm checkpoint files, for ``train.py --weights``.

``models_yaml/yolov5m-{res2net50d,resnest50d,resnetrs50}.yaml`` rebuild timm's ``res2net50d``, ``resnest50d`` and
``resnetrs50`` up to ``layer4`` from this project's blocks: layer 0 is :class:`~extensions.resnet_rs.ResNetStem`
(timm ``conv1``, ``bn1``, ``maxpool``) and layers 1-4 are one stage block each (timm ``layer1`` .. ``layer4``).
:func:`start_checkpoint` takes a timm state dict from disk (``.safetensors``, or ``.pth``/``.pt``/``.bin`` as
``torch.save(model.state_dict())``, timm's training scripts or the Hugging Face hub write it, possibly nested
under ``state_dict``/``model``), places every backbone tensor into the YOLOv5 model, folds the ImageNet input
normalisation into the stem, and returns a YOLOv5 start checkpoint (``{'model': ..., 'epoch': -1, ...}``, as
train.py saves one); :func:`init_backbone` also checks the output path first and writes it atomically. It never
downloads anything, prints nothing and does not need timm.

Every tensor of the file is either placed or the run stops naming it; the classifier (``fc.*``) is skipped by
name. A file of another architecture stops before anything is written, with what was expected and what was
found. ``scripts/init_backbone.py`` is the command line; docs/pretrained.md the guide.

What is timm's in a family lives in the family's module, beside its stage block (as timm keeps a model's
checkpoint filter, ``pretrained_filter_fn``, beside the model), and is found here through the registry: a
registered :class:`~extensions.layers.ResNetStage` subclass is a pretrained-backbone stage when it carries

* ``timm_keys``: timm block names -> ours, relative to block ``j`` of stage ``k`` (timm ``layer<k>.<j>.<name>``
  -> ``model.<k>.<j>.<ours>``; longest matching prefix first), the ResNet-D shortcut ``downsample.*`` included;
* ``timm_block``: what the block is, as the messages here name it;
* ``timm_marker``: key prefixes that tell the block apart in a timm state dict (each must start some key of
  ``layer1.0.*``).

The family's row in :mod:`extensions.families` names its timm model (``Family.timm``); the stem's remap is
``ResNetStem.timm_keys`` (extensions/resnet_rs.py).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
import torch.nn as nn
import yaml
from models.yolo import Model
from utils.general import LOGGER

from . import families, registry
from ._layers import ResNetStage
from .checkpoints import file_sha256
from .outputs import check_output, save_atomic
from .resnet_rs import ResNetStem

# timm's pretrained_cfg mean/std of the weights in PRETRAINED_TAGS (timm's IMAGENET_DEFAULT_MEAN/STD);
# tests/test_pretrained.py checks them against timm. YOLOv5 feeds RGB in [0, 1], as timm's transforms before
# normalising.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRETRAINED_TAGS = {'res2net50d': 'res2net50d.in1k', 'resnest50d': 'resnest50d.in1k',
                   'resnetrs50': 'resnetrs50.tf_in1k'}  # timm / Hugging Face hub names of the ImageNet weights

CLASSIFIER = 'fc.'  # timm ResNet head: global pool (no weights) + fc; not part of the backbone
FEATURE_LAYERS = (2, 3, 4)  # YAML layers whose outputs are timm's stride 8/16/32 features (out_indices 2, 3, 4)
_LAYER = re.compile(r'layer(\d+)\.(\d+)\.(.+)')


class BackboneWeightsError(ValueError):
    """A weights file that cannot initialise the YAML's backbone; ``str(e)`` names the file, what was expected,
    what was found and the fix."""


# ------------------------------------------------------------------------------------ the families' timm remaps
def stage_blocks() -> dict:
    """``{YAML name: BlockSpec}`` of the registered pretrained-backbone stages (a ``ResNetStage`` with a timm remap,
    ``timm_keys``, set beside it in its family's module), in registry order."""
    return {n: s for n, s in registry.registered().items()
            if issubclass(s.module, ResNetStage) and getattr(s.module, 'timm_keys', None)}


def timm_model(spec) -> str:
    """The timm model of a stage block's family (``Family.timm`` of its row); the block's name without one."""
    row = next((f for f in families.FAMILIES if f.key == spec.family), None)
    return row.timm if row is not None and row.timm else spec.name


# ----------------------------------------------------------------------------------------------- reading a file
def read_state_dict(path) -> dict:
    """The tensors of a timm checkpoint file: ``{name: tensor}``.

    ``.safetensors`` is read with safetensors; anything else with ``torch.load(weights_only=True)`` (a plain state
    dict, or one nested under ``state_dict``/``model``/``state_dict_ema``/``model_ema``; a ``module.`` prefix, as
    DataParallel writes it, is removed). Raises :class:`BackboneWeightsError` naming the file otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise BackboneWeightsError(f'{path}: no such file. Fix: give the timm weights file with --weights '
                                   f'(docs/pretrained.md says how to get one)')
    try:
        if path.suffix == '.safetensors':
            from safetensors.torch import load_file  # noqa: PLC0415  (comes with timm; only .safetensors need it)
            obj = load_file(str(path), device='cpu')
        else:
            obj = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # any reader error becomes one message naming the file
        raise BackboneWeightsError(
            f'{path} ({path.stat().st_size} bytes) cannot be read as a tensor file: {type(e).__name__}: '
            f'{str(e).splitlines()[0] if str(e) else ""}. Expected a timm state dict saved with torch.save or '
            f'safetensors (loaded with weights_only=True: a file that pickles other objects, such as a YOLOv5 '
            f'checkpoint or a training checkpoint with its arguments, is refused). Fix: save only the state dict, '
            f'e.g. torch.save(model.state_dict(), "model.pth")') from e
    for key in ('state_dict', 'model', 'state_dict_ema', 'model_ema'):
        if isinstance(obj, dict) and not _all_tensors(obj) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not _all_tensors(obj):
        what = (f'a dict with keys {sorted(map(str, obj))[:6]}' if isinstance(obj, dict) else f'a {type(obj).__name__}')
        raise BackboneWeightsError(f'{path} holds {what}, not a state dict of tensors. Expected a timm model '
                                   f'state dict (keys such as conv1.0.weight, layer1.0.conv1.weight)')
    if all(k.startswith('module.') for k in obj):
        obj = {k[len('module.'):]: v for k, v in obj.items()}
    return dict(obj)


def _all_tensors(d: dict) -> bool:
    return all(isinstance(v, torch.Tensor) for v in d.values())


# ---------------------------------------------------------------------------------------- the YAML's backbone
@dataclass(frozen=True)
class Backbone:
    """What a YAML model's pretrained backbone is: stem (layer 0) and stages (layers 1..len(depths))."""

    stage: str  # YAML name of the stage blocks: a key of stage_blocks()
    depths: tuple  # blocks per stage
    replace_pool: bool  # stem pool is a conv (resnetrs) rather than a max-pool
    timm: str  # timm model of the family (families.py), e.g. 'res2net50d'

    @property
    def layers(self) -> int:
        """Number of YAML layers the backbone spans (stem + stages): ``--freeze`` this many freezes all of it."""
        return 1 + len(self.depths)

    def describe(self) -> dict:
        return {'stem': 'deep 3x3 stem (conv1.0/conv1.3/conv1.6)',
                'stem pool': 'a 3x3 stride-2 conv (maxpool.0)' if self.replace_pool else 'max-pool (no weights)',
                'blocks': stage_blocks()[self.stage].module.timm_block, 'stages': '-'.join(map(str, self.depths)),
                'shortcut': 'avg-pool + 1x1 (ResNet-D: downsample.1)'}

    def name(self) -> str:
        stages = '-'.join(map(str, self.depths))
        return self.timm if self.depths == (3, 4, 6, 3) else f'{self.stage} network with stages {stages}'


def _no_layout(where, found) -> BackboneWeightsError:
    return BackboneWeightsError(
        f'{where}: no pretrained-backbone layout (layer 0 ResNetStem, then stage blocks {", ".join(stage_blocks())}); '
        f'its first layers are {found}. Fix: use models_yaml/yolov5m-<timm name>.yaml '
        f'({", ".join(f.timm for f in families.FAMILIES if f.timm)})')


def backbone_of_yaml(cfg) -> Backbone:
    """The pretrained backbone a model YAML describes, read from the file without building the model (so that a
    weights file of another architecture is refused in a second); BackboneWeightsError if it has none."""
    try:
        rows = list((yaml.safe_load(Path(cfg).read_text()) or {}).get('backbone') or [])
        names = [r[2] for r in rows]
    except (OSError, yaml.YAMLError, TypeError, IndexError, AttributeError) as e:
        raise BackboneWeightsError(f'{cfg}: cannot read it as a YOLOv5 model YAML ({type(e).__name__}: {e})') from e
    known, stages = stage_blocks(), []
    for r in rows[1:]:
        if r[2] not in known:
            break
        stages.append(r)
    kinds = {r[2] for r in stages}
    if not names or names[0] != 'ResNetStem' or not stages or len(kinds) != 1:
        raise _no_layout(cfg, ', '.join(map(str, names[:6])))
    stem_args, stage = list(rows[0][3]), kinds.pop()
    return Backbone(stage, tuple(int(r[3][1]) if len(r[3]) > 1 else 1 for r in stages),
                    bool(stem_args[2]) if len(stem_args) > 2 else False, timm_model(known[stage]))


def backbone_of(model) -> Backbone:
    """The pretrained backbone of a YOLOv5 ``Model`` built from a backbone YAML; BackboneWeightsError if it has none
    (layer 0 must be a ``ResNetStem``, the following layers stage blocks of one family)."""
    layers, known, stages = list(model.model), stage_blocks(), []
    for m in layers[1:]:
        if not isinstance(m, ResNetStage):
            break
        stages.append(m)
    kinds = {type(s).__name__ for s in stages}
    if not isinstance(layers[0], ResNetStem) or not stages or len(kinds) != 1 or not kinds <= set(known):
        raise _no_layout(getattr(model, 'yaml_file', 'the model'), ', '.join(type(m).__name__ for m in layers[:6]))
    stage = kinds.pop()
    return Backbone(stage, tuple(len(s) for s in stages), not isinstance(layers[0].pool, nn.MaxPool2d),
                    timm_model(known[stage]))


def describe_state_dict(sd: dict) -> dict:
    """What a ResNet-family state dict is, in the terms of :meth:`Backbone.describe` (for error messages)."""
    if 'conv1.0.weight' in sd and 'conv1.6.weight' in sd:
        stem = 'deep 3x3 stem (conv1.0/conv1.3/conv1.6)'
    elif 'conv1.weight' in sd:
        stem = f'{"x".join(map(str, sd["conv1.weight"].shape[-2:]))} single-conv stem (conv1.weight)'
    else:
        stem = 'no ResNet stem (no conv1.*)'
    b = {k[len('layer1.0.'):] for k in sd if k.startswith('layer1.0.')}
    ours = (s.module for s in stage_blocks().values())  # each stage block's marker prefixes (its family's module)
    kind = next((m.timm_block for m in ours if all(any(k.startswith(p) for k in b) for p in m.timm_marker)), None)
    if kind:
        blocks = kind
    elif 'conv3.weight' in b:
        blocks = 'plain bottleneck (ResNet-50 style, no SE)'
    elif 'conv2.weight' in b:
        blocks = 'basic block (ResNet-18/34 style)'
    else:
        blocks = 'none recognised (no layer1.0.*)'
    depth = {}
    for k in sd:
        m = _LAYER.match(k)
        if m:
            depth[int(m.group(1))] = max(depth.get(int(m.group(1)), 0), int(m.group(2)) + 1)
    stages = '-'.join(str(depth[i]) for i in sorted(depth)) if depth else 'none (no layer<k>.* keys)'
    if any(k.startswith('layer2.0.downsample.1.') for k in sd):
        shortcut = 'avg-pool + 1x1 (ResNet-D: downsample.1)'
    elif any(k.startswith('layer2.0.downsample.0.') for k in sd):
        shortcut = 'strided 1x1 (downsample.0)'
    else:
        shortcut = 'none found'
    pool = 'a 3x3 stride-2 conv (maxpool.0)' if 'maxpool.0.weight' in sd else 'max-pool (no weights)'
    return {'stem': stem, 'stem pool': pool, 'blocks': blocks, 'stages': stages, 'shortcut': shortcut}


def yolo_key(timm_key: str, backbone: Backbone) -> str | None:
    """Our state-dict key (``model.<layer>.<name>``) of a timm backbone key; None if it has no place."""
    m = _LAYER.match(timm_key)
    if m:
        k, j, rest = int(m.group(1)), m.group(2), m.group(3) + '.'
        if not 1 <= k <= len(backbone.depths):
            return None
        mapping, prefix = stage_blocks()[backbone.stage].module.timm_keys, f'model.{k}.{j}.'
    else:
        mapping, prefix, rest = ResNetStem.timm_keys, 'model.0.', timm_key + '.'
    hits = [p for p in mapping if rest.startswith(p)]
    if not hits:
        return None
    p = max(hits, key=len)
    return (prefix + mapping[p] + rest[len(p):])[:-1]


# ------------------------------------------------------------------------------------------------ the transfer
def check_architecture(bb: Backbone, sd: dict, source: str, yaml_name: str) -> None:
    """BackboneWeightsError unless the state dict ``sd`` has the stem, stem pool, block type, stage depths and
    shortcut of ``bb``; the message lists each field that differs, expected and found."""
    want, found = bb.describe(), describe_state_dict(sd)
    diff = [k for k in want if want[k] != found[k]]
    if diff:
        rows = '\n'.join(f'  {k}: expected {want[k]}; found {found[k]}' for k in diff)
        raise BackboneWeightsError(
            f'{source}: not a timm {bb.name()} checkpoint, which {yaml_name} needs:\n{rows}\n'
            f'Fix: pass the {bb.timm} weights (docs/pretrained.md), or the YAML of the model the file holds')


def load_backbone(model, sd: dict, source='the weights file', mean=IMAGENET_MEAN, std=IMAGENET_STD) -> dict:
    """Place every backbone tensor of the timm state dict ``sd`` into ``model`` (built from a backbone YAML) and
    fold the input normalisation ``(x - mean) / std`` into its stem. Checks everything before changing anything.

    Returns a summary ``{'timm', 'placed', 'skipped', 'backbone_tensors', 'freeze_backbone'}``: tensors placed,
    classifier keys skipped, backbone state-dict entries (with the stem's ``mean``), YAML layers of the backbone.
    BN ``num_batches_tracked`` counters the file lacks are left as they are. Raises :class:`BackboneWeightsError`
    for a file of another architecture (expected and found, field by field), a tensor without a place, a place
    the file leaves empty, or a shape mismatch; each names ``source`` and the tensor.
    """
    bb = backbone_of(model)
    check_architecture(bb, sd, source, _yaml_name(model))
    ours = model.state_dict()
    layers = tuple(f'model.{i}.' for i in range(bb.layers))
    targets = {k for k in ours if k.startswith(layers)} - {'model.0.mean'}  # the mean is set by the fold below
    skipped = sorted(k for k in sd if k.startswith(CLASSIFIER))
    placed = {}
    for k, v in sd.items():
        if k.startswith(CLASSIFIER):
            continue
        y = yolo_key(k, bb)
        if y is None or y not in targets:
            raise BackboneWeightsError(
                f'{source}: tensor {k} {tuple(v.shape)} has no place in the {bb.name()} backbone of '
                f'{_yaml_name(model)}' + (f' (it would be {y})' if y else '') +
                '. Every backbone tensor must be used; a file with extra or renamed tensors is not the expected '
                'model. Fix: pass the unmodified timm state dict of ' + bb.timm)
        if tuple(v.shape) != tuple(ours[y].shape):
            raise BackboneWeightsError(
                f'{source}: tensor {k} has shape {tuple(v.shape)}, but {y} of {_yaml_name(model)} has '
                f'{tuple(ours[y].shape)}: the file is another variant (width/scale/radix) than {bb.name()}')
        placed[y] = (k, v)
    # BN counters matter only to momentum=None training; a file without them (some converted checkpoints) is fine
    missing = sorted(k for k in targets - set(placed) if not k.endswith('.num_batches_tracked'))
    if missing:
        raise BackboneWeightsError(
            f'{source}: no tensor for {len(missing)} backbone entries of {_yaml_name(model)}, e.g. '
            f'{", ".join(missing[:4])}: the file is incomplete or another variant than {bb.name()}')
    with torch.no_grad():
        for y, (_, v) in placed.items():
            ours[y].copy_(v.to(ours[y].dtype))
        fold_normalisation(model.model[0], mean, std)
    return {'timm': bb.timm, 'placed': len(placed), 'skipped': skipped, 'backbone_tensors': len(targets) + 1,
            'freeze_backbone': bb.layers}


def fold_normalisation(stem, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
    """Make ``stem`` (a ResNetStem whose weights expect ``(x - mean) / std``) take ``x`` itself: ``stem.mean =
    mean`` is subtracted before the first conv, whose weights are divided by ``std`` per input channel.

    Exact, borders included: the first conv zero-pads ``x - mean``, which is zero padding of ``(x - mean) / std``
    times ``std``. (Folding the mean into a bias instead would add it where the window covers padding too.)
    Call once per loaded set of weights."""
    c1 = stem.conv1.conv.in_channels
    mean_t = torch.tensor(mean, dtype=torch.float64)
    std_t = torch.tensor(std, dtype=torch.float64)
    if mean_t.shape != (c1,) or std_t.shape != (c1,) or not bool((std_t > 0).all()):
        raise BackboneWeightsError(f'input normalisation needs {c1} mean and {c1} positive std values, '
                                   f'got mean={tuple(mean)}, std={tuple(std)}')
    with torch.no_grad():
        w = stem.conv1.conv.weight
        w.copy_((w.double() / std_t.view(1, -1, 1, 1)).to(w.dtype))
        stem.mean.copy_(mean_t.view(1, -1, 1, 1).to(stem.mean.dtype))


def _yaml_name(model) -> str:
    f = getattr(model, 'yaml_file', '')
    return Path(f).name if f else 'the YAML'


# ----------------------------------------------------------------------------------- features and the checkpoint
def backbone_features(model, x) -> list:
    """Outputs of the YAML layers ``FEATURE_LAYERS`` (stride 8, 16, 32: timm ``features_only=True,
    out_indices=(2, 3, 4)``) for an input ``x`` in YOLOv5's convention (RGB in [0, 1])."""
    out = []
    for i, m in enumerate(model.model[:max(FEATURE_LAYERS) + 1]):
        x = m(x)
        if i in FEATURE_LAYERS:
            out.append(x)
    return out


def build_model(cfg, nc: int | None = None, quiet: bool = True):
    """``models.yolo.Model`` from a YAML (YOLOv5's layer table not printed when ``quiet``)."""
    level = LOGGER.level
    if quiet:
        LOGGER.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            return Model(str(cfg), ch=3, nc=nc)
    finally:
        LOGGER.setLevel(level)


def data_names(data) -> list:
    """Class names of a YOLOv5 data yaml (``names`` as a list or {index: name}); nothing is checked or downloaded."""
    d = yaml.safe_load(Path(data).read_text()) or {}
    names = d.get('names')
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not names:
        names = [str(i) for i in range(int(d['nc']))] if 'nc' in d else None
    if not names:
        raise BackboneWeightsError(f'{data}: no "names" or "nc" in this data yaml')
    return [str(n) for n in names]


def start_checkpoint(cfg, weights, nc: int | None = None, names: list | None = None, mean=IMAGENET_MEAN,
                     std=IMAGENET_STD) -> tuple[dict, dict]:
    """Build the YAML ``cfg``, load the timm ``weights`` into its backbone (:func:`load_backbone`) and return
    ``(checkpoint, summary)``; nothing is written.

    The checkpoint is what train.py's loading reads: ``ckpt['model']`` (the model in float32, with ``yaml``,
    ``names`` and ``nc``; train.py calls ``.float().state_dict()`` and keeps the entries that match its own model),
    ``epoch=-1``, no optimizer/EMA, and ``pretrained`` recording the source. The summary is
    :func:`load_backbone`'s with ``source``, ``sha256``, ``mean``, ``std``, ``cfg`` and ``nc``.
    """
    weights = Path(weights)
    if names is not None and nc is not None and len(names) != nc:
        raise BackboneWeightsError(f'--nc {nc} but the data yaml has {len(names)} class names')
    nc = len(names) if names is not None else nc
    bb = backbone_of_yaml(cfg)  # a YAML without the layout fails before the (large) weights file is read
    sd = read_state_dict(weights)
    check_architecture(bb, sd, str(weights), Path(cfg).name)  # another model's file fails before the build
    model = build_model(cfg, nc=nc)
    if backbone_of(model) != bb:
        raise BackboneWeightsError(f'{cfg}: the built model\'s backbone {backbone_of(model)} differs from what the '
                                   f'YAML rows say ({bb}); write the stem and stage arguments out in full')
    summary = load_backbone(model, sd, source=str(weights), mean=mean, std=std)
    if names is not None:
        model.names = list(names)
    model.float()
    summary.update(source=str(weights), sha256=file_sha256(weights), mean=tuple(mean), std=tuple(std),
                   cfg=str(cfg), nc=int(model.yaml['nc']))
    ckpt = {'epoch': -1, 'best_fitness': None, 'model': model, 'ema': None, 'updates': None, 'optimizer': None,
            'opt': None, 'git': None, 'date': datetime.now().isoformat(),
            'pretrained': {k: summary[k] for k in ('timm', 'source', 'sha256', 'placed', 'skipped', 'mean', 'std')}}
    return ckpt, summary


def init_backbone(cfg, weights, out, nc: int | None = None, names: list | None = None, mean=IMAGENET_MEAN,
                  std=IMAGENET_STD, exist_ok: bool = False) -> dict:
    """:func:`start_checkpoint` written to ``out`` for ``train.py --weights out``; returns the summary (with
    ``out``). ``out`` is checked first (:func:`extensions.outputs.check_output`: an existing file needs
    ``exist_ok``; a directory or one of the inputs is refused with ``OutputPathError``) and written atomically,
    only once every check passed."""
    check_output(out, inputs=(weights, cfg), exist_ok=exist_ok)
    ckpt, summary = start_checkpoint(cfg, weights, nc=nc, names=names, mean=mean, std=std)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_atomic(ckpt, out)
    return dict(summary, out=str(out))


