"""Short-schedule accuracy: every model trained from scratch by yolov5/train.py with the same settings, mAP of
the final epoch. A run can be reused when its settings and its model (fingerprint) are unchanged. The built-in
datasets are extensions.datasets' (shapes, made on first use; coco128, linked from a local copy).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from extensions.datasets.coco128 import DEFAULT_SRC, link_coco128
from extensions.datasets.shapes import ensure_shapes

from .build import build
from .models import BASE, ROOT, Entry

ACC_IMG = {'shapes': 160, 'coco128': 320}  # shapes: the demo's img (docs/demo.md); coco128: the project's 320


def results_csv_final(f: Path) -> tuple[dict, int]:
    with open(f) as fh:
        rows = [{k.strip(): v.strip() for k, v in r.items()} for r in csv.DictReader(fh)]
    if not rows:
        raise ValueError(f'{f}: no rows')
    last = rows[-1]
    return {'mAP50': float(last['metrics/mAP_0.5']), 'mAP50-95': float(last['metrics/mAP_0.5:0.95']),
            'P': float(last['metrics/precision']), 'R': float(last['metrics/recall'])}, len(rows)


def csv_rows(f: Path) -> int:
    try:
        return max(0, len(f.read_text().strip().splitlines()) - 1)
    except OSError:
        return 0


def file_hash(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16]


def model_fingerprint(cfg: str) -> dict:
    """What decides a from-scratch training run besides data and settings: the shapes of the parameters and
    buffers in creation order (hence the seeded initialisation) and the output of the seeded model on a fixed
    input. A block rewritten for speed with the same math keeps it; a changed block does not."""
    model = build(cfg).eval()
    shapes = [list(t.shape) for t in (*model.parameters(), *model.buffers())]
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)[0].flatten()
    step = max(1, y.numel() // 256)
    return {'shapes': hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16],
            'out': [round(v, 6) for v in y[::step][:256].tolist()]}


def same_model(a: dict | None, b: dict) -> bool:
    if not a or a.get('shapes') != b['shapes'] or len(a.get('out', [])) != len(b['out']):
        return False
    return all(abs(u - v) <= 1e-3 * max(1.0, abs(v)) for u, v in zip(a['out'], b['out']))


def train_command(e: Entry, data_yaml: Path, opt, imgsz: int, project: Path, name: str) -> list[str]:
    """yolov5/train.py from scratch with the run's settings (opt: hyp, optimizer, epochs, acc_batch, ...)."""
    device = 'cpu' if opt.device == 'cpu' else str(torch.device(opt.device).index or 0)
    return [sys.executable, str(BASE / 'train.py'), '--cfg', e.cfg, '--data', str(data_yaml), '--hyp', str(opt.hyp),
            '--weights', '', '--optimizer', opt.optimizer, '--epochs', str(opt.epochs), '--img', str(imgsz),
            '--batch-size', str(opt.acc_batch), '--workers', str(opt.workers), '--seed', str(opt.seed),
            '--cache', 'ram', '--project', str(project), '--name', name, '--exist-ok', '--device', device,
            '--noplots']


def run_training(cmd: list[str], run: Path, epochs: int, tick) -> int:
    """Run cmd (train.py) with its output in run/benchmark_train.log, ticking once per finished epoch (rows of
    results.csv); stop it if interrupted. Returns its exit status."""
    done = 0
    with open(run / 'benchmark_train.log', 'w') as fh:
        fh.write(' '.join(shlex.quote(c) for c in cmd) + '\n')
        fh.flush()
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                             env=dict(os.environ, PYTHONUNBUFFERED='1'))
        try:
            while p.poll() is None:
                time.sleep(2)
                n = min(csv_rows(run / 'results.csv'), epochs)
                if n > done:
                    tick(n - done)
                    done = n
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): do not leave train.py running
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
            raise
    tick(epochs - done)
    return p.returncode


def train_accuracy(e: Entry, data_name: str, data_yaml: Path, opt, project: Path, tick) -> dict:
    """Train e from scratch with yolov5/train.py (a subprocess) and read the final epoch's mAP."""
    imgsz = opt.acc_img or ACC_IMG.get(data_name, 320)
    run = project / f'{data_name}-{e.name}'
    key = {'cfg': file_hash(e.cfg), 'data': str(data_yaml), 'data_yaml': file_hash(data_yaml),
           'hyp': file_hash(opt.hyp), 'optimizer': opt.optimizer, 'epochs': opt.epochs, 'img': imgsz,
           'batch': opt.acc_batch, 'seed': opt.seed, 'device': opt.device, 'torch': torch.__version__}
    fp = model_fingerprint(e.cfg)
    stamp = run / 'benchmark_stamp.json'
    if opt.reuse_accuracy and stamp.is_file() and (run / 'results.csv').is_file():
        old = json.loads(stamp.read_text())
        if old.get('key') == key and same_model(old.get('model'), fp):
            metrics, n = results_csv_final(run / 'results.csv')
            tick(opt.epochs)
            return {**metrics, 'epochs': n, 'img': imgsz, 'seconds': old.get('seconds'), 'run': str(run),
                    'reused': old.get('date')}
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    t0 = time.time()
    rc = run_training(train_command(e, data_yaml, opt, imgsz, project, run.name), run, opt.epochs, tick)
    seconds = time.time() - t0
    if rc:
        tail = (run / 'benchmark_train.log').read_text().strip().splitlines()[-3:]
        return {'error': f'train.py exit {rc}: ' + ' | '.join(tail), 'run': str(run)}
    metrics, n = results_csv_final(run / 'results.csv')
    now = dt.datetime.now().isoformat(timespec='seconds')
    stamp.write_text(json.dumps({'key': key, 'model': fp, 'seconds': seconds, 'date': now}, indent=1))
    return {**metrics, 'epochs': n, 'img': imgsz, 'seconds': seconds, 'run': str(run)}


def accuracy_scales(spec: list[str] | None, data_name: str, groups: dict) -> list[str]:
    """The scales to train on data_name: every scale of the run by default; 'n' for every dataset;
    'coco128:n' for that dataset only."""
    if not spec:
        return list(groups)
    scales = []
    for item in spec:
        d, _, s = item.rpartition(':')
        if s not in groups:
            raise SystemExit(f'--acc-scales {item}: scale {s!r} is not in this run (scales: {", ".join(groups)})')
        if d in ('', data_name) and s not in scales:
            scales.append(s)
    return scales


def accuracy_datasets(names: list[str]) -> tuple[dict[str, Path], list[str]]:
    """{name: data yaml} of shapes, coco128 or data yamls given by path; notes of the ones skipped."""
    data, notes = {}, []
    for name in names:
        if name == 'shapes':
            data['shapes'] = Path(ensure_shapes())
        elif name == 'coco128':
            try:
                data['coco128'] = Path(link_coco128())
            except FileNotFoundError as err:
                notes.append(f'coco128 skipped: no coco128 copy at {DEFAULT_SRC} ({err}).')
        else:
            p = Path(name)
            if not p.is_file():
                raise SystemExit(f'--acc-data {name}: not shapes, coco128 or a data yaml')
            data[p.stem] = p.resolve()
    return data, notes
