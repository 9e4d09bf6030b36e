"""Accuracy over seeds: every model trained by yolov5/train.py with the same settings, once per seed (nothing but
``--seed`` differs between the runs of one model), in each case of :mod:`.cases` asked for: from scratch, or
from a plain YOLOv5 checkpoint of the same scale trained on another task (as users start from
``--weights yolov5s.pt``: only the tensors whose names and shapes match transfer, train.py logs
``Transferred N/M items``). That checkpoint is trained once by the benchmark itself (plain YOLOv5 on
``AccuracySettings.pretrain_data``, default the ``standard`` shapes scene) and cached like every other run, or
given (``AccuracySettings.pretrained``).

mAP is the final epoch's (results.csv; train.py ``--noval`` validates only the final epoch, which is the one
read). Per model: mean, standard deviation and per-seed values; per extension model: the difference to plain
YOLOv5 of its scale with Welch's 95% interval and the verdict it supports (:mod:`.stats`).

**Fail closed**: a run that fails, or ends with fewer epochs than asked, is a failure naming the model, case
and seed; :func:`measure` then raises :class:`AccuracyFailed` (never a mean over the seeds that happened to
finish), and the finished runs stay on disk, to be reused (``AccuracySettings.reuse``). A run is reused when
its settings (the starting checkpoint's hash included) and its model (fingerprint) are unchanged.

Built-in data (extensions.datasets): ``demo`` (the demo's scene, 3 classes; the default), ``shapes`` (the
``standard`` scene, 6 classes; the default pretraining task), ``coco128`` (linked from a local copy), or any
YOLOv5 data yaml given by path.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from extensions.datasets.coco128 import DEFAULT_SRC, link_coco128
from extensions.datasets.shapes import ensure_shapes
from extensions.families import SCALES

from . import stats
from .build import build
from .cases import CASES, StartRequest
from .models import plain_entry
from .results import AccuracyResult, Entry
from .settings import BASE, ROOT, AccuracyFailed, AccuracySettings, BenchmarkError

DEMO_DATA = ROOT / 'datasets' / 'shapes-demo'  # what scripts/demo.py trains on
DEMO_CLASSES = 3
ACC_IMG = {'demo': 160, 'shapes': 160, 'coco128': 320}  # shapes scenes: the demo's img (docs/demo.md)
DEFAULT_IMG = 320  # a data yaml of one's own (pass --acc-img for real data, e.g. 640)
METRICS = ('mAP50-95', 'mAP50')  # the first one decides the verdicts
TRANSFER_RE = re.compile(r'Transferred (\d+)/(\d+) items from (\S.*)')
ANSI_RE = re.compile(r'\x1b\[[0-9;]*m')


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


def transferred(log: Path) -> tuple[int, int] | None:
    """(N, M) of train.py's last 'Transferred N/M items from <weights>' line in a run's log; None if absent."""
    try:
        text = ANSI_RE.sub('', log.read_text(errors='replace'))
    except OSError:
        return None
    found = TRANSFER_RE.findall(text)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def file_hash(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16]


CODE_GLOBS = ('extensions/**/*.py', 'yolov5/models/*.py', 'yolov5/utils/**/*.py', 'yolov5/train.py', 'yolov5/val.py')
FINGERPRINT_CODE = ('import json, sys\nfrom extensions.benchmark.accuracy import model_fingerprint\n'
                    'print(json.dumps({c: model_fingerprint(c) for c in sys.argv[1:]}))')


def code_hash() -> str:
    """Hash of the Python sources a training run executes (the overlay's blocks and the YOLOv5 base; not this
    benchmark package). Each train.py imports them afresh, so an edit while the benchmark runs could give the
    seeds of one model different code."""
    h = hashlib.sha256()
    files = {f for g in CODE_GLOBS for f in ROOT.glob(g) if 'benchmark' not in f.relative_to(ROOT).parts[:2]}
    for f in sorted(files):
        h.update(str(f.relative_to(ROOT)).encode())
        try:
            h.update(f.read_bytes())
        except OSError:  # removed meanwhile: the name alone
            pass
    return h.hexdigest()[:16]


def fresh_fingerprints(cfgs: list[str]) -> dict | None:
    """model_fingerprint of each cfg with the code as it is on disk now (a fresh process: this one keeps the
    modules it imported at the start); None if they do not build (an edit under way?)."""
    path = os.pathsep.join([str(ROOT), str(BASE), *filter(None, [os.environ.get('PYTHONPATH')])])
    try:
        r = subprocess.run([sys.executable, '-c', FINGERPRINT_CODE, *cfgs], cwd=ROOT, capture_output=True, text=True,
                           timeout=1800, env=dict(os.environ, PYTHONPATH=path))
    except subprocess.TimeoutExpired:
        return None
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith('{')]
    return json.loads(lines[-1]) if r.returncode == 0 and lines else None


class CodeWatch:
    """Guards the runs of one benchmark against edits of the model code while it runs: the runs of a model must
    all train the model its fingerprint (taken at the start, stored in each run's stamp) describes. When the
    sources change (code_hash), the models are fingerprinted afresh: an edit that leaves every model's math
    alone is accepted; a model whose fingerprint changed fails its runs from then on (a rerun with
    --reuse-accuracy retrains all its seeds with the new code, its old stamps no longer matching)."""

    def __init__(self, fingerprints: dict):
        self.fps = fingerprints  # cfg -> fingerprint at the start
        self.hash = code_hash()
        self.changed: set[str] = set()

    def ok(self, cfg: str) -> bool:
        h = code_hash()
        if h != self.hash:
            fresh = fresh_fingerprints(list(self.fps))
            if fresh is None:
                return False  # the code does not build now: fail this run, look again before the next
            self.changed |= {c for c, fp in self.fps.items() if not same_model(fresh.get(c), fp)}
            self.hash = h
        return cfg not in self.changed


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


# -------------------------------------------------------------------------------------------------- runs
@dataclass
class Job:
    """One train.py run: a model, a dataset, a case (scratch, finetune or pretrain) and a seed."""

    entry: Entry
    data: str  # dataset name: demo, shapes, coco128 or a data yaml's stem
    data_yaml: Path
    case: str
    seed: int
    epochs: int
    img: int
    weights: str = ''  # the checkpoint to start from ('' = from scratch)

    @property
    def name(self) -> str:
        return f'{self.data}-{self.case}-{self.entry.name}-seed{self.seed}'

    @property
    def label(self) -> str:
        return f'model {self.entry.name}, case {self.case}, seed {self.seed} (data {self.data})'


def train_command(job: Job, st: AccuracySettings, project: Path) -> list[str]:
    """yolov5/train.py with the run's settings (hyp, optimizer, batch, workers, device); the runs of one model
    differ only in --seed (and their --name)."""
    device = 'cpu' if st.device == 'cpu' else str(torch.device(st.device).index or 0)
    return [sys.executable, str(BASE / 'train.py'), '--cfg', job.entry.cfg, '--data', str(job.data_yaml),
            '--hyp', str(st.hyp), '--weights', job.weights, '--optimizer', st.optimizer,
            '--epochs', str(job.epochs), '--img', str(job.img), '--batch-size', str(st.batch),
            '--workers', str(st.workers), '--seed', str(job.seed), '--cache', 'ram', '--project', str(project),
            '--name', job.name, '--exist-ok', '--device', device, '--noplots', '--noval']


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def train_env() -> dict:
    """train.py's environment: unbuffered output, and OpenMP threads that sleep when idle
    (OMP_WAIT_POLICY=PASSIVE unless set). By default they spin between parallel regions; on a shared CPU that
    spinning burnt about 10x the work's CPU time (yolov5n, img 160: about 150 instead of 15 CPU s per epoch at
    load 9 on 2 cores) and slowed every other process. The numerics do not change."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    return env


def run_training(cmd: list[str], run: Path, epochs: int, tick) -> tuple[int, float]:
    """Run cmd (train.py) with its output in run/benchmark_train.log, ticking once per finished epoch (rows of
    results.csv); stop it if interrupted. Returns its exit status and its CPU time (user + sys of train.py and
    its data-loader workers, in seconds: unlike wall time, not stretched by other processes' load)."""
    done = 0
    cpu0 = children_cpu_s()
    with open(run / 'benchmark_train.log', 'w') as fh:
        fh.write(' '.join(shlex.quote(c) for c in cmd) + '\n')
        fh.flush()
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=train_env())
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
    return p.returncode, children_cpu_s() - cpu0


def run_key(job: Job, st: AccuracySettings) -> dict:
    """Everything besides the model that decides a run; a stamp with another key is not reused."""
    return {'cfg': file_hash(job.entry.cfg), 'data': str(job.data_yaml), 'data_yaml': file_hash(job.data_yaml),
            'hyp': file_hash(st.hyp), 'optimizer': st.optimizer, 'epochs': job.epochs, 'img': job.img,
            'batch': st.batch, 'seed': job.seed, 'case': job.case,
            'weights': file_hash(job.weights) if job.weights else '', 'noval': True, 'device': st.device,
            'torch': torch.__version__}


def _tail(run: Path, n: int = 3) -> str:
    try:
        return ' | '.join(ANSI_RE.sub('', (run / 'benchmark_train.log').read_text(errors='replace'))
                          .strip().splitlines()[-n:])
    except OSError:
        return ''


def read_run(job: Job, run: Path) -> dict:
    """The final epoch's metrics of a finished run, or {'error': ...} when it is incomplete: fewer epochs than
    asked, a metric that is not a number, or (fine-tuning) no 'Transferred N/M items' line."""
    try:
        metrics, n = results_csv_final(run / 'results.csv')
    except (OSError, ValueError, KeyError) as err:
        return {'error': f'no results: {err}'}
    if n != job.epochs:
        return {'error': f'results.csv has {n} of {job.epochs} epochs'}
    if not all(math.isfinite(v) for v in metrics.values()):
        return {'error': f'final metrics are not numbers: {metrics}'}
    out = {**metrics, 'epochs': n}
    if job.weights:
        t = transferred(run / 'benchmark_train.log')
        if t is None:
            return {'error': f'no "Transferred N/M items" line: {job.weights} was not loaded'}
        out['transferred'] = list(t)
    if job.case == 'pretrain' and not (run / 'weights' / 'best.pt').is_file():
        return {'error': 'no weights/best.pt'}
    return out


def run_job(job: Job, st: AccuracySettings, project: Path, tick, fingerprints: dict,
            watch: CodeWatch | None = None) -> dict:
    """Train job with yolov5/train.py (a subprocess) and read its final epoch; reuse a finished run with the
    same key and model when st.reuse. {'error': ..., 'run': ...} if the run failed, or if watch saw the
    model's code change before or while it trained."""
    run = project / job.name
    base = {'seed': job.seed, 'img': job.img, 'run': str(run)}
    try:
        key = run_key(job, st)
    except OSError as err:
        return {**base, 'error': f'cannot read an input of the run: {err}'}
    if job.entry.cfg not in fingerprints:
        fingerprints[job.entry.cfg] = model_fingerprint(job.entry.cfg)
    fp = fingerprints[job.entry.cfg]
    stamp = run / 'benchmark_stamp.json'
    if st.reuse and stamp.is_file():
        old = json.loads(stamp.read_text())
        if old.get('key') == key and same_model(old.get('model'), fp):
            res = read_run(job, run)
            if 'error' not in res:
                tick(job.epochs)
                return {**base, **res, 'seconds': old.get('seconds'), 'cpu_s': old.get('cpu_s'),
                        'reused': old.get('date')}
    changed = {**base, 'error': f'the code of {job.entry.name} (extensions/, yolov5/) changed while the benchmark '
                                'ran, so its seeds would train different models'}
    if watch is not None and not watch.ok(job.entry.cfg):
        tick(job.epochs)
        return changed
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    t0 = time.time()
    rc, cpu = run_training(train_command(job, st, project), run, job.epochs, tick)
    seconds = time.time() - t0
    if rc:
        return {**base, 'error': f'train.py exit {rc}: {_tail(run)}'}
    if watch is not None and not watch.ok(job.entry.cfg):
        return changed
    res = read_run(job, run)
    if 'error' in res:
        return {**base, **res}
    now = dt.datetime.now().isoformat(timespec='seconds')
    stamp.write_text(json.dumps({'key': key, 'model': fp, 'seconds': seconds, 'cpu_s': cpu, 'date': now},
                                indent=1))
    return {**base, **res, 'seconds': seconds, 'cpu_s': cpu}


# ------------------------------------------------------------------------------------------------- plan
def accuracy_scales(spec: list[str] | None, data_name: str, groups: dict) -> list[str]:
    """The scales to train on data_name: every scale of the run by default; 'n' for every dataset; 'coco128:n'
    for that dataset only."""
    if not spec:
        return list(groups)
    scales = []
    for item in spec:
        d, _, s = item.rpartition(':')
        if s not in groups:
            raise BenchmarkError(f'accuracy scales {item}: scale {s!r} is not in this run (scales: '
                                 f'{", ".join(groups)})')
        if d in ('', data_name) and s not in scales:
            scales.append(s)
    return scales


def dataset(name: str) -> tuple[str, Path]:
    """(name, data yaml) of demo, shapes, coco128 or a data yaml given by path (made or linked on first use).
    FileNotFoundError if coco128 has no local copy; BenchmarkError for anything else."""
    if name == 'demo':
        return name, Path(ensure_shapes(DEMO_DATA, classes=DEMO_CLASSES, scene='demo'))
    if name == 'shapes':
        return name, Path(ensure_shapes())
    if name == 'coco128':
        return name, Path(link_coco128())
    p = Path(name)
    if not p.is_file():
        raise BenchmarkError(f'accuracy data {name}: not demo, shapes, coco128 or a data yaml')
    return p.stem, p.resolve()


def accuracy_datasets(names: list[str]) -> tuple[dict[str, Path], list[str]]:
    """{name: data yaml} of the datasets asked for; notes of the ones skipped (coco128 without a local copy)."""
    data, notes = {}, []
    for name in names:
        try:
            d, p = dataset(name)
        except FileNotFoundError as err:
            notes.append(f'coco128 skipped: no coco128 copy at {DEFAULT_SRC} ({err}).')
            continue
        data[d] = p
    return data, notes


def image_size(st: AccuracySettings, data_name: str) -> int:
    return st.img or ACC_IMG.get(data_name, DEFAULT_IMG)


def given_checkpoints(items) -> dict[str, Path]:
    """{scale: checkpoint} of the given plain checkpoints: 'SCALE=PATH', or a PATH named yolov5<scale>*.pt."""
    out = {}
    for item in items or []:
        s, sep, path = item.partition('=')
        if not sep:
            path = item
            m = re.match(r'yolov5([nsmlx])', Path(item).name)
            if not m:
                raise BenchmarkError(f'pretrained {item}: cannot tell its scale from the name; write SCALE=PATH')
            s = m.group(1)
        p = Path(path).expanduser()
        if not p.is_file():
            raise BenchmarkError(f'pretrained {item}: no such file')
        out[s] = p.resolve()
    return out


def plan(groups: dict, st: AccuracySettings) -> dict:
    """What an accuracy part trains (by default at the smallest scale of the run only: each scale costs the
    whole schedule again): {'data': {name: yaml}, 'notes': [...], 'scales': {data: [scales]},
    'pretrain': {scale: Job | Path}, 'jobs': [Job, ...] seed-major (every model and case of seed 0 first)}."""
    data, notes = accuracy_datasets(st.data)
    if not data:
        raise BenchmarkError('accuracy: no dataset left to train on (' + ' '.join(notes) + ')')
    spec = list(st.scales) or [min(groups, key=SCALES.index)]  # default: the smallest scale of the run
    scales = {d: accuracy_scales(spec, d, groups) for d in data}
    given = given_checkpoints(st.pretrained)
    pre: dict = {}
    if any(CASES[c].pretrained for c in st.cases):
        pdata = None
        for s in dict.fromkeys(s for ss in scales.values() for s in ss):
            if s in given:
                pre[s] = given[s]
                continue
            if pdata is None:
                pdata = dataset(st.pretrain_data)
            pre[s] = Job(plain_entry(s), pdata[0], pdata[1], 'pretrain', st.seed, st.pretrain_epochs,
                         image_size(st, pdata[0]))
    jobs = [Job(e, d, data[d], case, seed, st.epochs, image_size(st, d))
            for seed in st.seed_list for d in data for case in st.cases for s in scales[d] for e in groups[s]]
    return {'data': data, 'notes': notes, 'scales': scales, 'pretrain': pre, 'jobs': jobs}


def total_epochs(p: dict) -> int:
    return sum(j.epochs for j in p['pretrain'].values() if isinstance(j, Job)) + sum(j.epochs for j in p['jobs'])


# ------------------------------------------------------------------------------------------------ measure
def start_weights(job: Job, pre: dict, project: Path, made: dict | None = None, st: AccuracySettings | None = None
                  ) -> dict:
    """``{'weights': checkpoint, ...}`` that job starts from in a case that starts from the plain checkpoint of its
    scale: that checkpoint, or the case's own per-model checkpoint made from it (Case.start, once per case and
    model: made keeps them for the other seeds; its other keys describe the start for the report). Its hash is
    part of the run's key, so Case.start must be deterministic for finished runs to be reused."""
    case = CASES[job.case]
    if case.start is None:
        return {'weights': pre['weights']}
    made = {} if made is None else made
    key = (case.key, job.entry.cfg, pre['weights'])
    if key not in made:
        st = st or AccuracySettings()
        made[key] = case.start(StartRequest(
            cfg=job.entry.cfg, family=job.entry.family, plain=Path(pre['weights']),
            out_dir=project / 'start' / f'{case.key}-{job.entry.name}', data_yaml=Path(job.data_yaml), img=job.img,
            seed=st.seed, device=st.device or 'cpu',
            plain_data=Path(pre['data_yaml']) if pre.get('data_yaml') else None))
    return made[key]


def plain_twin(job: Job, runs: dict) -> dict | None:
    """For plain YOLOv5 in a case with its own start (``warm``): the finished ``finetune`` run of the same seed,
    which is the same training (plain YOLOv5 starts from the plain checkpoint in both), marked ``same_as``."""
    if not (CASES[job.case].start and job.entry.family is None):
        return None
    done = runs.get(job.data, {}).get('finetune', {}).get(job.entry.name, [])
    r = next((r for r in done if r['seed'] == job.seed and 'error' not in r), None)
    return {**r, 'same_as': 'finetune'} if r else None


def measure(groups: dict, st: AccuracySettings, pbar) -> AccuracyResult:
    """Train everything of plan() and summarise it; AccuracyFailed when any run failed or is missing."""
    p = plan(groups, st)
    project = Path(st.project).resolve()
    pbar.total = total_epochs(p)
    pbar.refresh()
    jobs = [*(j for j in p['pretrain'].values() if isinstance(j, Job)), *p['jobs']]
    fingerprints = {cfg: model_fingerprint(cfg) for cfg in dict.fromkeys(j.entry.cfg for j in jobs)}
    watch = CodeWatch(fingerprints)
    failures: list[str] = []
    pretrained: dict = {}
    for s, job in p['pretrain'].items():
        if isinstance(job, Path):
            pretrained[s] = {'weights': str(job), 'given': True, 'hash': file_hash(job)}
            continue
        pbar.set_description(f'accuracy: pretrain {job.entry.name} on {job.data}')
        r = run_job(job, st, project, pbar.update, fingerprints, watch)
        if 'error' in r:
            failures.append(_failure(job, r))
        else:
            r['weights'] = str(Path(r['run']) / 'weights' / 'best.pt')
        pretrained[s] = {'model': job.entry.name, 'data': job.data, 'data_yaml': str(job.data_yaml),
                         'epochs': job.epochs, **r}
    runs, made = {}, {}
    for job in p['jobs']:
        twin = plain_twin(job, runs)
        if twin:  # plain YOLOv5 of a start case trains exactly as in finetune (same command, seed, start): reuse it
            runs.setdefault(job.data, {}).setdefault(job.case, {}).setdefault(job.entry.name, []).append(twin)
            pbar.update(job.epochs)
            continue
        if CASES[job.case].pretrained:
            pre = pretrained[job.entry.scale]
            if 'error' in pre:
                failures.append(f'{job.label}: not run, its starting checkpoint failed ({pre["run"]})')
                pbar.update(job.epochs)
                continue
            try:
                start = start_weights(job, pre, project, made, st)
            except (ValueError, RuntimeError, OSError) as e:  # no start checkpoint: its runs fail, named
                failures.append(f'{job.label}: not run, its start checkpoint failed: {type(e).__name__}: {e}')
                pbar.update(job.epochs)
                continue
            job.weights = start['weights']
        pbar.set_description(f'accuracy seed {job.seed}: {job.entry.name} {job.case}')
        r = run_job(job, st, project, pbar.update, fingerprints, watch)
        if CASES[job.case].pretrained and len(start) > 1:
            r['start'] = {k: v for k, v in start.items() if k != 'weights'}
        if 'error' in r:
            failures.append(_failure(job, r))
        runs.setdefault(job.data, {}).setdefault(job.case, {}).setdefault(job.entry.name, []).append(r)
    want = st.seed_list
    for d, cases in runs.items():  # every model of every case has every seed (by construction; checked anyway)
        for case, models in cases.items():
            for name, rs in models.items():
                got = sorted(r['seed'] for r in rs if 'error' not in r)
                if got != want and not any('error' in r for r in rs):
                    failures.append(f'model {name}, case {case} (data {d}): seeds {got}, expected {want}')
    if failures:
        raise AccuracyFailed(failures, project)
    return summarise(groups, p, runs, pretrained, st)


def _failure(job: Job, r: dict) -> str:
    return f'{job.label}: {r["error"]} (log: {Path(r["run"]) / "benchmark_train.log"})'


def run_settings(st: AccuracySettings, p: dict) -> dict:
    """The settings as the report states them."""
    return {'seeds': st.seed_list, 'epochs': st.epochs, 'pretrain_epochs': st.pretrain_epochs,
            'pretrain_data': st.pretrain_data, 'cases': list(st.cases), 'batch': st.batch,
            'optimizer': st.optimizer, 'hyp': str(st.hyp), 'device': st.device,
            'img': {d: image_size(st, d) for d in p['data']}, 'data': {d: str(y) for d, y in p['data'].items()},
            'scales': p['scales'], 'confidence': stats.CONFIDENCE, 'interval': 'welch', 'validate': 'final epoch'}


def summarise_model(runs: list[dict]) -> dict:
    """Mean, sd, t-interval of the mean and the per-seed values of each metric, over a model's runs."""
    runs = sorted(runs, key=lambda r: r['seed'])
    out = {'runs': runs, 'seeds': [r['seed'] for r in runs]}
    for m in (*METRICS, 'P', 'R'):
        vals = [r[m] for r in runs]
        out[m] = {**stats.mean_interval(vals), 'values': vals}
    tr = {tuple(r['transferred']) for r in runs if r.get('transferred')}
    out['transferred'] = list(next(iter(tr))) if len(tr) == 1 else [list(t) for t in sorted(tr)] or None
    cpu = [r['cpu_s'] for r in runs if r.get('cpu_s') is not None]
    out['cpu_s_mean'] = stats.mean(cpu) if cpu else None
    starts = [r['start'] for r in runs if r.get('start')]
    if starts:
        out['start'] = starts[0]  # one start per model, shared by its seeds
    return out


def summarise(groups: dict, p: dict, runs: dict, pretrained: dict, st: AccuracySettings) -> AccuracyResult:
    """The accuracy part of the report: settings, pretrained checkpoints and, per dataset and case, each model's
    summary and each extension model's comparison with plain YOLOv5 of its scale."""
    results: dict = {}
    for d, cases in runs.items():
        for case, models in cases.items():
            block = {'img': image_size(st, d), 'epochs': st.epochs, 'seeds': st.seed_list, 'models': {},
                     'comparisons': {}}
            for name, rs in models.items():
                block['models'][name] = summarise_model(rs)
            for s in p['scales'][d]:
                plain = groups[s][0]
                for e in groups[s][1:]:
                    pm, em = block['models'][plain.name], block['models'][e.name]
                    block['comparisons'][e.name] = {
                        'vs': plain.name, 'suffix': e.suffix, 'family': e.family,
                        **{m: stats.compare(pm[m]['values'], em[m]['values']) for m in METRICS}}
            results.setdefault(d, {})[case] = block
    cpu = [r.get('cpu_s') for cs in runs.values() for ms in cs.values() for rs in ms.values() for r in rs]
    cpu += [v.get('cpu_s') for v in pretrained.values()]
    return AccuracyResult(run_settings(st, p), pretrained, results, sum(c for c in cpu if c is not None),
                          p['notes'])
