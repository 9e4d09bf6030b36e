#!/usr/bin/env python3
"""Benchmark: plain YOLOv5 against each block family of extensions/families.py at the same scale.

    python scripts/benchmark.py                                   # n and s: cost, latency, training throughput
    python scripts/benchmark.py --accuracy --wait-idle 30         # + short-schedule mAP (shapes, coco128): slow
    python scripts/benchmark.py --cfg models_yaml/yolov5s-rs.yaml models_yaml/yolov5m-res2.yaml
    python scripts/benchmark.py --quick --out /tmp/bench          # smoke test (n scale, small image, 3 runs)
    python scripts/benchmark.py --device cuda                     # GPU: fp16, synchronised CUDA timing
    python scripts/benchmark.py --report-only                     # rewrite docs/benchmark/ from benchmark.json

--reuse-accuracy reuses a finished training run (runs/benchmark/<data>-<model>) whose settings and model are
unchanged (same YAML, data, hyp, epochs, ...; same parameter shapes and seeded outputs), so the slow accuracy
part can be done once and the timing part repeated on an idle machine; the report says which runs were reused.

Every model is compared with plain YOLOv5 of its scale (yolov5/models/yolov5<scale>.yaml, the scale being the
letter in the file name: yolov5s-res2.yaml -> yolov5s.yaml), measured in the same run:

* params and GFLOPs at 640 of the fused model (YOLOv5's own count, thop, taken at 640 itself);
* latency at batch 1 (fused eval PyTorch model under torch.inference_mode, and the ONNX export of it in
  onnxruntime, exported as yolov5/export.py does), with a fixed thread count. Each extension model is timed in
  pairs alternating with its plain model (plain, ext, plain, ext, ...); its ratio is the median of the per-pair
  ratios, with their interquartile range as the spread. Achieved GFLOP/s = GFLOPs / latency;
* training throughput (images/s of forward + ComputeLoss + backward + clip + SGD step + EMA, as train.py does,
  on a fixed synthetic batch), alternated with the plain model in the same way; peak memory of training
  (CPU: growth of the peak resident set over two iterations, in a fresh process; GPU: max_memory_allocated);
* with --accuracy: a SHORT-SCHEDULE accuracy comparison, every model trained from scratch by yolov5/train.py
  with the same seed, epochs, optimizer and hyperparameters (the demo's recipe: AdamW with
  scripts/hyps/hyp.short-cpu.yaml, 30 epochs, batch 16), on the built-in shapes data (img 160) and on coco128
  (img 320); mAP from the final row of each run's results.csv. It says which model learns faster in a few
  CPU epochs; it is not a claim about COCO.

Writes <out>/benchmark.md (tables, machine, date, command, targets met/missed, profile of missed targets),
<out>/benchmark.json (every number) and PNG plots, and prints the targets. Timing runs are only meaningful on
an otherwise idle machine: the load average at the start and the end goes into the report. The measurements
live in the package extensions/benchmark/; this script parses the options and runs them in order.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT / 'yolov5'), str(ROOT)):  # the overlay and the YOLOv5 base (scripts/ is already there)
    if _p not in sys.path:
        sys.path.insert(0, _p)

from tqdm import tqdm  # noqa: E402

from extensions.benchmark.models import groups_from_json, resolve_groups  # noqa: E402
from extensions.benchmark.plots import plots  # noqa: E402
from extensions.benchmark.report import DEFAULT_OUT, print_summary, write_json, write_report  # noqa: E402
from extensions.families import FAMILIES  # noqa: E402

DEFAULT_HYP = ROOT / 'scripts' / 'hyps' / 'hyp.short-cpu.yaml'


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__.split('\n', 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cfg', nargs='+', default=None,
                    help='model YAMLs (default: models_yaml/yolov5<scale>-<family>.yaml for --scales x --families)')
    ap.add_argument('--scales', nargs='+', default=None, help='default: n s (--quick: n)')
    ap.add_argument('--families', nargs='+', default=[f.key for f in FAMILIES],
                    help='family keys of extensions/families.py (default: all of them) or other YAML suffixes')
    ap.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    ap.add_argument('--threads', type=int, default=None, help='CPU threads (default: all cores)')
    ap.add_argument('--img', type=int, default=None, help='latency image size (default 640; --quick: 320)')
    ap.add_argument('--runs', type=int, default=None, help='timed pairs per model and runtime (default 20, >= 10)')
    ap.add_argument('--warmup', type=int, default=None, help='warm-up pairs (default 3)')
    ap.add_argument('--train-img', type=int, default=320)
    ap.add_argument('--train-batch', type=int, default=8)
    ap.add_argument('--train-iters', type=int, default=None, help='timed training pairs (default 6)')
    ap.add_argument('--train-warmup', type=int, default=None, help='warm-up training pairs (default 2)')
    ap.add_argument('--no-onnx', action='store_true', help='skip onnxruntime')
    ap.add_argument('--max-other', type=float, default=None, metavar='CORES',
                    help='re-measure a timed pair during which other processes used more than CORES cores, once '
                         'the machine is quiet again (default 0.2; --quick: 0 = keep every pair)')
    ap.add_argument('--max-wait', type=float, default=60, metavar='MIN',
                    help='total minutes the run may wait for a quiet machine before keeping busy pairs (default 60)')
    ap.add_argument('--profile', choices=('missed', 'all', 'off'), default=None,
                    help='profile extension models that miss a latency/FLOP-rate target (default), all, or none')
    ap.add_argument('--profile-iters', type=int, default=5)
    ap.add_argument('--accuracy', action='store_true', help='also train every model for a short schedule (slow)')
    ap.add_argument('--epochs', type=int, default=30, help='accuracy: epochs (default 30, as the demo)')
    ap.add_argument('--optimizer', default='AdamW', choices=['SGD', 'Adam', 'AdamW'],
                    help='accuracy: train.py optimizer (default AdamW, what hyp.short-cpu.yaml is for)')
    ap.add_argument('--acc-data', nargs='+', default=['shapes', 'coco128'], help='shapes, coco128 and/or data yamls')
    ap.add_argument('--acc-scales', nargs='+', default=None,
                    help='scales to train (default: all in the run); DATA:SCALE limits one dataset, e.g. '
                         'shapes:n shapes:s coco128:n')
    ap.add_argument('--acc-img', type=int, default=None, help='default: 160 for shapes (as the demo), 320 otherwise')
    ap.add_argument('--acc-batch', type=int, default=16)
    ap.add_argument('--hyp', default=str(DEFAULT_HYP))
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--project', default=str(ROOT / 'runs' / 'benchmark'), help='accuracy training runs go here')
    ap.add_argument('--reuse-accuracy', action='store_true',
                    help='reuse a finished accuracy run with identical settings (cfg, data, hyp, epochs, ...)')
    ap.add_argument('--quick', action='store_true', help='smoke test: n scale (or --cfg), img 320, 3 runs, no accuracy')
    ap.add_argument('--wait-idle', type=float, default=0, metavar='MIN',
                    help='first wait up to MIN minutes for the 1-minute load average to drop below 0.5')
    ap.add_argument('--out', default=str(DEFAULT_OUT), help='report, JSON and plots go here')
    ap.add_argument('--notes-file', default=None,
                    help='Markdown appended to the report (default: <out>/benchmark_notes.md; for the default '
                         '--out, docs/benchmark_notes.md)')
    ap.add_argument('--report-only', action='store_true',
                    help='only rewrite the report and plots from <out>/benchmark.json (measures nothing)')
    return ap


def parse_args(argv=None):
    """The options, with the defaults that depend on --quick filled in."""
    opt = parser().parse_args(argv)
    q = opt.quick
    opt.scales = opt.scales or (['n'] if q else ['n', 's'])
    opt.img = opt.img or (320 if q else 640)
    opt.runs = opt.runs or (3 if q else 20)
    opt.warmup = opt.warmup if opt.warmup is not None else (1 if q else 3)
    opt.train_iters = opt.train_iters or (2 if q else 6)
    opt.train_warmup = opt.train_warmup if opt.train_warmup is not None else (1 if q else 2)
    opt.profile = opt.profile or ('off' if q else 'missed')
    opt.max_other = opt.max_other if opt.max_other is not None else (0.0 if q else 0.2)
    if q:
        opt.accuracy = False
    opt.threads = opt.threads or os.cpu_count() or 1
    opt.hyp = str(Path(opt.hyp).resolve() if Path(opt.hyp).is_file() else ROOT / opt.hyp)
    opt.notes = []
    return opt


def measure(groups, opt, device, pbar) -> float:
    """Per scale: cost, PyTorch/onnxruntime latency, training throughput and memory, then the ratios; profiles
    of the models that miss a speed target (CPU). Returns the minutes spent waiting for a quiet machine."""
    from extensions.benchmark import cost, profiling, targets, timing, training  # noqa: PLC0415  (see main)
    from extensions.benchmark.machine import Quiet  # noqa: PLC0415
    cuda = device.type == 'cuda'
    pairs = timing.Pairs(timing.Timer(device), None if cuda else Quiet(opt.max_other, opt.max_wait, pbar), pbar)
    onnx = timing.prepare(device, not opt.no_onnx, opt.notes)
    with tempfile.TemporaryDirectory(prefix='yolo-bench-', ignore_cleanup_errors=True) as tmp:
        for group in groups.values():
            fms = cost.measure_cost(group, opt.img, pbar)
            onnx = timing.measure_latency(group, fms, device, opt.img, opt.threads, opt.runs, opt.warmup, pairs,
                                          Path(tmp), onnx, opt.notes)
            training.measure_throughput(group, device, opt.train_img, opt.train_batch, opt.train_iters,
                                        opt.train_warmup, pairs)
            training.measure_memory(group, device, opt.train_img, opt.train_batch, opt.threads, pbar)
            cost.cost_ratios(group)
            timing.summarise_latency(group)
            training.summarise_training(group, opt.train_batch)
            if opt.profile == 'off' or cuda:
                continue
            plain = group[0]
            for e in group[1:]:  # the models that miss a latency or FLOP-rate target, or all with --profile all
                if opt.profile == 'all' or targets.misses_speed(e):
                    pbar.set_description(f'{e.name}: profile')
                    e.results['profile'] = profiling.profile_pair(
                        fms[plain.name], fms[e.name], opt.img, opt.profile_iters,
                        plain.results['_layer_gflops'], e.results['_layer_gflops'], pairs.guard)
    return pairs.guard.waited / 60 if pairs.guard else 0.0


def measure_accuracy(groups, opt) -> tuple[dict, list[str]]:
    """Short-schedule training of every model of the scales asked for, on each dataset."""
    from extensions.benchmark.accuracy import accuracy_datasets, accuracy_scales, train_accuracy  # noqa: PLC0415
    data, notes = accuracy_datasets(opt.acc_data)
    todo = [(d, e) for d in data for s in accuracy_scales(opt.acc_scales, d, groups) for e in groups[s]]
    project = Path(opt.project).resolve()
    acc: dict = {}
    with tqdm(total=len(todo) * opt.epochs, desc='accuracy', unit='epoch', file=sys.stderr,
              dynamic_ncols=True) as pbar:
        for d, e in todo:
            pbar.set_description(f'accuracy {d}: {e.name}')
            acc.setdefault(d, {})[e.name] = train_accuracy(e, d, data[d], opt, project, pbar.update)
    return acc, notes


def main(argv=None) -> int:
    opt = parse_args(argv)
    if opt.report_only:
        return report_only(opt)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run cleanups (temp files, train.py) on kill
    # torch, YOLOv5 and onnx load here and in measure*(): --report-only needs none of them
    import torch  # noqa: PLC0415

    from extensions.benchmark.machine import CpuWatch, describe, loadavg, wait_idle  # noqa: PLC0415
    torch.set_num_threads(opt.threads)
    device = torch.device(opt.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device available')
    if device.type == 'cuda' and device.index is not None:
        torch.cuda.set_device(device)
    groups = resolve_groups(opt.cfg, opt.scales, opt.families)
    out = Path(opt.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if opt.wait_idle:
        wait_idle(opt.wait_idle)
    t_start = time.time()
    meta = {'date': dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
            'command': 'python scripts/benchmark.py ' + ' '.join(
                shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
            **describe(device, opt.threads)}
    print(f'benchmark: {", ".join(e.name for g in groups.values() for e in g)}; {meta["cpu"]}, {opt.threads} threads, '
          f'device {device}, load average {meta["load_start"]}', flush=True)
    if meta['load_start'] and meta['load_start'][0] > 0.5:
        print(f'WARNING: load average {meta["load_start"]}: the machine is busy, timings will be disturbed '
              '(--wait-idle MIN waits for it to calm down)', flush=True)

    n_ext = sum(len(g) - 1 for g in groups.values())
    n_all = sum(len(g) for g in groups.values())
    n_onnx = 0 if opt.no_onnx else 1
    total = n_all * (2 + n_onnx) + n_ext * (opt.runs * (1 + n_onnx) + opt.train_iters)
    watch = CpuWatch()
    with tqdm(total=total, desc='latency', unit='step', file=sys.stderr, dynamic_ncols=True) as pbar:
        meta['waited_min'] = measure(groups, opt, device, pbar)
    meta['load_after_timing'] = loadavg()
    meta['other_cores'] = round(watch.others(), 3)
    meta['timing_min'] = (time.time() - t_start) / 60
    acc, acc_notes = measure_accuracy(groups, opt) if opt.accuracy else ({}, [])
    meta['load_end'] = loadavg()
    meta['duration_min'] = (time.time() - t_start) / 60
    finish(groups, acc, acc_notes, meta, opt, out)
    return 0


def finish(groups, acc, acc_notes, meta, opt, out: Path) -> None:
    """Plots, report and JSON into out; the table and the targets on stdout."""
    files = plots(groups, acc, out)
    report = write_report(groups, acc, acc_notes, meta, opt, out, files)
    write_json(groups, acc, acc_notes, meta, opt, out)
    print_summary(groups, meta, report, [out / f for f in files])


def report_only(opt) -> int:
    """Rewrite the report and plots from <out>/benchmark.json (e.g. after editing benchmark_notes.md)."""
    out = Path(opt.out).resolve()
    f = out / 'benchmark.json'
    if not f.is_file():
        raise SystemExit(f'--report-only: no {f}')
    d = json.loads(f.read_text())
    old = parse_args([])  # defaults for options an older JSON may lack
    vars(old).update(d['options'])
    old.notes_file = opt.notes_file
    finish(groups_from_json(d['models']), d['accuracy'], d.get('accuracy_notes', []), d['meta'], old, out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
