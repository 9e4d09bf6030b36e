"""scripts/benchmark.py and extensions.benchmark: a --quick smoke run into a temporary directory, and its
bookkeeping.

No timing assertions: how fast the blocks are is what the benchmark measures and reports, not a test.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from conftest import BASE, ROOT

from extensions import families
from extensions.benchmark import accuracy, cases, models, plots, report, report_accuracy, stats, targets
from extensions.benchmark.results import (
    BlockCase,
    BlockPass,
    Cost,
    Entry,
    Latency,
    Ratio,
    Report,
    Results,
    RunInfo,
    SpeedResult,
    Training,
)
from extensions.benchmark.settings import (
    BLOCKS_QUICK,
    AccuracySettings,
    BenchmarkError,
    BlocksSettings,
    DeploySettings,
    SpeedSettings,
)
from extensions.datasets.shapes import ensure_shapes

PNG = b'\x89PNG\r\n\x1a\n'


def ratio(median: float) -> Ratio:
    return Ratio(median, median, median, median, median, 5)


def run_info(**kw) -> RunInfo:
    d = dict(date='today', command='x', cpu='AMD EPYC', cpu_flags='avx2', cores=2, threads=2, device='cpu', gpu=None,
             python='3', torch='2', onnxruntime='1', onnx='1', os='Linux', load_start=(0.1, 0.1, 0.1),
             load_end=(0.1, 0.1, 0.1), duration_min=1.0)
    return RunInfo(**{**d, **kw})


def res2_yaml(tmp_path):
    """The project's yolov5n-res2.yaml; while models_yaml/ is not there yet, yolov5n with every C3 swapped."""
    cfg = ROOT / 'models_yaml' / 'yolov5n-res2.yaml'
    if cfg.is_file():
        return cfg
    text = (BASE / 'models' / 'yolov5n.yaml').read_text()
    cfg = tmp_path / 'yolov5n-res2.yaml'
    cfg.write_text(re.sub(r'\bC3\b', 'C3_Res2Block', text))
    return cfg


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('bench')
    out = tmp / 'out'
    cfg = res2_yaml(tmp)
    cmd = [sys.executable, str(ROOT / 'scripts' / 'benchmark.py'), '--quick', '--cfg', str(cfg), '--img', '160',
           '--runs', '3', '--threads', '1', '--train-img', '160', '--train-batch', '2', '--out', str(out),
           '--runtimes', 'torch', 'onnx', 'openvino-f32', 'openvino-int8']
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r.stdout, r.stderr


def test_quick_run_writes_report_plots_and_json(quick_run):
    out, stdout, _ = quick_run
    report = (out / 'benchmark.md').read_text()
    for png in ('benchmark_params_gflops.png', 'benchmark_ratios.png'):
        assert (out / png).read_bytes()[:8] == PNG, png
        assert f']({png})' in report
    assert not (out / 'benchmark_latency_map.png').exists()  # no accuracy in --quick
    for section in ('## Machine', '## Cost', '## Latency', '## Training', '## Targets'):
        assert section in report, section
    assert 'Quick smoke-test mode' in report
    assert 'python scripts/benchmark.py --quick' in report  # the exact command
    assert 'torch ' in report and 'onnxruntime ' in report
    assert 'report:' in stdout and 'targets' in stdout


def test_every_model_in_every_table(quick_run):
    out, _, _ = quick_run
    report = (out / 'benchmark.md').read_text()
    sections = re.split(r'^## ', report, flags=re.M)
    for title in ('Cost', 'Latency', 'Training'):
        body = next(s for s in sections if s.startswith(title))
        rows = [ln.split('|')[1].strip() for ln in body.splitlines() if ln.startswith('| yolov5')]
        assert rows == ['yolov5n', 'yolov5n-res2'], (title, rows)


def test_ratios_are_positive_numbers(quick_run):
    out, _, _ = quick_run
    data = json.loads((out / 'benchmark.json').read_text())
    models = {m['name']: m for m in data['models']}
    assert set(models) == {'yolov5n', 'yolov5n-res2'}
    assert models['yolov5n']['cfg'].endswith('yolov5/models/yolov5n.yaml')  # baseline matched by scale letter
    ext = models['yolov5n-res2']['results']
    assert models['yolov5n-res2']['suffix'] == 'res2' and models['yolov5n-res2']['family'] == 'res2'
    values = [ext['cost']['params_ratio'], ext['cost']['gflops_ratio']]
    lat = ext['latency']
    for kind, timed in (('torch', lat['torch']), ('onnx', lat['onnx']), ('train', ext['train'])):
        r = timed['ratio']
        assert r['n'] == (3 if kind != 'train' else 2)
        values += [r['median'], r['p25'], r['p75']]
        assert len(timed['times']) == len(timed['plain_times'])
    values += [lat['torch']['rate_ratio'], lat['onnx']['rate_ratio'], ext['train']['images_per_s'],
               lat['torch']['latency_ms'], lat['onnx']['latency_ms']]
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in values), values
    assert ext['memory'].get('delta_mb', -1) >= 0, ext['memory']
    # the report shows the same ratio as the JSON
    report = (out / 'benchmark.md').read_text()
    assert f'{lat["torch"]["ratio"]["median"]:.2f} (' in report


def test_targets_section_lists_met_or_missed(quick_run):
    out, stdout, _ = quick_run
    report = (out / 'benchmark.md').read_text()
    targets = report.split('## Targets', 1)[1]
    lines = [ln for ln in targets.splitlines() if ln.startswith('| yolov5n-res2')]
    assert len(lines) == 9  # params, GFLOPs, 2 x (latency, FLOP rate), training, OpenVINO f32 and INT8 latency
    assert all(('**met**' in ln) != ('**missed**' in ln) for ln in lines), lines
    assert sum('OpenVINO' in ln for ln in lines) == 2
    printed = [ln for ln in stdout.splitlines() if re.match(r'\s+(MET|MISSED)\s+yolov5n-res2:', ln)]
    assert len(printed) == 9


# ---------------------------------------------------------------------------------------- no-model units
def test_ratio_stats_and_quantiles():
    s = stats.ratio_stats([1.0, 1.2, 1.1, 0.9, 1.3])
    assert s['median'] == pytest.approx(1.1) and s['p25'] == pytest.approx(1.0) and s['p75'] == pytest.approx(1.2)
    assert s['min'] == 0.9 and s['max'] == 1.3 and s['n'] == 5
    assert stats.quantile([2.0, 4.0], 0.5) == 3.0


def test_groups_pair_each_config_with_plain_of_its_scale(tmp_path):
    cfgs = []
    for name in ('yolov5s-res2', 'yolov5n-serd', 'yolov5s-rs', 'yolov5s'):
        (tmp_path / f'{name}.yaml').write_text('# placeholder\n')
        cfgs.append(str(tmp_path / f'{name}.yaml'))
    groups = models.resolve_groups(cfgs, [], [])
    assert list(groups) == ['s', 'n']
    assert [e.name for e in groups['s']] == ['yolov5s', 'yolov5s-res2', 'yolov5s-rs']
    assert groups['s'][0].cfg == str(BASE / 'models' / 'yolov5s.yaml')
    assert [e.suffix for e in groups['n']] == ['', 'serd'] and [e.family for e in groups['n']] == [None, 'serd']
    assert groups['s'][2].family == 'serd'  # rs: a variant's suffix, of the serd family
    assert groups['s'][1].target_family == 'res2' and groups['s'][2].target_family is None
    bad = tmp_path / 'mymodel.yaml'
    bad.write_text('# placeholder\n')
    with pytest.raises(BenchmarkError, match='scale'):
        models.resolve_groups([str(bad)], [], [])


def test_a_new_family_row_is_benchmarked_without_edits(tmp_path, monkeypatch):
    """A fourth row of extensions/families.py with its YAMLs: chosen by its key, its own row with the targets
    every family has (no latency target of its own), its own colour and name in the plots and report title. Its key
    (fourth) differs from its YAML suffix (foo): the entry's family is the key, its suffix the YAML's."""
    new = families.Family('fourth', 'foo', 'Foo', 'A paper', 'C3_Foo', 'foo')
    monkeypatch.setattr(families, 'FAMILIES', (*families.FAMILIES, new))
    monkeypatch.setattr(families, 'MODELS_YAML', tmp_path)
    for scale in ('n', 's'):
        (tmp_path / f'yolov5{scale}-foo.yaml').write_text('# placeholder\n')
    groups = models.resolve_groups(None, ['n', 's'], ['fourth'])
    assert [[e.name for e in g] for g in groups.values()] == [['yolov5n', 'yolov5n-foo'], ['yolov5s', 'yolov5s-foo']]
    e = groups['s'][1]
    assert (e.suffix, e.family, e.target_family) == ('foo', 'fourth', 'fourth')
    e.results = Results(cost=Cost(1.05, 1.05), latency={k: Latency(ratio=ratio(1.5), rate_ratio=0.7)
                                                         for k in ('torch', 'onnx')}, train=Training(ratio=ratio(0.9)))
    assert targets.latency_target(e) is None
    assert [(t['kind'], t['status']) for t in targets.targets_for(e)] == [
        ('cost', 'met'), ('cost', 'met'), ('rate', 'missed'), ('rate', 'missed'), ('train', 'met')]
    others = {plots.color(f.suffix) for f in families.FAMILIES[:-1]} | {plots.color(''), plots.color('rs')}
    assert plots.color('foo') not in others and plots.label('foo') == 'Foo'
    title = report.head(Report(run_info(), []))[0]
    assert title == '# Benchmark: YOLOv5 with Res2Net, ResNeSt, SE-ResNet-D and Foo blocks against plain YOLOv5'


def test_yaml_of_no_family_is_its_own_row(tmp_path):
    cfg = tmp_path / 'yolov5s-mine.yaml'
    cfg.write_text('# placeholder\n')
    groups = models.resolve_groups([str(cfg)], [], [])
    e = groups['s'][1]
    assert (e.name, e.suffix, e.family, e.target_family) == ('yolov5s-mine', 'mine', None, None)
    assert targets.targets_for(e, force=True) == [] and plots.label('mine') == 'mine'
    assert plots.color('mine') == plots.OTHER_COLOR == plots.color('rs')
    rs = models.resolve_groups(None, ['s'], ['rs'])['s'][1]  # a variant's suffix also names a default YAML
    assert rs.cfg == str(ROOT / 'models_yaml' / 'yolov5s-rs.yaml') and rs.family == 'serd'
    assert plots.label('rs') == 'ResNet-RS backbone'


def test_report_goes_to_docs_benchmark_with_the_hand_written_notes(tmp_path):
    assert report.DEFAULT_OUT == ROOT / 'docs' / 'benchmark'
    assert report.notes_path(None, report.DEFAULT_OUT) == ROOT / 'docs' / 'benchmark_notes.md'
    assert report.notes_path(None, tmp_path) == tmp_path / 'benchmark_notes.md'
    assert report.notes_path('x.md', tmp_path) == Path('x.md')


def test_targets_logic():
    e = Entry('yolov5s-serd', 'x.yaml', 's', 'serd', 'serd')
    e.results = Results(cost=Cost(1.05, 1.20), latency={'torch': Latency(ratio=ratio(1.08), rate_ratio=1.20 / 1.08),
                                                        'onnx': Latency(ratio=ratio(1.12), rate_ratio=1.20 / 1.12)},
                        train=Training(ratio=ratio(0.79)))
    status = {t['what']: t['status'] for t in targets.targets_for(e)}
    assert status == {'params vs plain': 'met', 'GFLOPs vs plain': 'missed',
                      'latency ratio, PyTorch fused': 'met', 'achieved GFLOP/s vs plain, PyTorch fused': 'met',
                      'latency ratio, onnxruntime': 'missed', 'achieved GFLOP/s vs plain, onnxruntime': 'met',
                      'training throughput ratio': 'missed'}
    assert targets.targets_for(Entry('yolov5n-serd', 'x.yaml', 'n', 'serd', 'serd')) == []  # targets are set at s
    assert targets.targets_for(Entry('yolov5s-rs', 'x.yaml', 's', 'rs', 'serd'), force=True) == []  # a variant


def test_results_csv_final_row(tmp_path):
    f = tmp_path / 'results.csv'
    keys = ['epoch', 'train/box_loss', 'metrics/precision', 'metrics/recall', 'metrics/mAP_0.5',
            'metrics/mAP_0.5:0.95']
    f.write_text(','.join(f'{k:>20}' for k in keys) + '\n'
                 + ','.join(f'{v:>20}' for v in ('0', '0.1', '0.1', '0.2', '0.05', '0.01')) + '\n'
                 + ','.join(f'{v:>20}' for v in ('1', '0.09', '0.4', '0.5', '0.45', '0.25')) + '\n')
    m, n = accuracy.results_csv_final(f)
    assert n == 2 and m == {'mAP50': 0.45, 'mAP50-95': 0.25, 'P': 0.4, 'R': 0.5}
    assert accuracy.csv_rows(f) == 2 and accuracy.csv_rows(tmp_path / 'missing.csv') == 0


def test_report_only_rewrites_from_json_with_notes(quick_run):
    out, _, _ = quick_run
    before = (out / 'benchmark.md').read_text()
    (out / 'benchmark_notes.md').write_text('## Findings\n\nA hand-written note.\n')
    try:
        r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'benchmark.py'), '--report-only', '--out', str(out)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        after = (out / 'benchmark.md').read_text()
        assert 'A hand-written note.' in after
        assert before.split('## Targets')[0] == after.split('## Targets')[0]  # the same measured tables
    finally:
        (out / 'benchmark_notes.md').unlink()


def test_accuracy_scales_per_dataset():
    groups = {'n': [], 's': []}
    assert accuracy.accuracy_scales(None, 'coco128', groups) == ['n', 's']
    spec = ['shapes:n', 'shapes:s', 'coco128:n']
    assert accuracy.accuracy_scales(spec, 'shapes', groups) == ['n', 's']
    assert accuracy.accuracy_scales(spec, 'coco128', groups) == ['n']
    assert accuracy.accuracy_scales(['s'], 'coco128', groups) == ['s']
    with pytest.raises(BenchmarkError, match="coco128:m.*'m' is not in this run"):
        accuracy.accuracy_scales(['coco128:m'], 'coco128', groups)


def test_res2_variants_script_checks_and_times_every_variant():
    """scripts/dev/res2_variants.py (the evidence behind docs/benchmark_notes.md): every rewritten forward must
    give the block's outputs in PyTorch and ONNX before it is timed."""
    cmd = [sys.executable, str(ROOT / 'scripts' / 'dev' / 'res2_variants.py'),
           '--cfg', str(ROOT / 'models_yaml' / 'yolov5n-res2.yaml'), '--img', '128', '--runs', '2', '--warmup', '1',
           '--threads', '1']
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = {ln.split()[0]: [float(v) for v in ln.split()[1::2]] for ln in r.stdout.splitlines()
            if ln.split() and ln.split()[0] in ('current', 'no-inplace', 'naive')}
    assert set(rows) == {'current', 'no-inplace', 'naive'}, r.stdout
    assert all(v > 0 and math.isfinite(v) for vals in rows.values() for v in vals), rows


# ------------------------------------------------------------------------------------ accuracy over seeds
FAILING = ('yolov5n-res2', 'scratch', 1)  # the run the fail-closed test breaks: model, case, seed


def tiny_data(tmp):
    """Two tiny shapes datasets: the target task (demo scene, 3 classes) and the pretraining task (standard
    scene, 6 classes), 8 train / 4 val images at 64 px."""
    demo = ensure_shapes(tmp / 'demo', img=64, train=8, val=4, classes=3, scene='demo', verbose=False)
    std = ensure_shapes(tmp / 'std', img=64, train=8, val=4, scene='standard', verbose=False)
    return demo, std


def acc_argv(tmp, demo, std, out):
    return ['--only', 'accuracy', '--cfg', str(res2_yaml(tmp)), '--acc-data', str(demo), '--pretrain-data', str(std),
            '--seeds', '3', '--epochs', '1', '--pretrain-epochs', '1', '--acc-img', '64', '--acc-batch', '4',
            '--workers', '0', '--threads', '1', '--project', str(tmp / 'runs'), '--out', str(out)]


@pytest.fixture(scope='module')
def accuracy_run(tmp_path_factory):
    """A tiny accuracy part (1 epoch, 8 images, 3 seeds, both cases, one pretraining run): first with one seed's
    training made to fail (in-process, train.py replaced by a failing command for that run only), which must
    fail the benchmark, name the run and report nothing; then the same command with --reuse-accuracy (a
    subprocess: the real CLI), which trains only the missing run."""
    import benchmark  # noqa: PLC0415  (scripts/benchmark.py: imports torch; only this fixture needs it in-process)
    import torch  # noqa: PLC0415  (with benchmark, above)
    tmp = tmp_path_factory.mktemp('acc')
    demo, std = tiny_data(tmp)
    out = tmp / 'out'
    real = accuracy.train_command

    def failing(job, st, project):
        if (job.entry.name, job.case, job.seed) == FAILING:
            return [sys.executable, '-c', 'import sys; print("injected failure"); sys.exit(3)']
        return real(job, st, project)

    threads, sigterm = torch.get_num_threads(), signal.getsignal(signal.SIGTERM)
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accuracy, 'train_command', failing)
        try:
            with contextlib.redirect_stderr(stderr):
                rc = benchmark.main(acc_argv(tmp, demo, std, out))
        finally:
            torch.set_num_threads(threads)
            signal.signal(signal.SIGTERM, sigterm)
    runs = sorted(p.name for p in (tmp / 'runs').iterdir())
    stamped = sorted(p.parent.name for p in (tmp / 'runs').glob('*/benchmark_stamp.json'))
    reported_after_failure = sorted(p.name for p in out.glob('*')) if out.exists() else []
    cmd = [sys.executable, str(ROOT / 'scripts' / 'benchmark.py'), *acc_argv(tmp, demo, std, out), '--reuse-accuracy']
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return {'tmp': tmp, 'out': out, 'failed': (rc, stderr.getvalue()), 'runs': runs, 'stamped': stamped,
            'reported_after_failure': reported_after_failure, 'stdout': r.stdout}


def test_a_failed_seed_fails_the_benchmark_and_keeps_the_other_runs(accuracy_run):
    rc, stderr = accuracy_run['failed']
    assert rc == 1 and 'benchmark FAILED: ' in stderr  # exit status 1, the message on stderr (after the bar)
    code = stderr.split('benchmark FAILED: ', 1)[1]
    assert 'model yolov5n-res2, case scratch, seed 1' in code and 'train.py exit 3: ' in code
    assert 'injected failure' in code and '--reuse-accuracy' in code
    assert accuracy_run['reported_after_failure'] == []  # no report, no JSON: never a partial mean
    failed = 'demo-scratch-yolov5n-res2-seed1'
    assert failed in accuracy_run['runs'] and failed not in accuracy_run['stamped']  # its log stays
    expected = {f'demo-{c}-{m}-seed{s}' for c in ('scratch', 'finetune') for m in ('yolov5n', 'yolov5n-res2')
                for s in range(3)} | {'std-pretrain-yolov5n-seed0'}
    assert set(accuracy_run['stamped']) == expected - {failed}  # every other run finished and is kept
    assert set(accuracy_run['runs']) == expected


def test_accuracy_json_has_seeds_statistics_and_both_cases(accuracy_run):
    d = json.loads((accuracy_run['out'] / 'benchmark.json').read_text())
    acc = d['accuracy']
    assert acc['settings']['seeds'] == [0, 1, 2] and acc['settings']['interval'] == 'welch'
    assert acc['settings']['cases'] == ['scratch', 'finetune'] and acc['settings']['epochs'] == 1
    pre = acc['pretrained']['n']
    assert pre['model'] == 'yolov5n' and pre['data'] == 'std' and Path(pre['weights']).is_file()
    assert list(acc['results']) == ['demo'] and list(acc['results']['demo']) == ['scratch', 'finetune']
    reused = []
    for case, block in acc['results']['demo'].items():
        assert block['seeds'] == [0, 1, 2] and set(block['models']) == {'yolov5n', 'yolov5n-res2'}
        for name, m in block['models'].items():
            assert [r['seed'] for r in m['runs']] == [0, 1, 2]
            for metric in ('mAP50', 'mAP50-95'):
                v = m[metric]
                assert v['values'] == [r[metric] for r in m['runs']] and v['n'] == 3
                assert v['mean'] == pytest.approx(stats.mean(v['values']))
                assert v['sd'] == pytest.approx(stats.sd(v['values']))
            reused += [(case, name, r['seed']) for r in m['runs'] if r.get('reused')]
            if case == 'finetune':
                n, of = m['transferred']
                assert 0 < n < of  # the new head (3 classes, not 6) never transfers
            else:
                assert m['transferred'] is None
        c = block['comparisons']['yolov5n-res2']
        assert c['vs'] == 'yolov5n' and c['family'] == 'res2' and c['suffix'] == 'res2'
        w = c['mAP50-95']['welch']
        assert w == stats.welch_interval(block['models']['yolov5n']['mAP50-95']['values'],
                                         block['models']['yolov5n-res2']['mAP50-95']['values'])
        assert c['mAP50-95']['verdict'] == stats.verdict(w)
        assert re.fullmatch(r'(better by|worse by|no difference detectable at this budget)( [\d.]+)? '
                            r'\(95% CI [-+][\d.]+\.\.[-+][\d.]+\)', c['mAP50-95']['verdict']), c['mAP50-95']['verdict']
        assert c['mAP50-95']['paired']['n'] == 3
    plain_ft = acc['results']['demo']['finetune']['models']['yolov5n']['transferred']
    res2_ft = acc['results']['demo']['finetune']['models']['yolov5n-res2']['transferred']
    assert res2_ft[0] < plain_ft[0]  # the swapped C3 blocks start from scratch
    # the rerun trained only the failed seed and reused the rest
    assert len(reused) == 11 and (FAILING[1], FAILING[0], FAILING[2]) not in reused
    assert acc['cpu_s_total'] > 0 and d['speed'] is None and d['speed_settings'] is None  # --only accuracy
    assert d['accuracy_settings']['seeds'] == 3 and d['accuracy_settings']['min_seeds'] == 3


def test_accuracy_report_states_verdicts_and_plots_the_seeds(accuracy_run):
    out = accuracy_run['out']
    d = json.loads((out / 'benchmark.json').read_text())
    report = (out / 'benchmark.md').read_text()
    assert 'python scripts/benchmark.py --only accuracy' in report  # the exact command
    assert "Welch's t-interval" in report and 'paired-by-seed' in report
    for title in ('### demo, from scratch', '### demo, fine-tuned from a plain YOLOv5 checkpoint'):
        assert title in report
    for block in d['accuracy']['results']['demo'].values():
        assert block['comparisons']['yolov5n-res2']['mAP50-95']['verdict'] in report
    assert 'tensors transferred' in report and '## Cost' not in report and '## Latency' not in report
    assert (out / 'benchmark_accuracy_seeds.png').read_bytes()[:8] == PNG
    assert '](benchmark_accuracy_seeds.png)' in report
    assert 'Res2Net (yolov5n-res2):' in accuracy_run['stdout']  # verdicts printed
    r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'benchmark.py'), '--report-only', '--out', str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / 'benchmark.md').read_text().split('## Machine')[0].split('Command:')[1] == (
        report.split('## Machine')[0].split('Command:')[1])


def test_seeds_and_only_options():
    speed, deploy, acc, blocks = benchmark_settings([])
    assert blocks is None  # the blocks part runs with --only blocks
    assert acc.seeds == 3 and acc.cases == ('scratch', 'finetune') and acc.data == ('demo',)
    assert acc.pretrain_data == 'shapes' and acc.pretrain_epochs == 2 * acc.epochs and acc.seed_list == [0, 1, 2]
    assert (speed.img, speed.runs, speed.profile) == (640, 20, 'missed')
    assert deploy.runtimes == DeploySettings().runtimes and not deploy.given
    with pytest.raises(BenchmarkError, match='at least 3'):
        benchmark_settings(['--seeds', '2'])
    assert benchmark_settings(['--seeds', '2', '--allow-few-seeds'])[2].seeds == 2  # tests of the plumbing only
    with pytest.raises(BenchmarkError, match='at least 3'):
        benchmark_settings(['--seeds', '1', '--allow-few-seeds'])
    speed, deploy, acc, blocks = benchmark_settings(['--only', 'accuracy', '--project', '/tmp/p', '--device', '0'])
    assert blocks is None
    assert speed.device == acc.device == 'cuda:0' and acc.project == '/tmp/p'
    speed, deploy, _, _ = benchmark_settings(['--quick', '--img', '160', '--no-onnx'])
    assert (speed.img, speed.runs, speed.warmup, speed.max_other, speed.profile) == (160, 3, 1, 0.0, 'off')
    assert deploy.runtimes == ('torch',)


def test_blocks_options():
    blocks = benchmark_settings(['--only', 'blocks', '--device', '0', '--threads', '2', '--block-pairs', '4'])[3]
    assert blocks == BlocksSettings(device='cuda:0', threads=2, pairs=4)
    quick = benchmark_settings(['--only', 'blocks', '--quick', '--block-clock', 'cpu'])[3]
    assert quick == BlocksSettings(clock='cpu', **BLOCKS_QUICK)
    with pytest.raises(BenchmarkError, match='BlocksSettings.pairs=0'):
        benchmark_settings(['--only', 'blocks', '--block-pairs', '0'])
    assert report.default_out('blocks', '/tmp/p') == Path('/tmp/p/blocks') and report.default_out(None, '/tmp/p') \
        == report.DEFAULT_OUT  # a part alone never writes over the committed report


def bench_cli(*args, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / 'scripts' / 'benchmark.py'), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_only_blocks_writes_its_section_and_a_json_that_reads_back(tmp_path):
    """--only blocks on the CPU with the --quick (tiny) settings: the report has the section with every case, the
    JSON reads back into the result classes, and --report-only on it gives the same Markdown."""
    pytest.importorskip('timm')
    from extensions.benchmark import reference  # noqa: PLC0415
    out = tmp_path / 'blocks'
    r = bench_cli('--only', 'blocks', '--quick', '--threads', '1', '--block-clock', 'cpu', '--out', out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    md = (out / 'benchmark.md').read_text()
    names = reference.cases(BlocksSettings(**BLOCKS_QUICK))
    assert '## Blocks and stages against timm' in md and 'Whole IQR above 1.00:' in md
    assert all(f'| {n} |' in md for n in names) and '1 threads' in md and 'process CPU time' in md
    assert '## Latency' not in md and '## Accuracy' not in md  # the part alone
    assert 'ours/timm' in r.stdout and all(n in r.stdout for n in names)
    rep = report.read_json(out / 'benchmark.json')
    assert rep.speed is None and rep.models == [] and rep.blocks_settings == BlocksSettings(clock='cpu', threads=1,
                                                                                          **BLOCKS_QUICK)
    assert sorted(c.name for c in rep.blocks.cases) == sorted(names)  # stages: in the order the registry was filled
    assert isinstance(rep.blocks.cases[0], BlockCase)
    for c in rep.blocks.cases:
        assert [(p.name, p.batch) for p in c.passes] == [('inference', 1), ('training', 2)]
        assert all(isinstance(p, BlockPass) and p.ours_ms > 0 and p.ratio_q1 <= p.ratio <= p.ratio_q3
                   for p in c.passes)
    r = bench_cli('--report-only', '--out', out)
    assert r.returncode == 0, r.stderr
    assert (out / 'benchmark.md').read_text() == md


def cuda() -> bool:
    import torch  # noqa: PLC0415  (only these tests need it)
    return torch.cuda.is_available()


def test_only_blocks_on_cuda_without_a_gpu_fails_clearly(tmp_path):
    if cuda():
        pytest.skip('checks the refusal without a GPU')
    r = bench_cli('--only', 'blocks', '--quick', '--device', 'cuda', '--out', tmp_path / 'o', timeout=300)
    assert r.returncode == 1 and 'no CUDA device' in r.stderr and not (tmp_path / 'o').exists()


def test_only_blocks_on_cuda(tmp_path):
    if not cuda():
        pytest.skip('no CUDA device')
    pytest.importorskip('timm')
    r = bench_cli('--only', 'blocks', '--quick', '--device', 'cuda', '--out', tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = report.read_json(tmp_path / 'benchmark.json')
    assert rep.blocks.device != 'CPU' and 'autocast' in rep.blocks.notes[0]


def test_report_has_no_blocks_section_without_the_part():
    rep = Report(run_info(), [])
    assert report.blocks(rep) == [] and not any('against timm' in x for x in report.summary(rep))


def benchmark_settings(argv):
    import benchmark  # noqa: PLC0415  (scripts/benchmark.py; its options need no torch)
    return benchmark.settings(benchmark.parser().parse_args(argv))


def test_given_checkpoints_by_scale(tmp_path):
    (tmp_path / 'yolov5s.pt').write_bytes(b'x')
    (tmp_path / 'mine.pt').write_bytes(b'x')
    got = accuracy.given_checkpoints([str(tmp_path / 'yolov5s.pt'), f'n={tmp_path / "mine.pt"}'])
    assert got == {'s': tmp_path / 'yolov5s.pt', 'n': tmp_path / 'mine.pt'}
    with pytest.raises(BenchmarkError, match='scale'):
        accuracy.given_checkpoints([str(tmp_path / 'mine.pt')])
    with pytest.raises(BenchmarkError, match='no such file'):
        accuracy.given_checkpoints(['s=/nonexistent.pt'])


def test_transferred_line_is_parsed(tmp_path):
    log = tmp_path / 'benchmark_train.log'
    log.write_text('x\n\x1b[34mTransferred 342/349 items from /r/best.pt\x1b[0m\nmore\n')
    assert accuracy.transferred(log) == (342, 349)
    log.write_text('no such line\n')
    assert accuracy.transferred(log) is None and accuracy.transferred(tmp_path / 'missing.log') is None


def test_latency_percentiles_per_model_and_runtime(quick_run):
    out, _, _ = quick_run
    data = json.loads((out / 'benchmark.json').read_text())
    report_text = (out / 'benchmark.md').read_text()
    section = report_text.split('## Latency percentiles', 1)[1].split('\n## ', 1)[0]
    for m in data['models']:
        for kind, title in (('torch', 'PyTorch fused'), ('onnx', 'onnxruntime')):
            r = m['results']['latency'][kind]
            p = r['percentiles_ms']
            assert 0 < p['p50'] <= p['p95'] <= p['p99'] and p['n'] == len(r['times'])
            assert p == stats.latency_percentiles(r['times'])
            assert f'| {m["name"]} | {title} | {p["p50"]:.1f} | {p["p95"]:.1f} | {p["p99"]:.1f} | {p["n"]} |' in section


def test_openvino_runtimes_record_precision_nodes_and_ratio(quick_run):
    out, stdout, _ = quick_run
    data = json.loads((out / 'benchmark.json').read_text())
    assert data['speed']['runtimes'] == ['torch', 'onnx', 'openvino-f32', 'openvino-int8']
    assert data['deploy_settings'] == {'runtimes': ['torch', 'onnx', 'openvino-f32', 'openvino-int8'], 'given': True}
    for m in data['models']:
        f32, q = m['results']['latency']['openvino-f32'], m['results']['latency']['openvino-int8']
        assert f32['precision'] == 'f32' and q['precision'] == 'int8 + f32'  # the f32 hint holds on any CPU
        assert any(k.startswith('Convolution ') for k in f32['nodes'])
        assert not any(k.split()[-1] in ('u8', 'i8') for k in f32['nodes'])
        assert sum(n for k, n in q['nodes'].items() if k.startswith('Convolution ') and k.split()[-1] in ('u8', 'i8'))
        assert 0 < q['percentiles_ms']['p50'] and q['speedup_vs_f32'] > 0
        if m['name'] != 'yolov5n':
            assert f32['ratio']['median'] > 0 and q['ratio']['median'] > 0
    report_text = (out / 'benchmark.md').read_text()
    assert '## OpenVINO latency' in report_text and 'OpenVINO ' + data['speed']['openvino']['openvino'] in report_text
    assert 'latency runtimes: torch, onnx, openvino-f32, openvino-int8' in stdout


def test_report_only_does_not_show_a_single_seed_accuracy(quick_run, tmp_path):
    """A JSON written when the benchmark trained one seed per model: its accuracy is not shown (no interval)."""
    out, _, _ = quick_run
    d = json.loads((out / 'benchmark.json').read_text())
    d['accuracy'] = {'shapes': {'yolov5n': {'mAP50': 0.2, 'mAP50-95': 0.1, 'P': 0.1, 'R': 0.4, 'epochs': 30}}}
    (tmp_path / 'benchmark.json').write_text(json.dumps(d))
    r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'benchmark.py'), '--report-only', '--out',
                        str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    text = (tmp_path / 'benchmark.md').read_text()
    assert 'older, single-seed format: not shown' in text and '### shapes' not in text


def test_code_watch_fails_only_models_whose_math_changed(monkeypatch):
    """An edit of extensions/ while the benchmark runs: accepted when no model's fingerprint changed; the runs of a
    model whose fingerprint changed fail from then on; a tree that does not build fails the run at hand only."""
    fa, fb = {'shapes': 'a', 'out': [1.0]}, {'shapes': 'b', 'out': [2.0]}
    hashes = iter(['h0', 'h0', 'h1', 'h1', 'h2', 'h3', 'h3'])
    fresh = iter([{'a.yaml': fa, 'b.yaml': fb}, None, {'a.yaml': fa, 'b.yaml': {**fb, 'out': [2.5]}}])
    monkeypatch.setattr(accuracy, 'code_hash', lambda: next(hashes))
    monkeypatch.setattr(accuracy, 'fresh_fingerprints', lambda cfgs: next(fresh))
    w = accuracy.CodeWatch({'a.yaml': fa, 'b.yaml': fb})  # h0
    assert w.ok('b.yaml')  # h0: unchanged, nothing rebuilt
    assert w.ok('b.yaml')  # h1: an edit that changes no model
    assert w.ok('a.yaml')  # h1 accepted
    assert not w.ok('a.yaml')  # h2: does not build now
    assert not w.ok('b.yaml') and w.ok('a.yaml')  # h3: b's math changed, a's did not


# ------------------------------------------------------------------------------ settings, schema, cases
def test_settings_name_the_bad_value():
    with pytest.raises(BenchmarkError, match="profile 'sometimes'"):
        SpeedSettings(profile='sometimes')
    with pytest.raises(BenchmarkError, match='runs 0: at least 1'):
        SpeedSettings(runs=0)
    with pytest.raises(BenchmarkError, match='runtimes tensorrt'):
        DeploySettings(('torch', 'tensorrt'))
    with pytest.raises(BenchmarkError, match='cases cold'):
        AccuracySettings(cases=('scratch', 'cold'))
    assert AccuracySettings().cases == ('scratch', 'finetune')  # warm is opt-in
    assert SpeedSettings(device='1').device == 'cuda:1' and SpeedSettings(device='1').cuda
    assert AccuracySettings(data=['demo', 'shapes']).data == ('demo', 'shapes')  # frozen: tuples
    with pytest.raises(AttributeError):
        SpeedSettings().img = 320  # frozen


def test_committed_report_is_what_its_json_gives(tmp_path, monkeypatch, capsys):
    """docs/benchmark/benchmark.json reads back into the Report classes and regenerates the committed
    docs/benchmark/benchmark.md line for line (paths made relative to the checkout the run was made in), without
    printing anything."""
    rep = report.read_json(report.DEFAULT_OUT / 'benchmark.json')
    assert rep.speed is not None and rep.accuracy is not None and len(rep.models) == 13
    monkeypatch.setattr(models, 'ROOT', Path(rep.accuracy_settings.project).parents[1])
    files = plots.plots(rep.models, rep.accuracy, tmp_path)
    assert sorted(files) == sorted(p.name for p in report.DEFAULT_OUT.glob('*.png'))
    f = report.write_report(rep, tmp_path, files, str(report.DOCS_NOTES))
    assert f.read_text().splitlines() == (report.DEFAULT_OUT / 'benchmark.md').read_text().splitlines()
    assert capsys.readouterr().out == ''


def test_json_round_trip(tmp_path):
    """write_json then read_json gives the same Report (the schema is the dataclasses')."""
    rep = report.read_json(report.DEFAULT_OUT / 'benchmark.json')
    report.write_json(rep, tmp_path)
    back = report.read_json(tmp_path / 'benchmark.json')
    assert asdict(back) == asdict(rep)
    d = json.loads((tmp_path / 'benchmark.json').read_text())
    d['models'][0]['results']['latency']['torch']['speed'] = 1.0
    (tmp_path / 'benchmark.json').write_text(json.dumps(d))
    with pytest.raises(ValueError, match='Latency: unknown field.*speed'):
        report.read_json(tmp_path / 'benchmark.json')
    with pytest.raises(BenchmarkError, match='no such file'):
        report.read_json(tmp_path / 'missing' / 'benchmark.json')


def test_machine_line_names_the_cpu_as_cpu_on_a_gpu_run():
    info = run_info(device='cuda', gpu='NVIDIA H100 80GB HBM3')
    rep = Report(info, [], speed=SpeedResult(runtimes=['torch'], load_start=(0.1, 0.1, 0.1)))
    line = report.machine(rep)[2]
    assert line.startswith('- CPU: AMD EPYC (avx2), 2 logical cores') and line.endswith('; GPU: NVIDIA H100 80GB HBM3')
    assert 'GPU: AMD' not in '\n'.join(report.machine(rep))
    assert report.machine(Report(info, []))[2].startswith('- CPU: AMD EPYC')  # accuracy only


def test_openvino_node_rows_of_equal_time_have_one_order():
    p = {'ext': {'Reshape bf16': {'n': 22, 'ms': 0.0}, 'Reorder bf16': {'n': 44, 'ms': 0.0},
                 'Convolution bf16': {'n': 9, 'ms': 3.0}, 'Reshape f32': {'n': 31, 'ms': 0.0}},
         'plain': {'Reshape f32': {'n': 9, 'ms': 0.5}, 'Convolution bf16': {'n': 6, 'ms': 2.0}}}
    keys = set(p['ext']) | set(p['plain'])
    rows = sorted(keys, key=lambda k: report._node_order(p, k))
    assert rows == ['Convolution bf16', 'Reshape f32', 'Reorder bf16', 'Reshape bf16']
    assert sorted(reversed(sorted(keys)), key=lambda k: report._node_order(p, k)) == rows


def test_a_case_with_its_own_start_checkpoint(tmp_path, monkeypatch):
    """A case is one row of cases.CASES: one that starts from a per-model checkpoint made from the plain one
    (Case.start) is planned with the plain checkpoint, gets its own checkpoint per model, and is reported with
    its titles and what it says about each start."""
    made = []

    def start(req):
        made.append(req)
        req.out_dir.mkdir(parents=True, exist_ok=True)
        (req.out_dir / 'start.pt').write_bytes(b'x')
        return {'weights': str(req.out_dir / 'start.pt'), 'map_start': 0.2, 'map_plain': 0.25, 'cpu_s': 90.0,
                'val_cpu_s': 6.0, 'threads': 1, 'data': 'shapes.yaml', 'transferable': [546, 547],
                'layers': [[2, 0.47, 0.14, 0.15]]}

    case = cases.Case('lukewarm', 'fine-tuned from a lukewarm start', 'lukewarm', '**Lukewarm**: {checkpoints}.',
                      'Fine-tuned from the lukewarm start', pretrained=True, start=start)
    monkeypatch.setitem(cases.CASES, 'lukewarm', case)
    st = AccuracySettings(cases=('scratch', 'lukewarm'), pretrained=(f'n={tmp_path / "plain.pt"}',), seed=7)
    (tmp_path / 'plain.pt').write_bytes(b'p')
    groups = {'n': [models.plain_entry('n'), Entry('yolov5n-res2', 'r.yaml', 'n', 'res2', 'res2')]}
    monkeypatch.setattr(accuracy, 'dataset', lambda name: (name, tmp_path / f'{name}.yaml'))
    p = accuracy.plan(groups, st)
    assert p['pretrain'] == {'n': tmp_path / 'plain.pt'}
    assert [(j.case, j.entry.name) for j in p['jobs'][:4]] == [
        ('scratch', 'yolov5n'), ('scratch', 'yolov5n-res2'), ('lukewarm', 'yolov5n'), ('lukewarm', 'yolov5n-res2')]
    made_by_run: dict = {}
    pre = {'weights': str(tmp_path / 'plain.pt'), 'data_yaml': str(tmp_path / 'shapes.yaml')}  # trained on shapes
    w = accuracy.start_weights(p['jobs'][3], pre, tmp_path, made_by_run, st)
    assert Path(w['weights']).read_bytes() == b'x'
    seed1 = next(j for j in p['jobs'] if (j.case, j.entry.name, j.seed) == ('lukewarm', 'yolov5n-res2', 8))
    assert accuracy.start_weights(seed1, pre, tmp_path, made_by_run, st) == w
    assert len(made) == 1 and made[0].cfg == 'r.yaml' and made[0].plain == tmp_path / 'plain.pt'
    assert made[0].out_dir == tmp_path / 'start' / 'lukewarm-yolov5n-res2' and made[0].seed == 7  # the --seed
    assert made[0].family == 'res2' and made[0].data_yaml == tmp_path / 'demo.yaml'
    assert made[0].plain_data == tmp_path / 'shapes.yaml'  # the checkpoint's own task, for its mAP before tuning
    assert report_accuracy.title('lukewarm') == 'fine-tuned from a lukewarm start'
    assert report_accuracy.starts_from_checkpoint('lukewarm') and not report_accuracy.starts_from_checkpoint('scratch')
    run = {'seed': 7, 'mAP50-95': 0.3, 'mAP50': 0.5, 'P': 0.5, 'R': 0.5, 'cpu_s': 840.0,
           'start': {k: v for k, v in w.items() if k != 'weights'}}
    summary = accuracy.summarise_model([run, {**run, 'seed': 8}])
    lines = report_accuracy.start_lines({'models': {'yolov5n-res2': summary}}, ['yolov5n-res2'])
    # CPU: 90 s less the 6 s of mAP evaluation = 1.40 min, 10% of the 840 s fine-tuning run
    assert lines[-3] == '| yolov5n-res2 | 0.200 | 0.250 | 0.80 | 546/547 | 2: 0.47->0.14 (0.15) | 1.40 | 10% |'
    assert '(shapes.yaml)' in lines[-1] and 'evaluations (1 CPU thread)' in lines[-1]


def test_plain_yolov5_of_the_warm_case_is_its_finetune_run():
    """Plain YOLOv5 starts from the plain checkpoint in both finetune and warm: the same training, run once."""
    plain, res2 = models.plain_entry('n'), Entry('yolov5n-res2', 'r.yaml', 'n', 'res2', 'res2')
    done = {'seed': 1, 'mAP50-95': 0.4, 'run': 'demo-finetune-yolov5n-seed1'}
    runs = {'demo': {'finetune': {'yolov5n': [{**done, 'seed': 0}, done]}}}
    twin = accuracy.plain_twin(accuracy.Job(plain, 'demo', Path('d.yaml'), 'warm', 1, 20, 160), runs)
    assert twin == {**done, 'same_as': 'finetune'}
    assert accuracy.plain_twin(accuracy.Job(res2, 'demo', Path('d.yaml'), 'warm', 1, 20, 160), runs) is None
    assert accuracy.plain_twin(accuracy.Job(plain, 'demo', Path('d.yaml'), 'warm', 2, 20, 160), runs) is None
    assert accuracy.plain_twin(accuracy.Job(plain, 'demo', Path('d.yaml'), 'scratch', 1, 20, 160), runs) is None


def test_warm_case_starts_plain_yolov5_from_the_plain_checkpoint(tmp_path):
    """Plain YOLOv5 has nothing to warm-start: in the warm case it starts from the plain checkpoint itself."""
    req = cases.StartRequest(cfg='yolov5n.yaml', family=None, plain=tmp_path / 'plain.pt', out_dir=tmp_path / 'o',
                             data_yaml=tmp_path / 'd.yaml', img=160, seed=0, device='cpu')
    assert cases.CASES['warm'].start(req) == {'weights': str(tmp_path / 'plain.pt')}
    assert not (tmp_path / 'o').exists()
