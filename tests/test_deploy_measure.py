"""scripts/measure_deploy.py (extensions.deploy.measure): which export.py calls it makes and in what order, how
it reads the precision OpenVINO ran in, and how it compares each format with the static ONNX. The tool itself
runs YOLOv5's scripts on trained checkpoints; its measured output is in docs/deploy_openvino.md and
docs/deploy_tflite.md."""

import ast
import subprocess
import sys

import pytest
from conftest import ROOT
from e2e_utils import with_pythonpath

from extensions.deploy.measure import DEFAULT_FORMATS, FORMATS, export_calls, openvino_precision, table
from extensions.deploy.openvino import precision_line


def test_export_calls_int8_first_half_apart_float_formats_in_one_call():
    calls = export_calls(DEFAULT_FORMATS)
    assert calls[0] == ('', ('openvino', '--int8'))  # before the float call, whose SavedModel/ONNX must be last
    assert ('fp16', ('openvino', '--half')) in calls  # --half on its own copy: it writes the same folder name
    assert calls[-1] == ('', ('onnx', 'openvino', 'tflite', 'torchscript'))
    assert len(calls) == 3


def test_export_calls_tflite_int8_before_float_tf():
    calls = export_calls(['onnx', 'tflite-int8', 'tflite-fp32', 'saved_model'])
    assert calls == [('', ('tflite', '--int8')), ('', ('onnx', 'saved_model', 'tflite'))]


def test_every_format_is_written_where_its_export_puts_it():
    for name, f in FORMATS.items():
        assert f.file.startswith('fp16/') == ('--half' in f.export), name
        assert f.runtime or name in ('saved_model', 'pb'), name


class _Ver:
    def __init__(self, name):
        self.name = name


class _Op:
    def __init__(self, t):
        self.t = t

    def get_type_name(self):
        return self.t


class _Net:
    def get_ops(self):
        return [_Op('Convolution'), _Op('FakeQuantize')]


@pytest.mark.parametrize('actual', ['f32', 'bf16'])
def test_openvino_precision_read_from_the_line_deployment_logs(actual):
    line = precision_line('2026.4.1-123', 'CPU', 'f32', actual, _Net(), ['FP32', 'BF16'])
    assert openvino_precision(f'val: ...\n{line}\n  all 10 20 0.5 0.5 0.4 0.2\n') == actual
    assert openvino_precision('no such line') == '?'


def _row(run, fmt, m):
    return {'run': run, 'format': fmt, 'title': FORMATS[fmt].title, 'precision': 'f32', 'MB': 1.0, 'mAP50': 0.5,
            'mAP50-95': m, 'latency_ms': 3.0}


def test_table_marks_formats_off_the_static_onnx_but_not_the_rectangular_pt():
    rows = [_row('a', 'pt', 0.300), _row('a', 'onnx', 0.200), _row('a', 'openvino-f32', 0.204),
            _row('a', 'tflite-fp16', 0.190), _row('b', 'onnx', 0.100), _row('b', 'tflite-fp32', 0.1001),
            _row('b', 'openvino-int8', 0.095), _row('a', 'openvino-int8', 0.185), _row('a', 'tflite-int8', 0.230)]
    text, over = table(rows, 0.005, 0.01)
    # -0.010 in fp16 and an INT8 drop of 0.015; the .pt (+0.100, rectangular batches) and INT8 gains are not held
    assert over == ['a tflite-fp16', 'a openvino-int8']
    lines = text.splitlines()
    assert '+0.004 |' in lines[4] and 'over' not in lines[4]
    assert '-0.010 (over 0.005)' in lines[5]
    assert '+0.000 |' in lines[7]  # compared with its own run's ONNX
    assert '-0.005 |' in lines[8]  # INT8 within its 0.01 drop
    assert '-0.015 (drop over 0.01)' in lines[9] and '+0.030 |' in lines[10]


def test_cli_names_a_missing_checkpoint(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'measure_deploy.py'), '--weights',
                        str(tmp_path / 'nope.pt')], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'nope.pt: no such file' in r.stderr


def _imports(path) -> set[str]:
    """Modules a source file imports (absolute names; relative ones resolved against its package)."""
    tree = ast.parse(path.read_text())
    pkg = '.'.join(path.relative_to(ROOT).with_suffix('').parts[:-1])
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = pkg.rsplit('.', node.level - 1)[0] if node.level else ''
            out.add('.'.join(filter(None, [base, node.module or ''])))
    return out


def test_deploy_and_the_machine_facts_do_not_import_the_benchmark():
    """extensions.machine (CPU model and flags, load, /proc, RSS) is the floor both packages stand on: it imports
    nothing of the overlay, and extensions.deploy never imports extensions.benchmark (which imports deploy)."""
    assert not {m for m in _imports(ROOT / 'extensions' / 'machine.py') if m.startswith('extensions')}
    for f in sorted((ROOT / 'extensions' / 'deploy').rglob('*.py')):
        assert not {m for m in _imports(f) if m.startswith('extensions.benchmark')}, f
    assert 'extensions.machine' in _imports(ROOT / 'extensions' / 'deploy' / 'measure.py')
    code = ('import sys, extensions.deploy.measure; '
            'print(sorted(m for m in sys.modules if m.startswith(("extensions.benchmark", "torch"))))')
    env = with_pythonpath(ROOT, ROOT / 'yolov5')
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and r.stdout.strip() == '[]', r.stdout + r.stderr
