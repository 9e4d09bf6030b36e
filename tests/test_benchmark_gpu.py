"""The GPU part of the benchmark (extensions.benchmark.gpu, --only gpu) on tiny inputs on the CPU: settings refused
by name, every family's model against plain YOLOv5 gives positive times and ratios, the CUDA-only passes are
recorded as skipped, torch's global flags are set per pass and restored, the result round-trips through JSON and
the report section renders; the CUDA path only where a GPU is. No timing assertions."""

import math
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from extensions.benchmark import gpu, parts, report, report_gpu
from extensions.benchmark.results import GpuResult, Report, RunInfo
from extensions.benchmark.settings import (
    GPU_PASSES,
    GPU_QUICK,
    BenchmarkError,
    GpuSettings,
    gpu_reference,
    gpu_settings,
)
from extensions.families import FAMILIES

pytest.importorskip('timm')
pytestmark = pytest.mark.usefixtures('one_thread')
TINY = dict(device='cpu', img=64, timm_img=64, batch=2, pairs=1, warmup=0, amp=False)
MODELS = tuple(f'yolov5n-{f.suffix}' for f in FAMILIES)


@pytest.fixture(scope='module')
def cpu_run():
    """One run over every family's yolov5n against yolov5n, every pass; the flags each pass ran under."""
    seen = []

    def spy(fa, fb, *a, **k):
        seen.append((gpu.flags(), os.environ.get('CUBLAS_WORKSPACE_CONFIG')))
        return pairs(fa, fb, *a, **k)

    pairs = gpu._pairs
    s = GpuSettings(**TINY, models=MODELS)
    before = (gpu.flags(), os.environ.get('CUBLAS_WORKSPACE_CONFIG'))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gpu, '_pairs', spy)
        res = gpu.run(s)
    return s, res, seen, before


@pytest.mark.parametrize('bad, field', [
    (dict(device='tpu'), 'device'), (dict(img=100), 'img'), (dict(timm_img=0), 'timm_img'), (dict(batch=0), 'batch'),
    (dict(pairs=0), 'pairs'), (dict(warmup=-1), 'warmup'), (dict(amp='yes'), 'amp'), (dict(threads=0), 'threads'),
    (dict(passes=('infer-b2',)), 'passes'), (dict(passes=()), 'passes'), (dict(models=('yolov5s',)), 'models'),
    (dict(models=('yolov5s-nope',)), 'models'), (dict(models=()), 'models')])
def test_bad_settings_raise_naming_the_field(bad, field):
    with pytest.raises(BenchmarkError, match=rf'GpuSettings\.{field}='):
        GpuSettings(**{**TINY, **bad})


def test_settings_defaults_and_cli_options():
    s = GpuSettings()
    assert s.device == 'cuda' and s.img == 640 and s.batch == 32 and s.amp and s.passes == GPU_PASSES
    assert {'yolov5l', 'yolov5m-resnetrs50', 'res2net50d', 'seresnet50'} <= set(s.models)
    assert GpuSettings(device='1', models=['yolov5l']).device == 'cuda:1'
    q = gpu_settings('cpu', 1, 3, quick=True)
    assert q.img == 64 and q.pairs == 3 and q.threads == 1
    import benchmark  # noqa: PLC0415  (scripts/benchmark.py)
    assert benchmark.parser().parse_args(['--only', 'gpu', '--device', '0']).only == 'gpu'
    sys.modules.pop('benchmark', None)


def test_every_default_model_and_reference_resolves():
    import timm  # noqa: PLC0415
    for m in GpuSettings().models:
        for name in (m, gpu_reference(m)):
            assert Path(gpu.cfg(name)).is_file() if gpu.is_yolo(name) else timm.is_model(name), name
    assert gpu_reference('yolov5l') == 'yolov5m' and gpu_reference('yolov5m-resnetrs50') == 'yolov5m'


def test_cpu_run_gives_positive_times_and_ratios(cpu_run):
    s, res, _, _ = cpu_run
    assert res.device == 'CPU' and res.cudnn_version is None and res.threads >= 1
    assert [c.model for c in res.cases] == list(MODELS)
    for c in res.cases:
        assert c.reference == 'yolov5n' and c.kind == 'yolo' and c.img == 64
        assert [p.name for p in c.passes] == list(GPU_PASSES)
        for p in c.passes:
            if p.name == 'infer-b1-graph':  # CUDA only: skipped, not faked
                assert p.skipped == 'CUDA only' and p.ratio is None and p.model_ms is None and p.pairs == 0
                continue
            assert p.skipped is None and p.pairs == 1
            assert p.batch == (1 if p.name == 'infer-b1' else s.batch)
            assert p.model_ms > 0 and p.ref_ms > 0 and math.isfinite(p.ratio) and p.ratio > 0
            assert p.ratio_q1 <= p.ratio <= p.ratio_q3
            assert p.model_ips == pytest.approx(p.batch / p.model_ms * 1e3)
    assert any('float32' in n for n in res.notes) and any('infer-b1-graph: skipped' in n for n in res.notes)


def test_determinism_flags_per_pass_and_restored(cpu_run):
    _, _, seen, before = cpu_run
    per_case = len(GPU_PASSES) - 1  # the graph pass is not timed on the CPU
    assert len(seen) == per_case * len(MODELS)
    for i, (flags, env) in enumerate(seen):
        name = [p for p in GPU_PASSES if p != 'infer-b1-graph'][i % per_case]
        det = name == 'train-deterministic'
        assert flags == (det, False, det, not det), name  # algorithms, warn-only, cudnn.deterministic, benchmark
        assert env == gpu.CUBLAS
    assert (gpu.flags(), os.environ.get('CUBLAS_WORKSPACE_CONFIG')) == before


def test_flags_restored_from_a_non_default_state_and_on_error():
    torch.backends.cudnn.benchmark = True
    try:
        state = gpu.flags()
        with pytest.raises(RuntimeError, match='boom'), gpu.determinism(True):
            assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
            raise RuntimeError('boom')
        assert gpu.flags() == state
    finally:
        torch.backends.cudnn.benchmark = False


def _report(res: GpuResult, s: GpuSettings) -> Report:
    info = RunInfo(date='2026-01-01 00:00 UTC', command='python scripts/benchmark.py --only gpu', cpu='cpu',
                   cpu_flags='', cores=1, threads=1, device='cpu', gpu=None, python='3', torch=torch.__version__,
                   onnxruntime='-', onnx='-', os='-')
    return Report(info, [], gpu_settings=s, gpu=res)


def test_result_round_trips_through_json_and_the_section_renders(cpu_run, tmp_path):
    s, res, _, _ = cpu_run
    rep = _report(res, s)
    report.write_json(rep, tmp_path)
    back = report.read_json(tmp_path / 'benchmark.json')
    assert back.gpu == res and back.gpu_settings == s and asdict(back) == asdict(rep)
    md = report.write_report(back, tmp_path, []).read_text()
    assert '## What training and inference cost on a GPU' in md and '**GPU part** (CPU)' in md
    rows = [ln for ln in md.splitlines() if ln.startswith(f'| {MODELS[0]} | yolov5n |')]
    assert len(rows) == 2 and all('| skipped |' in r for r in rows)  # ratios, medians: graph pass skipped
    assert f'Skipped (CUDA only): {MODELS[0]} infer-b1-graph' in md
    text = '\n'.join(report_gpu.gpu_lines(res))
    assert 'skipped: CUDA only' in text and 'train-deterministic' in text
    assert report_gpu.gpu(_report(res, s)) and not report_gpu.gpu(Report(rep.info, []))


def test_timm_pair_and_amp_on_cpu_is_a_note():
    res = gpu.run(GpuSettings(**{**TINY, 'amp': True}, models=('seresnet50',), passes=('infer-b1', 'infer-b1-graph')))
    (c,) = res.cases
    assert (c.reference, c.kind, c.img) == ('resnet50', 'timm', 64) and c.get('infer-b1').ratio > 0
    assert c.get('infer-b1-graph').skipped == 'CUDA only'
    assert any('AMP asked for: skipped, CUDA only' in n for n in res.notes)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal without a GPU')
def test_cuda_without_gpu_is_refused():
    with pytest.raises(BenchmarkError, match='gpu part: .*no CUDA device'):
        parts.run_gpu(GpuSettings(**{**TINY, 'device': 'cuda'}, models=MODELS[:1]), None)


def test_cli_only_gpu_quick_on_cpu(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'benchmark.py'), '--only', 'gpu', '--quick',
                        '--threads', '1', '--out', str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'infer-b1-graph' in r.stdout and 'skipped: CUDA only' in r.stdout
    rep = report.read_json(tmp_path / 'benchmark.json')
    assert rep.speed is None and rep.blocks is None and rep.models == [] and rep.gpu_settings.img == 64
    assert [c.model for c in rep.gpu.cases] == list(GPU_QUICK['models'])
    assert 'What training and inference cost on a GPU' in (tmp_path / 'benchmark.md').read_text()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
def test_cuda_path_amp_graph_and_determinism():
    before = gpu.flags()
    res = gpu.run(GpuSettings(**{**TINY, 'device': 'cuda', 'amp': True, 'warmup': 1}, models=MODELS[:1]))
    (c,) = res.cases
    assert res.device != 'CPU' and res.cudnn_version and any('AMP' in n for n in res.notes)
    graph = c.get('infer-b1-graph')
    assert graph.skipped is None or graph.skipped.startswith('CUDA graph capture failed')
    assert graph.skipped or graph.model_ms > 0
    for name in ('infer-b1', 'infer-batch', 'train-benchmark'):
        assert c.get(name).skipped is None and c.get(name).ratio > 0
    assert gpu.flags() == before
