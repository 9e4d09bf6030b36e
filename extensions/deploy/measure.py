"""Measure trained checkpoints in every CPU deployment format: mAP (val.py), file size, precision, latency.

    python scripts/measure_deploy.py --weights runs/demo/exp1/train/weights/best.pt [more.pt ...] \
        [--data D] [--img 160] [--formats pt torchscript onnx openvino-f32 ...] [--project runs/deploy]

For each checkpoint, on a copy in ``<project>/<name>/`` (the exports are written next to the weights, so the
training run's folder stays untouched), YOLOv5's own scripts run as a user runs them:

* ``export.py`` for each format asked for (static shapes, batch 1): ``--include torchscript onnx openvino tflite
  [saved_model pb]`` in one call, ``--include openvino --half`` on a second copy (it writes the same folder name),
  ``--include openvino --int8 --data D`` (NNCF on the data's training images) and ``--include tflite --int8``;
* ``val.py --img <img>`` on the .pt and on every export, recording the precision OpenVINO logged it ran in
  (``YOLOV5_OPENVINO_PRECISION`` as in the environment; default f32);
* latency in this process, batch 1 at ``img``, every format of the checkpoint taking turns in each round (a
  noisy shared machine slows all of them alike), median of ``--rounds``, with torch, onnxruntime, OpenVINO and
  TFLite all on ``--threads`` threads (default 1: on a shared, oversubscribed machine a 2-thread pool waits at
  every barrier for its preempted thread). SavedModel and GraphDef are validated, not timed.

An exported model runs in val.py at batch 1 on square ``img x img`` letterboxed images, so each is compared
with the static ONNX model in onnxruntime, which runs exactly so; the ``.pt`` row runs val.py's rectangular
batches and is shown for reference. Prints a Markdown table (format, precision, size, mAP50, mAP50-95, its
difference to ONNX, latency, the CPU and its flags) and writes it with the commands to
``<project>/<name>/measure.json``; ``--markdown`` also writes the table to a file. Exit status 1 when a step
fails; a float format more than ``--tolerance`` (0.005) off the ONNX, or an INT8 one more than ``--int8-drop``
(0.01) below it, is marked in the table, and is an error only with ``--strict``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..machine import cpu_flags, cpu_model
from ..runs import RunError, parse_map, run_command, script_command


@dataclass(frozen=True)
class Format:
    title: str
    export: tuple  # export.py arguments after --include ('' for the .pt itself)
    file: str  # what export.py writes, relative to the checkpoint copy's folder
    runtime: str  # how latency runs it: torch, torchscript, onnx, openvino, tflite, '' (not timed)
    precision: str  # what it computes in ('openvino' rows: read from val.py's log)


FORMATS = {
    'pt': Format('PyTorch .pt (rectangular val)', (), '{stem}.pt', 'torch', 'f32'),
    'torchscript': Format('TorchScript', ('torchscript',), '{stem}.torchscript', 'torchscript', 'f32'),
    'onnx': Format('ONNX (static), onnxruntime', ('onnx',), '{stem}.onnx', 'onnx', 'f32'),
    'openvino-f32': Format('OpenVINO', ('openvino',), '{stem}_openvino_model', 'openvino', ''),
    'openvino-half': Format('OpenVINO --half (fp16 weights)', ('openvino', '--half'),
                            'fp16/{stem}_openvino_model', 'openvino', ''),
    'openvino-int8': Format('OpenVINO --int8 (NNCF)', ('openvino', '--int8'), '{stem}_int8_openvino_model',
                            'openvino', ''),
    'tflite-fp32': Format('TFLite fp32', ('tflite',), '{stem}-fp32.tflite', 'tflite', 'f32'),
    'tflite-fp16': Format('TFLite fp16', ('tflite',), '{stem}-fp16.tflite', 'tflite', 'fp16 weights, f32 compute'),
    'tflite-int8': Format('TFLite --int8', ('tflite', '--int8'), '{stem}-int8.tflite', 'tflite', 'int8'),
    'saved_model': Format('TF SavedModel', ('saved_model',), '{stem}_saved_model', '', 'f32'),
    'pb': Format('TF GraphDef (.pb)', ('pb',), '{stem}.pb', '', 'f32'),
}
DEFAULT_FORMATS = ('pt', 'torchscript', 'onnx', 'openvino-f32', 'openvino-half', 'openvino-int8', 'tflite-fp32',
                   'tflite-fp16')
FLAGGED = {'--half', '--int8'}  # exports of their own (a flag applies to every format of an export.py call)


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob('*') if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def run_opt(weights: Path) -> dict:
    """The training run's opt.yaml (``<run>/opt.yaml`` for ``<run>/weights/best.pt``), or {}."""
    f = weights.parent.parent / 'opt.yaml'
    return yaml.safe_load(f.read_text()) if f.is_file() else {}


def step(cmd, log: Path, echo: bool, commands: list) -> str:
    """Run one of YOLOv5's scripts; its output goes to ``log``. A failure raises RunError naming the log."""
    t0 = time.time()
    r = run_command(cmd, echo=echo)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(r.stdout)
    commands.append({'cmd': ' '.join(map(str, cmd[1:])), 'seconds': round(time.time() - t0, 1), 'rc': r.returncode})
    if r.returncode != 0:
        raise RunError(f'{Path(cmd[1]).name} failed (exit {r.returncode}); its output: {log}')
    return r.stdout


def export_calls(formats) -> list[tuple[str, tuple]]:
    """(sub-folder, export.py --include arguments) per export.py call: the flagged exports (--int8, --half) one by
    one, the INT8 ones first (TFLite --int8 writes the SavedModel the float export must overwrite), then every
    float format in one call."""
    flagged = sorted({FORMATS[f].export for f in formats if FLAGGED & set(FORMATS[f].export)},
                     key=lambda a: '--int8' not in a)
    plain = sorted({a for f in formats if FORMATS[f].export and not FLAGGED & set(FORMATS[f].export)
                    for a in FORMATS[f].export})
    calls = [('fp16' if '--half' in a else '', a) for a in flagged]
    return calls + ([('', tuple(plain))] if plain else [])


def openvino_precision(val_output: str) -> str:
    """The precision OpenVINO logged ('OpenVINO ...: CPU inference precision f32 (...)'), or '?'."""
    for line in val_output.splitlines():
        if 'inference precision ' in line:
            return line.split('inference precision ')[1].split(' ')[0]
    return '?'


def measure(weights: Path, formats, data, img, project: Path, echo=False, name='') -> dict:
    """Export ``weights`` to every format, val.py each; {'name', 'data', 'img', 'rows': [...], 'commands'}."""
    opt = run_opt(weights)
    data = data or opt.get('data')
    img = int(img or opt.get('imgsz') or 640)
    if not data or not Path(data).is_file():
        raise RunError(f'{weights}: no data yaml (give --data; the run has no opt.yaml naming one that exists)')
    name = name or Path(opt.get('cfg') or weights.stem).stem
    work = project / name
    logs, commands = work / 'logs', []
    for sub, include in export_calls(formats):
        pt = work / sub / weights.name
        pt.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(weights, pt)
        extra = ['--data', data] if '--int8' in include else []
        step(script_command('export.py', '--weights', pt, '--include', *include, *extra, '--img', img, '--device',
                            'cpu'), logs / f'export-{"-".join(a.strip("-") for a in include)}.log', echo, commands)
    pt = work / weights.name
    shutil.copy2(weights, pt)
    rows = []
    for f in formats:
        fmt = FORMATS[f]
        model = work / fmt.file.format(stem=pt.stem)
        if not model.exists():
            raise RunError(f'{model} was not written by export.py (see {logs})')
        out = step(script_command('val.py', '--weights', model, '--data', data, '--img', img, '--device', 'cpu',
                                  '--project', work / 'val', '--name', f, '--exist-ok'), logs / f'val-{f}.log', echo,
                   commands)
        precision = openvino_precision(out) if fmt.runtime == 'openvino' else fmt.precision
        if f == 'openvino-int8':
            precision = f'int8 + {precision}'
        rows.append({'run': name, 'format': f, 'title': fmt.title, 'file': str(model), 'MB': size_mb(model),
                     'precision': precision, **parse_map(out, f'val.py {f}')})
    return {'name': name, 'weights': str(weights), 'data': str(data), 'img': img, 'rows': rows, 'commands': commands}


# ------------------------------------------------------------------------------------------------ latency
def runner(fmt: Format, path: Path, x, threads: int):
    """A no-argument call running one batch-1 inference of the model at ``path`` on ``x`` (NCHW float32)."""
    if fmt.runtime == 'torch':
        import torch
        from models.experimental import attempt_load
        m, xt = attempt_load(path, device=torch.device('cpu'), fuse=True).eval(), torch.from_numpy(x)
        return lambda: m(xt)
    if fmt.runtime == 'torchscript':
        import torch
        m, xt = torch.jit.load(str(path), map_location='cpu').eval(), torch.from_numpy(x)
        return lambda: m(xt)
    if fmt.runtime == 'onnx':
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        s = ort.InferenceSession(str(path), so, providers=['CPUExecutionProvider'])
        return lambda: s.run(None, {s.get_inputs()[0].name: x})
    if fmt.runtime == 'openvino':  # compiled as DetectMultiBackend compiles it, with the thread count fixed
        from . import openvino as ovd
        ov = ovd.require('openvino', ovd.OPENVINO_REQUIREMENT)
        _, config = ovd.precision_config()
        c = ov.Core().compile_model(str(next(path.glob('*.xml'))), 'CPU', {**config, 'INFERENCE_NUM_THREADS': threads})
        req = c.create_infer_request()
        return lambda: req.infer([x], share_inputs=True)
    from extensions.tf.deploy import tflite_interpreter
    interpreter = tflite_interpreter()[0](model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    xi = x.transpose(0, 2, 3, 1)  # NHWC
    if inp['dtype'] != xi.dtype:  # --int8: quantized input
        scale, zero = inp['quantization']
        xi = (xi / scale + zero).astype(inp['dtype'])

    def run():
        interpreter.set_tensor(inp['index'], xi)
        interpreter.invoke()
    return run


def latency(rows: list[dict], img: int, rounds: int, threads: int) -> None:
    """rows[i]['latency_ms']: median ms of a batch-1 inference, the timed formats taking turns in every round."""
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    x = np.random.default_rng(0).random((1, 3, img, img), dtype=np.float32)
    runs = {i: runner(FORMATS[r['format']], Path(r['file']), x, threads) for i, r in enumerate(rows)
            if FORMATS[r['format']].runtime}
    times = {i: [] for i in runs}
    with torch.inference_mode():
        for f in runs.values():  # warm-up
            for _ in range(3):
                f()
        for _ in range(rounds):
            for i, f in runs.items():
                t0 = time.perf_counter()
                f()
                times[i].append((time.perf_counter() - t0) * 1e3)
    for i, t in times.items():
        rows[i]['latency_ms'] = float(np.median(t))


# ------------------------------------------------------------------------------------------------ report
def off_target(fmt: str, diff: float, tolerance: float, int8_drop: float) -> str:
    """'' if a format's mAP50-95 difference to the static ONNX is on target, else what it misses: float formats
    within +-tolerance, INT8 formats at most int8_drop below (the .pt, rectangular batches, is not held to it)."""
    if fmt == 'pt':
        return ''
    if fmt.endswith('int8'):
        return f'drop over {int8_drop}' if diff < -int8_drop else ''
    return f'over {tolerance}' if abs(diff) > tolerance else ''


def table(rows: list[dict], tolerance: float, int8_drop: float = 0.01) -> tuple[str, list[str]]:
    """(Markdown table, the rows off target against the same run's static ONNX: see off_target)."""
    onnx = {r['run']: r for r in rows if r['format'] == 'onnx'}
    over = []
    lines = ['| run | format | precision | size MB | mAP50 | mAP50-95 | - ONNX | latency ms |',
             '|---|---|---|---:|---:|---:|---:|---:|']
    for r in rows:
        ref = onnx.get(r['run'])
        d = '' if ref is None or r is ref else f"{r['mAP50-95'] - ref['mAP50-95']:+.3f}"
        miss = off_target(r['format'], r['mAP50-95'] - ref['mAP50-95'], tolerance, int8_drop) if d else ''
        if miss:
            d += f' ({miss})'
            over.append(f"{r['run']} {r['format']}")
        lat = f"{r['latency_ms']:.1f}" if 'latency_ms' in r else '-'
        lines.append(f"| {r['run']} | {r['title']} | {r['precision']} | {r['MB']:.1f} | {r['mAP50']:.3f} | "
                     f"{r['mAP50-95']:.3f} | {d} | {lat} |")
    return '\n'.join(lines) + '\n', over


def measure_all(weights: list[Path], formats, data, img, project: Path, rounds: int, threads: int,
                echo=False) -> list[dict]:
    """measure() each checkpoint (onnx always added: the reference of the other formats), then its latency;
    writes ``<project>/<name>/measure.json`` for each. Rows of every checkpoint; RunError when a step fails."""
    formats = [f for f in FORMATS if f in formats or f == 'onnx']
    rows, names = [], []
    for w in weights:
        name = Path(run_opt(w).get('cfg') or w.stem).stem
        name = f'{name}-{names.count(name) + 1}' if name in names else name
        names.append(name)
        r = measure(w.resolve(), formats, data, img, project.resolve(), echo, name)
        if rounds > 0:
            latency(r['rows'], r['img'], rounds, threads)
        r.update(cpu=cpu_model(), cpu_flags=cpu_flags(), threads=threads, rounds=rounds)
        (project / name / 'measure.json').write_text(json.dumps(r, indent=2, default=str))
        rows += r['rows']
    return rows
