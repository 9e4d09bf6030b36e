"""Blocks and backbone stages against timm's: each registered block that has a timm counterpart, and each stage of
the pretrained-backbone YAMLs against timm's ``layerN``, timed in alternating pairs with the same weights.

Blocks are built with the same activation on both sides (ReLU; timm's blocks make it in-place, ours do too), at
ResNet-50 widths; stages as the YAMLs build them (``Res2NetStage(c1, c2, n, stride)``, ...) against
``timm.create_model(<family's timm model>).layer<k>``. Weights are copied from timm with each stage's
``timm_keys`` (the key map :mod:`extensions.pretrained` uses, the blocks' too) and the outputs compared before
timing, so both sides compute the same function.

Two passes per case: inference (eval, ``inference_mode``, ``infer_batch``) and training (forward and backward of
the output sum, gradients reset each step, ``train_batch``); on CUDA both under fp16 autocast (AMP). Each pass is
``pairs`` timed (ours, timm) pairs whose order alternates; the ratio ours/timm is the median of the per-pair
ratios, with their quartiles. Times are wall time (CUDA: synchronised), or with ``clock='cpu'`` the process's CPU
time, which other processes on a shared CPU disturb far less. :func:`run` takes the frozen
:class:`~.settings.BlocksSettings` (which refuses a bad value when made) and returns a :class:`~.results.BlocksResult`;
it prints nothing and raises ``ValueError`` on a CUDA device torch cannot see or an unknown case name (naming it
and the fix). The benchmark's blocks part
(``scripts/benchmark.py --only blocks``, :func:`.parts.run_blocks`) and ``scripts/dev/blocks_vs_timm.py`` call it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn as nn

from .results import BlockCase, BlockPass, BlocksResult
from .settings import BlocksSettings

PASSES = ('inference', 'training')
KINDS = ('block', 'stage')
STAGES = {1: (64, 256, 3, 1), 2: (256, 512, 4, 2), 3: (512, 1024, 6, 2), 4: (1024, 2048, 3, 2)}  # c1, c2, n, s
STAGE_INPUT_STRIDE = {1: 4, 2: 4, 3: 8, 4: 16}  # input resolution / stage input size


# ---------------------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class _Case:
    kind: str
    name: str
    family: str
    make: Callable  # () -> (ours, timm module, key map of one block, stage?)
    shape: tuple  # (C, H, W)


def _timm():
    try:
        import timm
    except ImportError as e:
        raise ImportError('the block-vs-timm timing needs timm. Fix: pip install timm (requirements.txt lists it)') \
            from e
    return timm


def _ds(c1: int, c2: int, stride: int):
    from timm.models.resnet import downsample_avg
    return downsample_avg(c1, c2, 1, stride=stride) if stride > 1 or c1 != c2 else None


def _block_cases(s: BlocksSettings) -> list[_Case]:
    from timm.layers import SplitAttn, get_attn
    from timm.models.res2net import Bottle2neck as TBottle2neck
    from timm.models.resnest import ResNestBottleneck as TResNest
    from timm.models.resnet import Bottleneck as TBottleneck

    from ..res2net import Bottle2neck, Res2NetStage
    from ..resnest import ResNeStBottleneck, ResNeStStage, SplitAttention
    from ..resnet_rs import SEResNetDBottleneck, SEResNetDStage

    c, hw, relu = s.width, s.block_size, nn.ReLU
    se = get_attn('se')
    splat_keys = {'conv.': 'conv.conv.', 'bn0.': 'conv.bn.', 'fc1.': 'fc1.conv.', 'bn1.': 'fc1.bn.', 'fc2.': 'fc2.'}
    cases = []
    for tag, c1, stride in (('normal', c, 1), ('stage s2', c // 2, 2)):
        cases += [
            _Case('block', f'Bottle2neck {tag}', 'res2', lambda c1=c1, st=stride: (
                Bottle2neck(c1, c, True, 0.25, st, 26, 4, act=relu()),
                TBottle2neck(c1, c // 4, st, _ds(c1, c, st), base_width=26, scale=4, norm_layer=nn.BatchNorm2d),
                Res2NetStage.timm_keys, False), (c1, hw, hw)),
            _Case('block', f'ResNeStBottleneck {tag}', 'resnest', lambda c1=c1, st=stride: (
                ResNeStBottleneck(c1, c, True, 0.25, st, 2, 1, 64, True, False, act=relu()),
                TResNest(c1, c // 4, st, _ds(c1, c, st), radix=2, cardinality=1, base_width=64, avd=True),
                ResNeStStage.timm_keys, False), (c1, hw, hw)),
            _Case('block', f'SEResNetDBottleneck {tag}', 'serd', lambda c1=c1, st=stride: (
                SEResNetDBottleneck(c1, c, True, 0.25, st, 0.25, act=relu()),
                TBottleneck(c1, c // 4, st, _ds(c1, c, st), attn_layer=partial(se, rd_ratio=0.25)),
                SEResNetDStage.timm_keys, False), (c1, hw, hw)),
        ]
    gw = c // 4
    cases.append(_Case('block', 'SplitAttention', 'resnest', lambda: (
        SplitAttention(gw, gw, 3, 1, 1, 2, act=relu()),
        SplitAttn(gw, gw, 3, 1, radix=2, norm_layer=nn.BatchNorm2d),
        splat_keys, False), (gw, hw, hw)))
    return cases


def _stage_cases(s: BlocksSettings) -> list[_Case]:
    """Every registered pretrained-backbone stage (a ``ResNetStage`` with ``timm_keys``) of a family with a timm
    model, at ResNet-50's stage shapes, against that model's ``layer<k>``."""
    from ..pretrained import stage_blocks, timm_model

    timm = _timm()
    cases = []
    for spec in stage_blocks().values():
        name = timm_model(spec)
        if name == spec.name:  # its family names no timm model
            continue
        for k in s.stages:
            c1, c2, n, stride = STAGES[k]
            hw = s.image_size // STAGE_INPUT_STRIDE[k]

            def make(cls=spec.module, name=name, k=k, c1=c1, c2=c2, n=n, stride=stride):
                net = timm.create_model(name, pretrained=False)
                return cls(c1, c2, n, stride), getattr(net, f'layer{k}'), cls.timm_keys, True

            cases.append(_Case('stage', f'{name} layer{k}', spec.family, make, (c1, hw, hw)))
    return cases


def _mapped(sd: dict, mapping: dict, stage: bool) -> dict:
    """timm's state dict under our names (``<j>.`` block index kept for a stage); KeyError names an unmapped key."""
    out = {}
    for k, v in sd.items():
        head, rest = (k.split('.', 1)[0] + '.', k.split('.', 1)[1]) if stage else ('', k)
        hits = [p for p in mapping if rest.startswith(p)]
        if not hits:
            raise KeyError(f'timm key {k!r} has no place in our module (timm_keys of the stage class)')
        p = max(hits, key=len)
        out[head + mapping[p] + rest[len(p):]] = v
    return out


# --------------------------------------------------------------------------------------------------- timing
def _check(s: BlocksSettings) -> torch.device:
    """The device of ``s`` (its other values are checked by BlocksSettings itself)."""
    dev = torch.device(s.device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f"BlocksSettings.device={s.device!r}: this torch sees no CUDA device. Fix: device='cpu', "
                         'or run on a machine with a GPU')
    return dev


def _runner(m: nn.Module, x: torch.Tensor, train: bool, amp: bool):
    dtype = torch.float16 if amp else None
    params = list(m.parameters())

    def infer():
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=dtype, enabled=amp):
            m(x)

    def step():
        for p in params:
            p.grad = None
        with torch.autocast(x.device.type, dtype=dtype, enabled=amp):
            y = m(x)
        y.float().sum().backward()

    return step if train else infer


def _pairs(fa, fb, pairs: int, warmup: int, sync, clock=time.perf_counter) -> tuple[list, list]:
    """(times of a, times of b): warm-up, then ``pairs`` pairs, a first in even pairs and b first in odd ones."""
    def timed(f):
        sync()
        t0 = clock()
        f()
        sync()
        return clock() - t0

    for _ in range(warmup):
        fa()
        fb()
    ta, tb = [], []
    for i in range(pairs):
        if i % 2:
            tb.append(timed(fb))
            ta.append(timed(fa))
        else:
            ta.append(timed(fa))
            tb.append(timed(fb))
    return ta, tb


def _quartiles(v: list) -> tuple[float, float]:
    if len(v) < 2:
        return v[0], v[0]
    q = statistics.quantiles(v, n=4, method='inclusive')
    return q[0], q[2]


def _time_case(case: _Case, s: BlocksSettings, dev: torch.device) -> BlockCase:
    torch.manual_seed(s.seed)
    ours, ref, mapping, stage = case.make()
    with torch.no_grad():  # non-trivial BN (timm zero-initialises each block's last BN: the branch would vanish)
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    ours.load_state_dict(_mapped(ref.state_dict(), mapping, stage), strict=True)
    ours, ref = ours.to(dev).eval(), ref.to(dev).eval()
    g = torch.Generator().manual_seed(s.seed)
    x1 = torch.randn(s.infer_batch, *case.shape, generator=g).to(dev)
    with torch.inference_mode():
        want = ref(x1.clone()).float()
        diff = (ours(x1.clone()).float() - want).abs().max().item()
    if not diff <= 1e-4 * max(1.0, want.abs().max().item()):  # float32 rounding; also refuses NaN
        raise RuntimeError(f'{case.name}: our output differs from timm {type(ref).__name__} by {diff:.3g} with copied '
                           'weights; the two sides would not time the same function')
    amp = s.amp and dev.type == 'cuda'
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    xt = torch.randn(s.train_batch, *case.shape, generator=g).to(dev).requires_grad_()
    passes = []
    for name, batch, x in (('inference', s.infer_batch, x1), ('training', s.train_batch, xt)):
        train = name == 'training'
        ours.train(train)
        ref.train(train)
        ta, tb = _pairs(_runner(ours, x, train, amp), _runner(ref, x, train, amp), s.pairs, s.warmup, sync,
                        time.process_time if s.clock == 'cpu' else time.perf_counter)
        r = [a / b for a, b in zip(ta, tb)]
        q1, q3 = _quartiles(r)
        passes.append(BlockPass(name, batch, statistics.median(ta) * 1e3, statistics.median(tb) * 1e3,
                                 statistics.median(r), q1, q3, s.pairs))
    return BlockCase(case.kind, case.name, case.family, type(ours).__name__,
                      f'{type(ref).__module__}.{type(ref).__name__}', case.shape, diff, tuple(passes))


def cases(s: BlocksSettings) -> list[str]:
    """The names of the cases ``s`` selects (no timing)."""
    return [c.name for c in _select(s)]


def families(s: BlocksSettings) -> list[str]:
    """The family keys (families.py) that have a case among those ``s`` selects."""
    return sorted({c.family for c in _select(s)})


def _select(s: BlocksSettings) -> list[_Case]:
    _timm()
    all_ = (_block_cases(s) if s.blocks else []) + (_stage_cases(s) if s.stages else [])
    if not s.only:
        return all_
    known = {c.name for c in all_} | {c.family for c in all_}
    unknown = [o for o in s.only if o not in known]
    if unknown:
        raise ValueError(f'BlocksSettings.only: unknown {", ".join(map(repr, unknown))}; choose from '
                         f'{", ".join(sorted(known))}')
    return [c for c in all_ if c.name in s.only or c.family in s.only]


def run(s: BlocksSettings, progress=None) -> BlocksResult:
    """Time every selected case (see the module docstring). ``progress``: an optional tqdm-like bar (``total``,
    ``refresh``, ``set_description``, ``update``), one step per case. Raises ValueError on a bad setting,
    ImportError without timm, RuntimeError if a case's outputs differ from timm's."""
    dev = _check(s)
    timm = _timm()
    selected = _select(s)
    threads = torch.get_num_threads()
    bench = torch.backends.cudnn.benchmark
    notes = []
    try:
        if s.threads is not None:
            torch.set_num_threads(s.threads)
        if dev.type == 'cuda':
            torch.backends.cudnn.benchmark = True
            notes.append('cudnn.benchmark on' + (', fp16 autocast' if s.amp else ', float32'))
        if progress is not None:
            progress.total = len(selected)
            progress.refresh()
        results = []
        for c in selected:
            if progress is not None:
                progress.set_description(f'blocks: {c.name}')
            results.append(_time_case(c, s, dev))
            if progress is not None:
                progress.update(1)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = bench
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'
    return BlocksResult(name, used, torch.__version__, timm.__version__, tuple(results), tuple(notes))
