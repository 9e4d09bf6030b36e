"""OpenVINO latency for the benchmark: three CPU runtimes of the same ONNX export, and what runs inside them.

* ``openvino-f32``: the ONNX export converted with ``ov.convert_model``, compiled with
  ``INFERENCE_PRECISION_HINT`` f32;
* ``openvino``: the same model in the runtime's default precision (no hint: bf16 on CPUs with bf16
  instructions, f32 elsewhere); the precision it actually ran in is read back from the compiled model;
* ``openvino-int8``: NNCF post-training INT8 of the same model, with the quantization of
  :mod:`extensions.deploy.openvino` (preset, ignored scope of the Detect head's decoding), calibrated on a fixed,
  evenly spaced subset of the built-in shapes data's training images; compiled with the f32 hint, as the
  project's deployment (``DetectMultiBackend``) compiles it by default, so the layers NNCF leaves in float run
  in f32.

Every runtime is compiled with ``INFERENCE_NUM_THREADS`` = the run's threads, one stream, latency hint. The
timing itself (alternated pairs, ratios) is :mod:`.timing`'s; this module gives it, per runtime, a way to load
one model (:class:`OpenVINORuntime`), and reads the executed graph and per-node performance counters of a
compiled model (:func:`executed_nodes`, :func:`perf_counters`, :func:`node_table`) for the report and for
``scripts/dev/openvino_nodes.py``. ``openvino`` and ``nncf`` are imported only here, when asked for.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from extensions.deploy import openvino as ovd  # its require() imports openvino with the telemetry off
from extensions.machine import cpu_flag_list

from .settings import BenchmarkError
from .targets import OPENVINO_RUNTIMES

KINDS = tuple(k for k, _ in OPENVINO_RUNTIMES)  # openvino-f32, openvino, openvino-int8
HINT = {'openvino-f32': 'f32', 'openvino': None, 'openvino-int8': 'f32'}  # INFERENCE_PRECISION_HINT (None: none)
CALIBRATION = 100  # calibration images: per-tensor activation ranges settle well below NNCF's default of 300


def is_openvino(kind: str) -> bool:
    return kind in KINDS


def require(kinds) -> None:
    """Import openvino (and nncf for openvino-int8), or raise BenchmarkError naming the runtimes and the fix; only
    for the runtimes asked for."""
    kinds = [k for k in kinds if is_openvino(k)]
    if not kinds:
        return
    need = [('openvino', ovd.OPENVINO_REQUIREMENT)] + ([('nncf', ovd.NNCF_REQUIREMENT)] if 'openvino-int8' in kinds
                                                       else [])
    for module, requirement in need:
        try:
            ovd.require(module, requirement)
        except ImportError as e:  # MissingRequirementError included: one clear line naming the fix
            raise BenchmarkError(f'runtimes {" ".join(kinds)}: {e}') from e


def available() -> list[str]:
    """The OpenVINO runtimes this environment can run (openvino importable; nncf as well for INT8)."""
    try:
        require(['openvino-f32'])
    except BenchmarkError:
        return []
    try:
        require(['openvino-int8'])
    except BenchmarkError:
        return ['openvino-f32', 'openvino']
    return list(KINDS)


def ov():
    return ovd.require('openvino', ovd.OPENVINO_REQUIREMENT)


def describe() -> dict:
    """openvino/nncf versions, the CPU plugin's optimization capabilities and the CPU flags that matter."""
    o = ov()
    d = {'openvino': o.get_version().split('-')[0], 'capabilities': list(o.Core().get_property(
        'CPU', 'OPTIMIZATION_CAPABILITIES')), 'cpu_flags': cpu_flag_list()}
    try:
        import nncf
        d['nncf'] = nncf.__version__
    except ImportError:
        d['nncf'] = None
    return d


# ------------------------------------------------------------------------------------------------ models
def calibration(img: int, n: int = CALIBRATION) -> list:
    """[(image path, (img, img))] for NNCF: n training images of the built-in shapes data (generated once,
    deterministic), evenly spaced over the split, letterboxed as val.py feeds a static model."""
    from extensions.datasets.shapes import ensure_shapes

    from .build import quiet
    with quiet():
        files = ovd.calibration_images(str(ensure_shapes(verbose=False)), (img, img))
    idx = np.unique(np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int))
    return [files[i] for i in idx]


def convert(onnx_file: Path):
    """ov.Model of an ONNX export (what extensions.deploy.openvino.export converts)."""
    return ov().convert_model(str(onnx_file))


def quantize(model, calib: list, head: str):
    """NNCF INT8 of an ov.Model with the deployment's settings (extensions.deploy.openvino.quantize), quietly."""
    from .build import quiet, silent_stderr
    log = logging.getLogger('nncf')
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with quiet(), silent_stderr():
            return ovd.quantize(model, calib, head)
    finally:
        log.setLevel(level)


def compile_config(kind: str, threads: int, perf: bool = False) -> dict:
    cfg = {'INFERENCE_NUM_THREADS': threads, 'NUM_STREAMS': 1, 'PERFORMANCE_HINT': 'LATENCY'}
    if HINT[kind]:
        cfg['INFERENCE_PRECISION_HINT'] = HINT[kind]
    if perf:
        cfg['PERF_COUNT'] = True
    return cfg


def compile_model(model, kind: str, threads: int, perf: bool = False):
    """(compiled model, the precision it runs in: 'f32', 'bf16', ...; 'int8 + f32' for the INT8 model)."""
    c = ov().Core().compile_model(model, 'CPU', compile_config(kind, threads, perf))
    p = c.get_property('INFERENCE_PRECISION_HINT').get_type_name()
    return c, (f'int8 + {p}' if kind == 'openvino-int8' else p)


def runner(compiled, x: np.ndarray):
    """One synchronous inference of x per call, on one infer request (input shared, not copied)."""
    req = compiled.create_infer_request()

    def run():
        req.infer([x], share_inputs=True)
    return run


class OpenVINORuntime:
    """One OpenVINO runtime of a benchmark group: ``load(entry)`` compiles that model (converting its ONNX export
    and, for INT8, quantizing it once per model) and returns (run, info); ``release()`` drops the compiled
    models. onnx_file(entry) gives the model's ONNX export; head(entry) its Detect head's node scope."""

    def __init__(self, kind: str, threads: int, x: np.ndarray, onnx_file, head, calib=None, say=None):
        self.kind, self.threads, self.x = kind, threads, x
        self.onnx_file, self.head, self.calib, self.say = onnx_file, head, calib, say or (lambda s: None)
        self.models: dict[str, object] = {}
        self.compiled: list = []

    def model(self, e):
        if e.name not in self.models:
            m = convert(self.onnx_file(e))
            if self.kind == 'openvino-int8':
                self.say(f'{e.name}: NNCF INT8 ({len(self.calib)} calibration images)')
                m = quantize(m, self.calib, self.head(e))
            self.models[e.name] = m
        return self.models[e.name]

    def load(self, e):
        c, precision = compile_model(self.model(e), self.kind, self.threads)
        self.compiled.append(c)
        return runner(c, self.x), {'precision': precision, 'nodes': counts(executed_nodes(c))}

    def profile(self, plain, e, iters: int) -> dict:
        """Per-node counters of the pair (compiled again with PERF_COUNT, inferences taking turns, median per
        node): time by layer type and precision of each model, and the ext's nodes that cost most."""
        cs = {m.name: compile_model(self.model(m), self.kind, self.threads, perf=True)[0] for m in (plain, e)}
        times = perf_counters_many(cs, self.x, iters)
        nodes = {k: executed_nodes(c) for k, c in cs.items()}
        ext = sorted(((t, n) for n in nodes[e.name] if (t := times[e.name].get(n['name'], 0.0)) > 0),
                     key=lambda tn: -tn[0])[:12]
        return {'iters': iters, 'plain': node_table(nodes[plain.name], times[plain.name]),
                'ext': node_table(nodes[e.name], times[e.name]),
                'total_plain_ms': sum(times[plain.name].values()), 'total_ext_ms': sum(times[e.name].values()),
                'top_ext': [{'node': n['name'], 'type': f'{n["type"]} {n["precision"]}', 'ms': t} for t, n in ext]}

    def release(self):
        self.compiled.clear()

    def close(self):
        self.release()
        self.models.clear()


# ------------------------------------------------------------------------------- the executed graph
def _rt(op, key: str) -> str:
    rt = op.get_rt_info()
    return rt[key].astype(str) if key in rt else ''


def executed_nodes(compiled) -> list[dict]:
    """The nodes of the compiled model as the CPU plugin executes them (get_runtime_model()), in execution order:
    name, layerType, runtimePrecision, primitiveType, outputLayouts, the original layers fused into it, and the
    names of the nodes feeding it."""
    out = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        out.append({'name': op.get_friendly_name(), 'type': _rt(op, 'layerType'),
                    'precision': _rt(op, 'runtimePrecision'), 'primitive': _rt(op, 'primitiveType'),
                    'layouts': _rt(op, 'outputLayouts'),
                    'original': _rt(op, 'originalLayersNames'),
                    'inputs': [v.get_node().get_friendly_name() for v in op.input_values()]})
    return out


def perf_counters(compiled, x: np.ndarray, iters: int, stat: str = 'median') -> dict[str, float]:
    """Real time (ms) of each executed node over iters inferences, their median or their min (on a busy
    machine the fastest of the runs is the one least disturbed by other processes); needs a model compiled with
    PERF_COUNT (compile_model(..., perf=True)). Nodes that did not run (constants, in-place ops) are left out."""
    return perf_counters_many({0: compiled}, x, iters, stat)[0]


def perf_counters_many(compiled: dict, x: np.ndarray, iters: int, stat: str = 'median') -> dict:
    """perf_counters of several compiled models, their inferences taking turns in every round (so that a slow
    drift of the machine's load falls on all of them alike): {key: {node: ms}}."""
    reqs = {k: c.create_infer_request() for k, c in compiled.items()}
    for r in reqs.values():  # warm-up
        r.infer([x], share_inputs=True)
    times = {k: defaultdict(list) for k in reqs}
    for _ in range(iters):
        for k, r in reqs.items():
            r.infer([x], share_inputs=True)
            for p in r.get_profiling_info():
                if p.status.name == 'EXECUTED':
                    times[k][p.node_name].append(p.real_time.total_seconds() * 1e3)
    f = min if stat == 'min' else statistics.median
    return {k: {n: f(v) for n, v in t.items()} for k, t in times.items()}


SKIP = {'Const', 'Input', 'Output', 'Parameter', 'Result'}


def counts(nodes: list[dict]) -> dict[str, int]:
    """{'layerType precision': number of executed nodes} (no constants or I/O): e.g. 'Convolution u8': 60."""
    return {k: v['n'] for k, v in node_table(nodes).items()}


def node_table(nodes: list[dict], times: dict[str, float] | None = None) -> dict:
    """Counts (and ms, with times) by 'layerType precision', executed nodes only (no constants or I/O)."""
    times = times or {}
    count, ms = Counter(), Counter()
    for n in nodes:
        if n['type'] in SKIP:
            continue
        key = f'{n["type"]} {n["precision"]}'
        count[key] += 1
        ms[key] += times.get(n['name'], 0.0)
    return {k: {'n': count[k], 'ms': ms[k]} for k in sorted(count)}
