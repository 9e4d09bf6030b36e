#!/usr/bin/env python3
"""Benchmark: plain YOLOv5 against each block family of extensions/families.py at the same scale.

Example commands: README "What the blocks cost". Options become settings (extensions/benchmark/settings.py);
the parts (parts.py) run, accuracy first.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from dataclasses import fields
from pathlib import Path

from _bootstrap import ROOT  # this checkout first on sys.path (scripts/_bootstrap.py)

from tqdm import tqdm

import extensions.benchmark as bench
from extensions.benchmark import parts, plots, report
from extensions.benchmark import settings as st
from extensions.benchmark.cases import CASES, DEFAULT_CASES
from extensions.benchmark.results import Report
from extensions.families import FAMILIES
from extensions.machine import loadavg, wait_idle

QUICK = {'img': 320, 'runs': 3, 'warmup': 1, 'train_iters': 2, 'train_warmup': 1, 'max_other': 0.0, 'profile': 'off'}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__.split('\n', 2)[2] + bench.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    a = ap.add_argument
    a('--cfg', nargs='+', help='model YAMLs (default: models_yaml/yolov5<scale>-<suffix>.yaml, --scales x --families)')
    a('--scales', nargs='+', help='default: n s (--quick: n)')
    a('--families', nargs='+', default=[f.key for f in FAMILIES], help='family keys (default: all) or YAML suffixes')
    a('--device', default='cpu', help='cpu, cuda[:i] or i (a GPU index, as train.py)')
    a('--threads', type=int, help='CPU threads (default: all cores)')
    d, q = {f.name: f.default for f in fields(st.SpeedSettings)}, {k: f', --quick {v}' for k, v in QUICK.items()}
    for k in ('img', 'runs', 'warmup', 'train_img', 'train_batch', 'train_iters', 'train_warmup', 'profile_iters'):
        a('--' + k.replace('_', '-'), type=int, help=f'default {d[k]}{q.get(k, "")}')
    for flag, dest in (('--seed', 'seed'), ('--workers', 'workers'), ('--acc-batch', 'batch')):  # AccuracySettings'
        a(flag, dest=dest, type=int)
    a('--runtimes', nargs='+', choices=st.RUNTIMES, help='latency runtimes (default: all available; --quick: 2)')
    a('--no-onnx', action='store_true', help='skip onnxruntime')
    a('--max-other', type=float, metavar='CORES', help='re-measure pairs others took more cores than this in (0.2)')
    a('--max-wait', type=float, default=60, metavar='MIN', help='minutes in all to wait for a quiet machine')
    a('--profile', choices=('missed', 'all', 'off'), help='profile models missing a speed target (default), all, none')
    a('--accuracy', action='store_true', help='also train every model --seeds times per case (slow: hours on a CPU)')
    a('--only', choices=['accuracy', 'blocks', 'gpu'], help='only that part (report: <project>/report, /blocks, /gpu)')
    a('--block-pairs', type=int, help='blocks, gpu part: timed pairs per pass (default 10, --quick 2, 1)')
    a('--block-clock', choices=('wall', 'cpu'), default='wall', help='blocks part: wall or process CPU time')
    a('--seeds', type=int, default=st.MIN_SEEDS, help=f'runs per model and case (default and least {st.MIN_SEEDS})')
    a('--allow-few-seeds', action='store_true', help=argparse.SUPPRESS)  # tests of the plumbing only
    a('--epochs', type=int, default=st.ACC_EPOCHS, help=f'epochs of every accuracy run (default {st.ACC_EPOCHS})')
    a('--optimizer', default='AdamW', choices=['SGD', 'Adam', 'AdamW'])
    a('--acc-data', dest='data', nargs='+', default=['demo'], help='demo (default), shapes, coco128 and/or data yamls')
    a('--acc-scales', nargs='+', help='scales to train (default: the smallest); DATA:SCALE for one dataset')
    a('--acc-img', type=int, help='default: 160 for the shapes data (as the demo), 320 otherwise')
    a('--cases', nargs='+', choices=list(CASES), default=list(DEFAULT_CASES), help='accuracy cases (warm: opt-in)')
    a('--pretrain-data', default='shapes', help='the task the plain checkpoint is trained on, once')
    a('--pretrain-epochs', type=int, help='its epochs (default: 2 x --epochs)')
    a('--pretrained', nargs='+', metavar='[SCALE=]CKPT', help='start from these plain checkpoints instead')
    a('--hyp', default=str(st.DEFAULT_HYP))
    a('--project', default=str(ROOT / 'runs' / 'benchmark'), help='accuracy training runs go here')
    a('--reuse-accuracy', dest='reuse', action='store_true', help='reuse finished runs of the same settings and model')
    a('--quick', action='store_true', help='smoke test: n scale (or --cfg), img 320, 3 runs, no accuracy')
    a('--wait-idle', type=float, default=0, metavar='MIN', help='first wait up to MIN minutes for load < 0.5')
    a('--out', help='report, JSON, plots (default docs/benchmark; --only accuracy: <project>/report)')
    a('--notes-file', help='Markdown appended to the report (default: <out>/benchmark_notes.md or docs/)')
    a('--report-only', action='store_true', help='only rewrite the report and plots from <out>/benchmark.json')
    return ap


def make(cls, o, **extra):
    """Settings of class cls from the options named as its fields (not given: --quick's value or the default)."""
    names = {f.name for f in fields(cls)}
    given = {k: v for k in names if (v := getattr(o, k, None)) is not None}
    return cls(**{**{k: v for k, v in QUICK.items() if k in names and o.quick}, **given, **extra})


def settings(o) -> tuple[st.SpeedSettings, st.DeploySettings, st.AccuracySettings, st.BlocksSettings | None]:
    runtimes = o.runtimes or (['torch', 'onnx'] if o.quick else list(st.RUNTIMES))
    blocks = st.blocks_settings(o.device, o.threads, o.block_pairs, o.block_clock, o.quick)
    return (make(st.SpeedSettings, o), st.DeploySettings([k for k in runtimes if not (o.no_onnx and k == 'onnx')],
                                                        o.runtimes is not None),
            make(st.AccuracySettings, o, scales=o.acc_scales or (), img=o.acc_img,
                 min_seeds=2 if o.allow_few_seeds else st.MIN_SEEDS), blocks if o.only == 'blocks' else None)


def run(o, argv) -> Report:
    speed, deploy, acc, blocks = settings(o)
    gpu = st.gpu_settings(o.device, o.threads, o.block_pairs, o.quick) if o.only == 'gpu' else None
    part = blocks or gpu  # a part that times no YOLOv5 groups
    timed, do_acc = o.only is None, (o.accuracy or o.only == 'accuracy') and not (o.quick or part)
    groups = {} if part else parts.resolve_groups(o.cfg, o.scales or (['n'] if o.quick else ['n', 's']), o.families)
    parts.prepare_device(speed.device, speed.threads)
    runtimes = parts.available_runtimes(deploy, speed.device)[0] if timed else []  # a missing one fails now
    command = ' '.join(['python scripts/benchmark.py', *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    rep = Report(parts.run_info(speed.device, speed.threads, command), [e for g in groups.values() for e in g],
                 o.quick, speed if timed else None, deploy if timed else None, acc if do_acc else None,
                 blocks_settings=blocks, gpu_settings=gpu)
    print(f'benchmark: {", ".join(e.name for e in rep.models) or o.only}; {rep.info.cpu}, {speed.threads} threads, '
          f'device {speed.device}, load average {rep.info.load_start}' + (f'\nlatency runtimes: {", ".join(runtimes)}'
                                                                          if runtimes else ''), flush=True)
    t0 = time.time()
    if do_acc:
        with tqdm(total=0, desc='accuracy', unit='epoch', file=sys.stderr, dynamic_ncols=True) as bar:
            rep.accuracy = parts.run_accuracy(groups, acc, bar)
        rep.info.accuracy_min = (time.time() - t0) / 60
    if timed or part:
        la = wait_idle(o.wait_idle, on_wait=lambda x: print(f'waiting for an idle machine: load {x}', flush=True))
        if la and la[0] > 0.5:
            print(f'WARNING: load average {la}: timings will be disturbed (--wait-idle MIN waits)', flush=True)
        with tqdm(total=0, desc='latency' if timed else o.only, file=sys.stderr, dynamic_ncols=True) as bar:
            rep.speed = parts.run_speed(groups, speed, deploy, bar) if timed else None
            rep.blocks = parts.run_blocks(blocks, bar) if blocks else None
            rep.gpu = parts.run_gpu(gpu, bar) if gpu else None
    rep.info.load_end, rep.info.duration_min = loadavg(), (time.time() - t0) / 60
    return rep


def finish(rep: Report, out: Path, notes_file: str | None) -> None:
    """Plots, report and JSON into out; the summary on stdout."""
    out.mkdir(parents=True, exist_ok=True)
    files = plots.plots(rep.models, rep.accuracy, out)
    md = report.write_report(rep, out, files, notes_file)
    report.write_json(rep, out)
    print(report.summary_text(rep, md, [out / f for f in files]))


def main(argv=None) -> int:
    o = parser().parse_args(argv)
    out = Path(o.out or report.default_out(o.only, o.project)).resolve()
    try:
        if o.report_only:  # e.g. after editing benchmark_notes.md: measures nothing, needs no torch
            finish(report.read_json(out / 'benchmark.json'), out, o.notes_file)
            return 0
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run cleanups (temp files, train.py) on kill
        finish(run(o, argv), out, o.notes_file)
    except st.BenchmarkError as e:
        hint = ('\nFix the cause and run the same command with --reuse-accuracy to train only what is missing.'
                if isinstance(e, st.AccuracyFailed) else '')
        print(f'benchmark FAILED: {e}{hint}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
