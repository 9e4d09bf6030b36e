"""scripts/benchmark.py and extensions.benchmark: a --quick smoke run into a temporary directory, and its
bookkeeping.

No timing assertions: how fast the blocks are is what the benchmark measures and reports, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BASE, ROOT

from extensions import families
from extensions.benchmark import accuracy, models, plots, report, stats, targets

PNG = b'\x89PNG\r\n\x1a\n'


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
           '--runs', '3', '--threads', '1', '--train-img', '160', '--train-batch', '2', '--out', str(out)]
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
    values = [ext['cost']['params_ratio'], ext['cost']['gflops_ratio']]
    for kind in ('torch', 'onnx', 'train'):
        r = ext[kind]['ratio']
        assert r['n'] == (3 if kind != 'train' else 2)
        values += [r['median'], r['p25'], r['p75']]
        assert len(ext[kind]['times']) == len(ext[kind]['plain_times'])
    values += [ext['torch']['rate_ratio'], ext['onnx']['rate_ratio'], ext['train']['images_per_s'],
               ext['torch']['latency_ms'], ext['onnx']['latency_ms']]
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in values), values
    assert ext['memory'].get('delta_mb', -1) >= 0, ext['memory']
    # the report shows the same ratio as the JSON
    report = (out / 'benchmark.md').read_text()
    assert f'{ext["torch"]["ratio"]["median"]:.2f} (' in report


def test_targets_section_lists_met_or_missed(quick_run):
    out, stdout, _ = quick_run
    report = (out / 'benchmark.md').read_text()
    targets = report.split('## Targets', 1)[1]
    lines = [ln for ln in targets.splitlines() if ln.startswith('| yolov5n-res2')]
    assert len(lines) == 7  # params, GFLOPs, 2 x (latency, FLOP rate), training
    assert all(('**met**' in ln) != ('**missed**' in ln) for ln in lines), lines
    printed = [ln for ln in stdout.splitlines() if re.match(r'\s+(MET|MISSED)\s+yolov5n-res2:', ln)]
    assert len(printed) == 7


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
    assert [e.family for e in groups['n']] == ['', 'serd']
    assert groups['s'][1].target_family == 'res2' and groups['s'][2].target_family is None
    bad = tmp_path / 'mymodel.yaml'
    bad.write_text('# placeholder\n')
    with pytest.raises(SystemExit, match='scale'):
        models.resolve_groups([str(bad)], [], [])


def test_a_new_family_row_is_benchmarked_without_edits(tmp_path, monkeypatch):
    """A fourth row of extensions/families.py with its YAMLs: chosen by its key, its own row with the targets
    every family has (no latency target of its own), its own colour and name in the plots and report title."""
    new = families.Family('foo', 'foo', 'Foo', 'A paper', 'C3_Foo', 'foo')
    monkeypatch.setattr(families, 'FAMILIES', (*families.FAMILIES, new))
    monkeypatch.setattr(families, 'MODELS_YAML', tmp_path)
    for scale in ('n', 's'):
        (tmp_path / f'yolov5{scale}-foo.yaml').write_text('# placeholder\n')
    groups = models.resolve_groups(None, ['n', 's'], ['foo'])
    assert [[e.name for e in g] for g in groups.values()] == [['yolov5n', 'yolov5n-foo'], ['yolov5s', 'yolov5s-foo']]
    e = groups['s'][1]
    assert e.family == 'foo' and e.block_family is new and e.target_family == 'foo'
    e.results = {'cost': {'params_ratio': 1.05, 'gflops_ratio': 1.05},
                 'torch': {'ratio': {'median': 1.5}, 'rate_ratio': 0.7},
                 'onnx': {'ratio': {'median': 1.5}, 'rate_ratio': 0.7}, 'train': {'ratio': {'median': 0.9}}}
    assert targets.latency_target(e) is None
    assert [(t['kind'], t['status']) for t in targets.targets_for(e)] == [
        ('cost', 'met'), ('cost', 'met'), ('rate', 'missed'), ('rate', 'missed'), ('train', 'met')]
    others = {plots.color(f.suffix) for f in families.FAMILIES[:-1]} | {plots.color(''), plots.color('rs')}
    assert plots.color('foo') not in others and plots.label('foo') == 'Foo'
    title = report.head({'date': 'today', 'duration_min': 1.0, 'command': 'x'}, argparse.Namespace(quick=False))[0]
    assert title == '# Benchmark: YOLOv5 with Res2Net, ResNeSt, SE-ResNet-D and Foo blocks against plain YOLOv5'


def test_yaml_of_no_family_is_its_own_row(tmp_path):
    cfg = tmp_path / 'yolov5s-mine.yaml'
    cfg.write_text('# placeholder\n')
    groups = models.resolve_groups([str(cfg)], [], [])
    e = groups['s'][1]
    assert (e.name, e.family, e.block_family, e.target_family) == ('yolov5s-mine', 'mine', None, None)
    assert targets.targets_for(e, force=True) == [] and plots.label('mine') == 'mine'
    assert plots.color('mine') == plots.OTHER_COLOR == plots.color('rs')
    rs = models.resolve_groups(None, ['s'], ['rs'])['s'][1]  # a variant's suffix also names a default YAML
    assert rs.cfg == str(ROOT / 'models_yaml' / 'yolov5s-rs.yaml') and rs.block_family.key == 'serd'
    assert plots.label('rs') == 'ResNet-RS backbone'


def test_report_goes_to_docs_benchmark_with_the_hand_written_notes(tmp_path):
    assert report.DEFAULT_OUT == ROOT / 'docs' / 'benchmark'
    assert report.notes_path(None, report.DEFAULT_OUT) == ROOT / 'docs' / 'benchmark_notes.md'
    assert report.notes_path(None, tmp_path) == tmp_path / 'benchmark_notes.md'
    assert report.notes_path('x.md', tmp_path) == Path('x.md')


def test_targets_logic():
    e = models.Entry('yolov5s-serd', 'x.yaml', 's', 'serd')
    e.results = {'cost': {'params_ratio': 1.05, 'gflops_ratio': 1.20},
                 'torch': {'ratio': {'median': 1.08}, 'rate_ratio': 1.20 / 1.08},
                 'onnx': {'ratio': {'median': 1.12}, 'rate_ratio': 1.20 / 1.12},
                 'train': {'ratio': {'median': 0.79}}}
    status = {t['what']: t['status'] for t in targets.targets_for(e)}
    assert status == {'params vs plain': 'met', 'GFLOPs vs plain': 'missed',
                      'latency ratio, PyTorch fused': 'met', 'achieved GFLOP/s vs plain, PyTorch fused': 'met',
                      'latency ratio, onnxruntime': 'missed', 'achieved GFLOP/s vs plain, onnxruntime': 'met',
                      'training throughput ratio': 'missed'}
    assert targets.targets_for(models.Entry('yolov5n-serd', 'x.yaml', 'n', 'serd')) == []  # targets are set at s
    assert targets.targets_for(models.Entry('yolov5s-rs', 'x.yaml', 's', 'rs'), force=True) == []  # a variant


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
    with pytest.raises(SystemExit, match="coco128:m.*'m' is not in this run"):
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
