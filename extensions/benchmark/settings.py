"""The settings of a benchmark run, built once (``scripts/benchmark.py`` makes them from its options) and frozen:
one class per part (:class:`SpeedSettings`: cost, latency and training timing; :class:`DeploySettings`: the
runtimes latency is timed in; :class:`AccuracySettings`: training over seeds; :class:`BlocksSettings`: blocks and
stages against timm's; :class:`GpuSettings`: models against their plain reference on a GPU), each checking its
own values. Bad settings raise :class:`BenchmarkError` (a ValueError) naming the setting; only scripts turn it
into an exit status. Standard library only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from .cases import CASES, DEFAULT_CASES
from .targets import ALL_RUNTIMES

ROOT = Path(__file__).resolve().parents[2]  # the overlay's repository root
BASE = ROOT / 'yolov5'  # the pinned YOLOv5
DEFAULT_HYP = ROOT / 'scripts' / 'hyps' / 'hyp.short-cpu.yaml'
MIN_SEEDS = 3  # fewer cannot tell a block from run-to-run noise (docs/benchmark_notes.md)
ACC_EPOCHS = 20  # the committed setting: chosen from measured CPU time per epoch (docs/benchmark_notes.md)
PROFILES = ('missed', 'all', 'off')
RUNTIMES = tuple(k for k, _ in ALL_RUNTIMES)  # torch, onnx, openvino-f32, openvino, openvino-int8: timed in this order


class BenchmarkError(ValueError):
    """A benchmark cannot run as asked (bad settings, a missing file or package, a failed training run); the
    message names the offending thing and the fix."""


class AccuracyFailed(BenchmarkError):
    """Runs of the accuracy part failed or are missing (fail closed: no summary of the seeds that finished);
    failures name model, case and seed with the run's log; the finished runs stay in project, to be reused."""

    def __init__(self, failures: list[str], project: Path):
        self.failures, self.project = failures, project
        super().__init__(f'{len(failures)} accuracy run(s) failed or missing, so no mean or verdict is reported:\n  '
                         + '\n  '.join(failures) + f'\nThe finished runs are kept in {project}.')


def _tuples(obj) -> None:
    """A frozen settings object's list values as tuples (given from argparse lists)."""
    for f in fields(obj):
        if isinstance(getattr(obj, f.name), list):
            object.__setattr__(obj, f.name, tuple(getattr(obj, f.name)))


def device_name(device: str) -> str:
    """cpu, cuda[:i]; a bare GPU index (train.py's spelling) becomes cuda:i."""
    return f'cuda:{device}' if device.isdigit() else device


@dataclass(frozen=True)
class SpeedSettings:
    """The timing part: latency at batch 1 (img, timed pairs, warm-up pairs), training throughput, the guard
    against other processes (max_other cores, max_wait minutes in all), profiles of missed targets."""

    device: str = 'cpu'
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    img: int = 640
    runs: int = 20
    warmup: int = 3
    train_img: int = 320
    train_batch: int = 8
    train_iters: int = 6
    train_warmup: int = 2
    max_other: float = 0.2
    max_wait: float = 60.0
    profile: str = 'missed'  # profile the models that miss a speed target, all of them, or none
    profile_iters: int = 5

    def __post_init__(self):
        object.__setattr__(self, 'device', device_name(self.device))
        if self.profile not in PROFILES:
            raise BenchmarkError(f'profile {self.profile!r}: one of {", ".join(PROFILES)}')
        for name in ('threads', 'img', 'runs', 'train_img', 'train_batch', 'train_iters', 'profile_iters'):
            if getattr(self, name) < 1:
                raise BenchmarkError(f'{name} {getattr(self, name)}: at least 1')

    @property
    def cuda(self) -> bool:
        return self.device.startswith('cuda')


@dataclass(frozen=True)
class DeploySettings:
    """The runtimes latency is timed in, in RUNTIMES' order. given: asked for by name (a runtime this environment
    lacks is then an error naming the fix; by default it is left out with a note)."""

    runtimes: tuple[str, ...] = RUNTIMES
    given: bool = False

    def __post_init__(self):
        _tuples(self)
        bad = [k for k in self.runtimes if k not in RUNTIMES]
        if bad:
            raise BenchmarkError(f'runtimes {" ".join(bad)}: not one of {", ".join(RUNTIMES)}')
        object.__setattr__(self, 'runtimes', tuple(dict.fromkeys(self.runtimes)))


@dataclass(frozen=True)
class AccuracySettings:
    """The accuracy part: every model trained by yolov5/train.py once per seed (seed .. seed+seeds-1) in each case
    of cases, on each dataset of data (demo, shapes, coco128 or data yamls), at scales ('' or 'DATA:SCALE'
    items; empty: the smallest scale of the run), with one recipe (epochs, optimizer, hyp, batch, img: None =
    the dataset's default). The fine-tuned cases start from plain checkpoints trained once on pretrain_data for
    pretrain_epochs (None: 2 x epochs), or from pretrained ('[SCALE=]CKPT' items). Runs go under project; reuse:
    take over a finished run whose settings and model are unchanged."""

    device: str = 'cpu'
    seeds: int = MIN_SEEDS
    seed: int = 0
    epochs: int = ACC_EPOCHS
    optimizer: str = 'AdamW'
    data: tuple[str, ...] = ('demo',)
    scales: tuple[str, ...] = ()
    img: int | None = None
    batch: int = 16
    cases: tuple[str, ...] = DEFAULT_CASES
    pretrain_data: str = 'shapes'
    pretrain_epochs: int | None = None
    pretrained: tuple[str, ...] = ()
    hyp: str = str(DEFAULT_HYP)
    workers: int = 2
    project: str = str(ROOT / 'runs' / 'benchmark')
    reuse: bool = False
    min_seeds: int = MIN_SEEDS  # tests of the plumbing lower it to 2

    def __post_init__(self):
        _tuples(self)
        object.__setattr__(self, 'device', device_name(self.device))
        if self.seeds < max(2, self.min_seeds):
            raise BenchmarkError(f'seeds {self.seeds}: at least {MIN_SEEDS} (one or two runs per model cannot tell '
                                 'a block from run-to-run noise)')
        bad = [c for c in self.cases if c not in CASES]
        if bad:
            raise BenchmarkError(f'cases {" ".join(bad)}: not one of {", ".join(CASES)}')
        if self.epochs < 1:
            raise BenchmarkError(f'epochs {self.epochs}: at least 1')
        if self.pretrain_epochs is None:
            object.__setattr__(self, 'pretrain_epochs', 2 * self.epochs)
        hyp = Path(self.hyp)
        object.__setattr__(self, 'hyp', str(hyp.resolve() if hyp.is_file() else ROOT / hyp))

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds))


BLOCK_STAGES = (1, 2, 3, 4)  # ResNet-50's layer1..layer4
BLOCKS_QUICK = {'width': 64, 'block_size': 8, 'image_size': 64, 'stages': (2,), 'train_batch': 2, 'pairs': 2,
                'warmup': 0}  # --quick: a smoke test of the plumbing, not a timing


@dataclass(frozen=True)
class BlocksSettings:
    """The blocks part (:mod:`.reference`): each block and backbone stage with a timm counterpart against timm's,
    same weights, in alternating pairs. Passes: inference at infer_batch, training at train_batch; blocks at
    width output channels and block_size x block_size, stages (layerN, empty: none) at image_size input; blocks:
    time the block cases; only: case names or family keys (empty: all); amp: fp16 autocast on CUDA; clock 'wall'
    or 'cpu' (the process's CPU time, CPU device only: robust to other processes); threads None: torch's."""

    device: str = 'cpu'
    threads: int | None = None
    infer_batch: int = 1
    train_batch: int = 8
    width: int = 512  # ResNet-50 layer2
    block_size: int = 28
    image_size: int = 224  # layer1 sees image_size / 4
    stages: tuple[int, ...] = BLOCK_STAGES
    blocks: bool = True
    pairs: int = 10
    warmup: int = 2
    amp: bool = True
    only: tuple[str, ...] = ()
    seed: int = 0
    clock: str = 'wall'

    def __post_init__(self):
        _tuples(self)
        object.__setattr__(self, 'device', device_name(str(self.device)))

        def bad(name, want):
            raise BenchmarkError(f'BlocksSettings.{name}={getattr(self, name)!r}: expected {want}')

        for name in ('infer_batch', 'train_batch', 'pairs', 'width', 'block_size', 'image_size'):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, 'a positive int')
        if not isinstance(self.warmup, int) or self.warmup < 0:
            bad('warmup', 'an int >= 0')
        if self.width % 64:
            bad('width', 'a multiple of 64 (the blocks take width / 4 hidden channels, a multiple of 16)')
        if self.image_size % 32:
            bad('image_size', 'a multiple of 32 (layer4 sees image_size / 32)')
        if not all(k in BLOCK_STAGES for k in self.stages):
            bad('stages', f'a subset of {BLOCK_STAGES}')
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            bad('threads', 'None or a positive int')
        if not re.fullmatch(r'cpu|cuda(:\d+)?', self.device):
            bad('device', "'cpu', 'cuda', 'cuda:<i>' or a GPU index")
        if self.clock not in ('wall', 'cpu') or (self.clock == 'cpu' and self.device != 'cpu'):
            bad('clock', "'wall', or 'cpu' on the CPU device")


def blocks_settings(device: str = 'cpu', threads: int | None = None, pairs: int | None = None, clock: str = 'wall',
                    quick: bool = False) -> BlocksSettings:
    """The blocks part's settings from the benchmark's options (--quick: BLOCKS_QUICK, then pairs if given)."""
    extra = {**(BLOCKS_QUICK if quick else {}), **({'pairs': pairs} if pairs is not None else {})}
    return BlocksSettings(device=device, threads=threads, clock=clock, **extra)


GPU_PASSES = ('infer-b1', 'infer-b1-graph', 'infer-batch', 'train-deterministic', 'train-benchmark')
GPU_CUDA_ONLY = ('infer-b1-graph',)  # recorded as skipped on the CPU
GPU_REFERENCES = {'yolov5l': 'yolov5m', 'res2net50d': 'resnet50d', 'resnest50d': 'resnet50d',
                  'seresnet50': 'resnet50', 'resnetrs50': 'resnet50'}  # else yolov5<scale>-<suffix>: yolov5<scale>
GPU_MODELS = ('yolov5s-res2', 'yolov5s-resnest', 'yolov5s-serd', 'yolov5m-res2net50d', 'yolov5m-resnest50d',
              'yolov5m-resnetrs50', 'yolov5l', 'res2net50d', 'resnest50d', 'seresnet50', 'resnetrs50')
GPU_QUICK = {'img': 64, 'timm_img': 64, 'batch': 2, 'pairs': 1, 'warmup': 0,
             'models': ('yolov5n-res2', 'seresnet50')}  # --quick: a smoke test of the plumbing, not a timing
YOLO_NAME = re.compile(r'yolov5[nsmlx]-[\w.-]+')


def gpu_reference(model: str) -> str:
    """The plain model a GPU-part model is timed against: GPU_REFERENCES, else yolov5<scale>."""
    return GPU_REFERENCES.get(model) or model[:7]


@dataclass(frozen=True)
class GpuSettings:
    """The GPU part (:mod:`.gpu`): each model against its plain reference in alternating pairs, the passes of
    GPU_PASSES (batch 1 eager and as a CUDA graph, batch ``batch``, the AMP training step with train.py's
    determinism and with cudnn.benchmark); YOLOv5 models at img, timm models at timm_img; amp: fp16 autocast
    and GradScaler (CUDA only); threads None: torch's."""

    device: str = 'cuda'
    threads: int | None = None
    img: int = 640
    timm_img: int = 224
    batch: int = 32
    amp: bool = True
    pairs: int = 10
    warmup: int = 3
    passes: tuple[str, ...] = GPU_PASSES
    models: tuple[str, ...] = GPU_MODELS
    seed: int = 0

    def __post_init__(self):
        _tuples(self)
        object.__setattr__(self, 'device', device_name(str(self.device)))

        def bad(name, want):
            raise BenchmarkError(f'GpuSettings.{name}={getattr(self, name)!r}: expected {want}')

        if not re.fullmatch(r'cpu|cuda(:\d+)?', self.device):
            bad('device', "'cpu', 'cuda', 'cuda:<i>' or a GPU index")
        for name in ('img', 'timm_img', 'batch', 'pairs'):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, 'a positive int')
        for name in ('img', 'timm_img'):
            if getattr(self, name) % 32:
                bad(name, 'a multiple of 32 (the largest stride)')
        if not isinstance(self.warmup, int) or isinstance(self.warmup, bool) or self.warmup < 0:
            bad('warmup', 'an int >= 0')
        if not isinstance(self.amp, bool):
            bad('amp', 'True or False')
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            bad('threads', 'None or a positive int')
        if not self.passes or any(p not in GPU_PASSES for p in self.passes):
            bad('passes', f'some of {", ".join(GPU_PASSES)}')
        for m in self.models:
            if m not in GPU_REFERENCES and not YOLO_NAME.fullmatch(m):
                bad('models', f'names of {", ".join(GPU_MODELS)} or yolov5<scale>-<suffix> (plain YOLOv5 is the '
                              'reference, not a model)')
            if YOLO_NAME.fullmatch(m) and not (ROOT / 'models_yaml' / f'{m}.yaml').is_file():
                bad('models', f'a YAML models_yaml/{m}.yaml (no such file)')
        if not self.models:
            bad('models', 'at least one model')

    @property
    def cuda(self) -> bool:
        return self.device.startswith('cuda')


def gpu_settings(device: str = 'cuda', threads: int | None = None, pairs: int | None = None,
                 quick: bool = False) -> GpuSettings:
    """The GPU part's settings from the benchmark's options (--quick: GPU_QUICK, then pairs if given)."""
    extra = {**(GPU_QUICK if quick else {}), **({'pairs': pairs} if pairs is not None else {})}
    return GpuSettings(device=device, threads=threads, **extra)
