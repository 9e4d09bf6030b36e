"""What a benchmark run measures, as typed records: per model (:class:`Results`: cost, latency per runtime,
training, memory, profile), per part (:class:`SpeedResult`, :class:`AccuracyResult`, :class:`BlocksResult`,
:class:`GpuResult`) and per run (:class:`Report`, the whole of ``benchmark.json``: written with
:func:`dataclasses.asdict`, read back by :func:`from_dict`, so the JSON's schema is these classes'). Standard
library only: ``--report-only`` needs no torch.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

from extensions import families

from .settings import AccuracySettings, BlocksSettings, DeploySettings, GpuSettings, SpeedSettings


@dataclass
class Ratio:
    """Median and spread of per-pair ratios (ext / plain; plain itself: 1)."""

    median: float
    p25: float
    p75: float
    min: float
    max: float
    n: int


@dataclass
class Static:
    """Params of the fused model (and of the training model), GFLOPs at 640 and at the latency image size."""

    params: int
    params_train: int
    gflops: float
    gflops_img: float


@dataclass
class Cost:
    """Params and GFLOPs as a ratio to plain YOLOv5 of the same scale."""

    params_ratio: float
    gflops_ratio: float


@dataclass
class Timed:
    """Timed runs of a model (s). An extension model: its pairs' times, plain's times of the same pairs, how many
    pairs the guard against other processes discarded or kept although busy, and the per-pair ratio."""

    times: list[float] = field(default_factory=list)
    plain_times: list[float] | None = None
    discarded: int | None = None
    kept_busy: int | None = None
    ratio: Ratio | None = None


@dataclass
class Latency(Timed):
    """Batch-1 latency in one runtime; OpenVINO runtimes add the precision the model ran in, its executed nodes
    ({'layerType precision': n}), INT8's speed-up over f32 and, when profiled, per-node counters."""

    latency_ms: float | None = None
    percentiles_ms: dict | None = None  # p50, p95, p99 (ms), n
    gflops_per_s: float | None = None
    rate_ratio: float | None = None  # achieved GFLOP/s as a ratio to plain's
    precision: str | None = None
    nodes: dict | None = None
    speedup_vs_f32: float | None = None
    profile: dict | None = None


@dataclass
class Training(Timed):
    """Training iterations (timed pairs); throughput in images/s."""

    images_per_s: float | None = None


@dataclass
class Memory:
    """Peak memory growth of two training iterations (MB); error: the probe's last output line when it failed."""

    base_mb: float | None = None
    peak_mb: float | None = None
    delta_mb: float | None = None
    exact: bool | None = None
    error: list[str] | None = None


@dataclass
class Results:
    """Everything the speed part measured of one model; latency by runtime key, in the order measured."""

    static: Static | None = None
    cost: Cost | None = None
    latency: dict[str, Latency] = field(default_factory=dict)
    train: Training | None = None
    memory: Memory | None = None
    profile: dict | None = None  # PyTorch per-layer times and dominant ops (profiling.profile_pair)


@dataclass
class Entry:
    """One model of a run: a YAML ``yolov5<scale>[-<suffix>].yaml``. suffix: '' for plain YOLOv5; family: the key
    of the row of extensions.families whose suffix or variant suffix it is (None: plain, or no family's)."""

    name: str  # file stem, e.g. yolov5s-res2
    cfg: str
    scale: str
    suffix: str = ''
    family: str | None = None
    results: Results = field(default_factory=Results)

    @property
    def plain(self) -> bool:
        return not self.suffix

    @property
    def target_family(self) -> str | None:
        """Key of the family whose targets apply: set for a family's own YAMLs (``yolov5<scale>-<suffix>.yaml``),
        None for plain YOLOv5, a family's variants and YAMLs of no family."""
        if self.family is None:
            return None
        try:
            return self.family if families.by_key(self.family).suffix == self.suffix else None
        except ValueError:  # a family of an older run no longer in the table
            return None


@dataclass
class SpeedResult:
    """The conditions of the timing part: the runtimes timed, the load and the CPU others used, the minutes spent
    timing and waiting for a quiet machine, what was left out (notes), the OpenVINO version and CPU capabilities."""

    runtimes: list[str]
    load_start: tuple | None = None
    load_after_timing: tuple | None = None
    other_cores: float = 0.0
    timing_min: float = 0.0
    waited_min: float = 0.0
    openvino: dict | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class AccuracyResult:
    """The accuracy part: its settings as run, the plain checkpoints the fine-tuned cases start from, per dataset
    and case each model's runs and summary and each extension's comparison with plain, the CPU time of all runs."""

    settings: dict
    pretrained: dict
    results: dict  # {dataset: {case: {'img', 'epochs', 'seeds', 'models': {...}, 'comparisons': {...}}}}
    cpu_s_total: float | None = None
    notes: list[str] = field(default_factory=list)

    def blocks(self) -> list[tuple[str, str, dict]]:
        """(dataset, case, block) in the order they were run."""
        return [(d, c, b) for d, cases in self.results.items() for c, b in cases.items()]


@dataclass(frozen=True)
class BlockPass:
    """One pass of one block case: medians of each side's times and the per-pair ratio ours/timm with its
    quartiles."""

    name: str  # 'inference' or 'training'
    batch: int
    ours_ms: float
    timm_ms: float
    ratio: float
    ratio_q1: float
    ratio_q3: float
    pairs: int

    @property
    def above(self) -> bool:
        """Slower than timm beyond the noise: the whole interquartile range above 1.00."""
        return self.ratio_q1 > 1.0


@dataclass(frozen=True)
class BlockCase:
    """One block or stage against timm's (:mod:`.reference`)."""

    kind: str  # 'block' or 'stage'
    name: str  # e.g. 'Bottle2neck stage s2', 'res2net50d layer2'
    family: str  # families.py key
    ours: str  # our class
    timm: str  # timm's class or model attribute
    input_shape: tuple  # (C, H, W)
    max_abs_diff: float  # eval outputs, float32, before timing (timm's BN made non-trivial first)
    passes: tuple[BlockPass, ...]

    def ratio(self, pass_name: str) -> float:
        return next(p.ratio for p in self.passes if p.name == pass_name)


@dataclass(frozen=True)
class BlocksResult:
    """The blocks part: the device in words, the CPU threads used, versions, every case, notes (AMP)."""

    device: str
    threads: int
    torch_version: str
    timm_version: str
    cases: tuple[BlockCase, ...]
    notes: tuple[str, ...] = ()

    def slower(self, limit: float = 1.0) -> list[tuple[str, str, float]]:
        """(case, pass, ratio) of every pass whose median ratio ours/timm is above ``limit``."""
        return [(c.name, p.name, p.ratio) for c in self.cases for p in c.passes if p.ratio > limit]

    def above(self) -> list[tuple[str, str, float]]:
        """(case, pass, ratio) of every pass whose whole interquartile range is above 1.00."""
        return [(c.name, p.name, p.ratio) for c in self.cases for p in c.passes if p.above]


@dataclass(frozen=True)
class GpuPass:
    """One pass of one model against its reference (:mod:`.gpu`): medians of each side's times (ms), images/s,
    and the per-pair time ratio model/reference with its quartiles; skipped: why it was not timed (all None)."""

    name: str  # one of settings.GPU_PASSES
    batch: int
    model_ms: float | None = None
    ref_ms: float | None = None
    model_ips: float | None = None
    ref_ips: float | None = None
    ratio: float | None = None
    ratio_q1: float | None = None
    ratio_q3: float | None = None
    pairs: int = 0
    skipped: str | None = None


@dataclass(frozen=True)
class GpuCase:
    """One model against its plain reference: kind 'yolo' (YOLOv5 at img) or 'timm' (timm's classifiers)."""

    model: str
    reference: str
    kind: str
    img: int
    passes: tuple[GpuPass, ...]

    def get(self, pass_name: str) -> GpuPass | None:
        return next((p for p in self.passes if p.name == pass_name), None)


@dataclass(frozen=True)
class GpuResult:
    """The GPU part: the device in words, CPU threads, versions (cudnn None on the CPU), every case, notes (AMP,
    flags, what was skipped on this device)."""

    device: str
    threads: int
    torch_version: str
    timm_version: str
    cudnn_version: int | None
    cases: tuple[GpuCase, ...]
    notes: tuple[str, ...] = ()


@dataclass
class RunInfo:
    """The machine, software and course of a run."""

    date: str
    command: str
    cpu: str
    cpu_flags: str
    cores: int
    threads: int
    device: str  # cpu or cuda
    gpu: str | None
    python: str
    torch: str
    onnxruntime: str
    onnx: str
    os: str
    load_start: tuple | None = None  # at the start of the run
    load_end: tuple | None = None
    accuracy_min: float | None = None
    duration_min: float = 0.0


@dataclass
class Report:
    """A whole run: benchmark.json. speed/deploy settings and result are None for an accuracy-only or blocks-only
    run, accuracy None without the accuracy part, blocks (gpu) None without the blocks (gpu) part; notes: what
    the run left out or qualified."""

    info: RunInfo
    models: list[Entry]
    quick: bool = False
    speed_settings: SpeedSettings | None = None
    deploy_settings: DeploySettings | None = None
    accuracy_settings: AccuracySettings | None = None
    speed: SpeedResult | None = None
    accuracy: AccuracyResult | None = None
    notes: list[str] = field(default_factory=list)
    blocks_settings: BlocksSettings | None = None
    blocks: BlocksResult | None = None
    gpu_settings: GpuSettings | None = None
    gpu: GpuResult | None = None

    @property
    def groups(self) -> dict[str, list[Entry]]:
        """{scale: [plain, extension models...]} in the run's order."""
        groups: dict[str, list[Entry]] = {}
        for e in self.models:
            groups.setdefault(e.scale, []).append(e)
        return groups

    @property
    def timed(self) -> bool:
        """Whether the run measured cost and speed (not --only accuracy)."""
        return self.speed is not None


# ------------------------------------------------------------------------------------------- reading back
def from_dict(cls, d):
    """An instance of the dataclass cls from its asdict() form (nested dataclasses, their lists, dicts and
    optionals by the fields' annotations). Unknown keys are an error naming them."""
    return _convert(cls, d)


def _convert(tp, v):
    if v is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], v) if len(args) == 1 else v
    if origin is dict:
        _, vt = typing.get_args(tp)
        return {k: _convert(vt, x) for k, x in v.items()}
    if origin is list:
        (it,) = typing.get_args(tp)
        return [_convert(it, x) for x in v]
    if origin is tuple and typing.get_args(tp)[1:] == (Ellipsis,):
        return tuple(_convert(typing.get_args(tp)[0], x) for x in v)
    if origin is tuple or tp is tuple:
        return tuple(v)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp) if f.init}
        unknown = set(v) - names
        if unknown:
            raise ValueError(f'{tp.__name__}: unknown field(s) {", ".join(sorted(unknown))}')
        return tp(**{k: _convert(hints[k], x) for k, x in v.items()})
    return v
