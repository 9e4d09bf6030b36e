"""The entry points of the benchmark, one per part: each takes the run's models and its frozen settings and returns
its typed result; errors are :class:`~.settings.BenchmarkError`. ``scripts/benchmark.py`` parses the options
into settings, calls these in order and prints; a new part is one more ``run_<part>`` here, its settings class
(:mod:`.settings`), its result class and field of :class:`~.results.Report` (:mod:`.results`) and its report
section (:mod:`.report`).

* :func:`run_accuracy`: every model trained over seeds in each case (:mod:`.accuracy`);
* :func:`run_speed`: cost, latency in every runtime, training throughput and memory, profiles of missed targets;
* :func:`run_blocks`: each block and backbone stage with a timm counterpart against timm's (:mod:`.reference`);
* :func:`run_gpu`: each model against its plain reference on a GPU, inference and training (:mod:`.gpu`).

``progress`` is a tqdm-like bar (``set_description``, ``update``, ``total``, ``refresh``, ``set_postfix_str``)
the caller owns; the library writes nothing else.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

from extensions.machine import CpuWatch, Quiet, cpu_flags, cpu_model, loadavg

from .models import resolve_groups
from .results import AccuracyResult, BlocksResult, Entry, GpuResult, RunInfo, SpeedResult
from .settings import AccuracySettings, BenchmarkError, BlocksSettings, DeploySettings, GpuSettings, SpeedSettings

__all__ = ['resolve_groups', 'prepare_device', 'run_info', 'available_runtimes', 'run_accuracy', 'run_speed',
           'run_blocks', 'run_gpu']


def prepare_device(device: str, threads: int):
    """The torch.device of a run (CUDA made current), with torch on `threads` CPU threads."""
    import torch
    torch.set_num_threads(threads)
    d = torch.device(device)
    if d.type == 'cuda' and not torch.cuda.is_available():
        raise BenchmarkError(f'device {device}: no CUDA device available')
    if d.type == 'cuda' and d.index is not None:
        torch.cuda.set_device(d)
    return d


def run_info(device: str, threads: int, command: str) -> RunInfo:
    """The machine and software of a run, as the report's Machine section states them: the CPU (and the GPU
    separately, on a CUDA device), versions, the load average now."""
    import onnx
    import onnxruntime
    import torch
    d = torch.device(device)
    return RunInfo(date=dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'), command=command,
                   cpu=cpu_model(), cpu_flags=cpu_flags(), cores=os.cpu_count(), threads=threads, device=d.type,
                   gpu=torch.cuda.get_device_name(d) if d.type == 'cuda' else None,
                   python=platform.python_version(), torch=torch.__version__, onnxruntime=onnxruntime.__version__,
                   onnx=onnx.__version__, os=platform.platform(terse=True), load_start=loadavg())


def available_runtimes(deploy: DeploySettings, device: str) -> tuple[list[str], list[str]]:
    """(the runtimes to time, notes): those asked for by name (a missing openvino/nncf is then a BenchmarkError
    naming the fix, as is OpenVINO on a GPU run), or by default every one this environment has (what is left out
    goes into the notes)."""
    from . import openvino as bov
    ov = [k for k in deploy.runtimes if bov.is_openvino(k)]
    if device.startswith('cuda'):
        if ov and deploy.given:
            raise BenchmarkError(f'runtimes {" ".join(ov)}: the OpenVINO runtimes time the CPU; run them on the CPU '
                                 '(device cpu)')
        return [k for k in deploy.runtimes if k not in ov], []
    if deploy.given:
        bov.require(ov)
        return list(deploy.runtimes), []
    have = bov.available()
    missing = [k for k in ov if k not in have]
    notes = [f'Not timed ({", ".join(missing)}): openvino/nncf not installed (python scripts/setup.py installs '
             'requirements.txt).'] if missing else []
    return [k for k in deploy.runtimes if k not in missing], notes


def run_accuracy(groups: dict[str, list[Entry]], settings: AccuracySettings, progress) -> AccuracyResult:
    """Every model of the accuracy scales trained settings.seeds times per case; AccuracyFailed (naming model,
    case and seed) if any run failed: no mean of the seeds that happened to finish."""
    from . import accuracy
    return accuracy.measure(groups, settings, progress)


def run_speed(groups: dict[str, list[Entry]], speed: SpeedSettings, deploy: DeploySettings,
              progress) -> SpeedResult:
    """Per scale: cost, latency in each runtime, training throughput and memory, then the ratios; profiles of the
    models that miss a speed target (CPU). Fills each entry's results; returns the conditions of the timing."""
    from . import cost, openvino, profiling, targets, timing, training
    device = prepare_device(speed.device, speed.threads)
    runtimes, notes = available_runtimes(deploy, speed.device)
    res = SpeedResult(runtimes=runtimes, load_start=loadavg(), notes=notes)
    if any(openvino.is_openvino(k) for k in runtimes):
        res.openvino = openvino.describe()
    n_ext = sum(len(g) - 1 for g in groups.values())
    n_all = sum(len(g) for g in groups.values())
    n_files = 0 if runtimes in (['torch'], []) else 1  # the ONNX export of each model, for onnx and OpenVINO
    progress.total = n_all * (2 + n_files) + n_ext * (speed.runs * len(runtimes) + speed.train_iters)
    progress.refresh()
    t0, watch = time.time(), CpuWatch()
    guard = None if speed.cuda else Quiet(speed.max_other, speed.max_wait, progress)
    pairs = timing.Pairs(timing.Timer(device), guard, progress)
    runtimes = timing.prepare(device, runtimes, res.notes)
    with tempfile.TemporaryDirectory(prefix='yolo-bench-', ignore_cleanup_errors=True) as tmp:
        for group in groups.values():
            built = cost.measure_cost(group, speed.img, progress)
            runtimes = timing.measure_latency(group, built, runtimes, speed, pairs, Path(tmp), res.notes)
            training.measure_throughput(group, speed, pairs)
            training.measure_memory(group, speed, progress)
            cost.cost_ratios(group)
            timing.summarise_latency(group)
            training.summarise_training(group, speed.train_batch)
            if speed.profile == 'off' or speed.cuda:
                continue
            plain = group[0]
            for e in group[1:]:  # the models that miss a latency or FLOP-rate target, or all with profile 'all'
                if speed.profile == 'all' or targets.misses_speed(e):
                    progress.set_description(f'{e.name}: profile')
                    e.results.profile = profiling.profile_pair(
                        built.fused[plain.name], built.fused[e.name], speed.img, speed.profile_iters,
                        built.layer_gflops[plain.name], built.layer_gflops[e.name], guard)
    res.waited_min = guard.waited / 60 if guard else 0.0
    res.load_after_timing = loadavg()
    res.other_cores = round(watch.others(), 3)
    res.timing_min = (time.time() - t0) / 60
    return res


def run_blocks(settings: BlocksSettings, progress) -> BlocksResult:
    """Every selected block and stage timed against timm's with the same weights, inference and training passes
    in alternating pairs; BenchmarkError without timm, on a case name it does not know, without a CUDA device
    for a CUDA run, or when a case's outputs differ from timm's (the two sides would not time the same function)."""
    from . import reference
    try:
        return reference.run(settings, progress)
    except (ValueError, ImportError, KeyError) as e:
        raise BenchmarkError(f'blocks part: {e}') from e
    except RuntimeError as e:
        if 'differs from timm' not in str(e):
            raise
        raise BenchmarkError(f'blocks part: {e}') from e


def run_gpu(settings: GpuSettings, progress) -> GpuResult:
    """Every model of the GPU part against its plain reference: batch-1 latency (eager, CUDA graph), batch
    throughput, the AMP training step with train.py's determinism and with cudnn.benchmark; BenchmarkError without
    timm or without a CUDA device for a CUDA run. The CUDA-only passes are recorded as skipped on the CPU."""
    from . import gpu
    try:
        return gpu.run(settings, progress)
    except (ValueError, ImportError) as e:
        raise BenchmarkError(f'gpu part: {e}') from e
