"""Measure the TF-family exports of trained checkpoints against the static ONNX export, with YOLOv5's own scripts.

    python -m extensions.tf.measure --weights runs/a/weights/best.pt runs/b/weights/best.pt [--data D] [--img 160]
        [--formats onnx tflite-fp32 tflite-fp16 saved_model pb] [--project runs/deploy] [--markdown table.md]

For each checkpoint: copy it to ``<project>/<name>/`` (the exports are written next to the weights, so the
training run's directory stays untouched), ``export.py --include onnx`` (static, batch 1), ``export.py --include
tflite [saved_model pb]`` (and ``--int8``) at ``--img``, then ``val.py`` on every format with the run's data and
image size (read from the training run's ``opt.yaml`` unless given). Every exported model runs in val.py at
batch 1 on square ``img x img`` inputs, so the TF formats are compared with the static ONNX model in onnxruntime,
which runs exactly so, and not with the ``.pt`` (rectangular batches). Prints a Markdown table: format, file
size, mAP50, mAP50-95 and the difference to ONNX; ``--markdown`` also writes it to a file. The exit status is 1
when a step fails, and 0 otherwise (a difference above ``--tolerance`` is marked in the table, not an error).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from ..runs import RunError, parse_map, run_command, script_command

FORMATS = {  # name: (what export.py --include writes it with, the file it writes next to <name>.pt)
    'onnx': ('onnx', '{stem}.onnx'),
    'tflite-fp32': ('tflite', '{stem}-fp32.tflite'),
    'tflite-fp16': ('tflite', '{stem}-fp16.tflite'),
    'saved_model': ('saved_model', '{stem}_saved_model'),
    'pb': ('pb', '{stem}.pb'),
    'tflite-int8': ('int8', '{stem}-int8.tflite'),  # export.py --include tflite --int8 --data <data> (calibration)
}


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob('*') if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def run_opt(weights: Path) -> dict:
    """The training run's opt.yaml (``<run>/opt.yaml`` for ``<run>/weights/best.pt``), or {}."""
    f = weights.parent.parent / 'opt.yaml'
    return yaml.safe_load(f.read_text()) if f.is_file() else {}


def step(cmd, log: Path, echo: bool) -> str:
    r = run_command(cmd, echo=echo)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(r.stdout)
    if r.returncode != 0:
        raise RunError(f'{" ".join(map(str, cmd[1:3]))}... failed (exit {r.returncode}); its output: {log}')
    if 'export failure' in r.stdout:
        raise RunError(f'an export failed; its output: {log}')
    return r.stdout


def measure(weights: Path, formats, data, img, project: Path, echo=False, name='') -> list[dict]:
    """Export ``weights`` to every format and val.py each; one row per format. ``name``: the row label and the
    directory under ``project`` (default: the model YAML's name, e.g. yolov5n-res2)."""
    opt = run_opt(weights)
    data = data or opt.get('data')
    img = img or opt.get('imgsz')
    if not data or not Path(data).is_file():
        raise RunError(f'{weights}: no data yaml (give --data; the run has no opt.yaml naming one that exists)')
    name = name or Path(opt.get('cfg') or weights.stem).stem
    work = project / name
    work.mkdir(parents=True, exist_ok=True)
    pt = work / weights.name
    shutil.copy2(weights, pt)
    logs = work / 'logs'
    includes = sorted({FORMATS[f][0] for f in formats})
    if 'onnx' in includes:
        step(script_command('export.py', '--weights', pt, '--include', 'onnx', '--img', img, '--device', 'cpu'),
             logs / 'export-onnx.log', echo)
    tf_includes = [i for i in includes if i not in ('onnx', 'int8')]
    if 'int8' in includes:  # before the float export: both write <name>_saved_model, the float one must be last
        step(script_command('export.py', '--weights', pt, '--include', 'tflite', '--int8', '--data', data,
                            '--img', img, '--device', 'cpu'), logs / 'export-int8.log', echo)
    if tf_includes:
        step(script_command('export.py', '--weights', pt, '--include', *tf_includes, '--img', img, '--device', 'cpu'),
             logs / 'export-tf.log', echo)
    rows = []
    for f in formats:
        model = work / FORMATS[f][1].format(stem=pt.stem)
        if not model.exists():
            raise RunError(f'{model} was not written by export.py (see {logs})')
        out = step(script_command('val.py', '--weights', model, '--data', data, '--img', img, '--device', 'cpu',
                                  '--project', work / 'val', '--name', f, '--exist-ok'), logs / f'val-{f}.log', echo)
        rows.append({'run': name, 'format': f, 'file': model, 'MB': size_mb(model), **parse_map(out, f'val.py {f}')})
    return rows


def table(rows: list[dict], tolerance: float) -> str:
    onnx = {r['run']: r for r in rows if r['format'] == 'onnx'}
    lines = ['| run | format | size MB | mAP50 | mAP50-95 | mAP50-95 - ONNX |', '|---|---|---:|---:|---:|---:|']
    for r in rows:
        ref = onnx.get(r['run'])
        d = '' if ref is None or r is ref else f"{r['mAP50-95'] - ref['mAP50-95']:+.3f}"
        if d and abs(r['mAP50-95'] - ref['mAP50-95']) > tolerance:
            d += f' (over {tolerance})'
        lines.append(f"| {r['run']} | {r['format']} | {r['MB']:.1f} | {r['mAP50']:.3f} | {r['mAP50-95']:.3f} | {d} |")
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--weights', nargs='+', required=True, type=Path, help='trained checkpoints (.pt)')
    ap.add_argument('--data', default='', help="data yaml (default: the training run's opt.yaml)")
    ap.add_argument('--img', type=int, default=0, help="export and val image size (default: the run's)")
    ap.add_argument('--formats', nargs='+', default=['onnx', 'tflite-fp32', 'tflite-fp16'], choices=list(FORMATS))
    ap.add_argument('--project', type=Path, default=Path('runs/deploy'), help='exports and val runs go here')
    ap.add_argument('--markdown', type=Path, help='also write the table to this file')
    ap.add_argument('--tolerance', type=float, default=0.005, help='mark mAP50-95 differences to ONNX above this')
    ap.add_argument('--echo', action='store_true', help="stream the scripts' output")
    opt = ap.parse_args(argv)
    for w in opt.weights:
        if not w.is_file():
            ap.error(f'--weights {w}: no such file')
    rows, names = [], []
    try:
        for w in opt.weights:
            name = Path(run_opt(w).get('cfg') or w.stem).stem
            name = f'{name}-{names.count(name) + 1}' if name in names else name
            names.append(name)
            rows += measure(w.resolve(), opt.formats, opt.data, opt.img, opt.project.resolve(), opt.echo, name)
    except RunError as e:
        print(f'measure: {e}', file=sys.stderr)
        return 1
    text = table(rows, opt.tolerance)
    print(text)
    if opt.markdown:
        opt.markdown.write_text(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
