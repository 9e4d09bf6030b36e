#!/usr/bin/env python3
"""Benchmark: plain YOLOv5 against each block family of extensions/families.py at the same scale.

    python scripts/benchmark.py                                   # n and s: cost, latency, training throughput
    python scripts/benchmark.py --accuracy --wait-idle 30         # + accuracy over 3 seeds, 2 cases: slow (hours)
    python scripts/benchmark.py --only accuracy                   # the accuracy part alone (report in runs/)
    python scripts/benchmark.py --cfg models_yaml/yolov5s-rs.yaml models_yaml/yolov5m-res2.yaml
    python scripts/benchmark.py --quick --out /tmp/bench          # smoke test (n scale, small image, 3 runs)
    python scripts/benchmark.py --device cuda                     # GPU: fp16, synchronised CUDA timing
    python scripts/benchmark.py --runtimes openvino-f32 openvino-int8   # only these runtimes' latency
    python scripts/benchmark.py --report-only                     # rewrite docs/benchmark/ from benchmark.json
    python scripts/benchmark.py --only accuracy --device 0 --acc-data my.yaml --acc-img 640 --epochs 100 \
        --seeds 5 --pretrained yolov5s.pt --acc-scales s --scales s   # your data, on a GPU

--reuse-accuracy reuses a finished training run (runs/benchmark/<data>-<case>-<model>-seed<k>) whose settings and
model are unchanged (same YAML, data, hyp, epochs, seed, starting checkpoint, ...; same parameter shapes and
seeded outputs), so the slow accuracy part can be done once (--only accuracy) and the timing part repeated on an
idle machine; the report says which runs were reused.

Every model is compared with plain YOLOv5 of its scale (yolov5/models/yolov5<scale>.yaml, the scale being the
letter in the file name: yolov5s-res2.yaml -> yolov5s.yaml), measured in the same run:

* params and GFLOPs at 640 of the fused model (YOLOv5's own count, thop, taken at 640 itself);
* latency at batch 1 in each runtime of --runtimes (default: all available): the fused eval PyTorch model under
  torch.inference_mode (torch), the ONNX export of it (as yolov5/export.py does) in onnxruntime (onnx) and in
  OpenVINO on the CPU: f32 (openvino-f32), the runtime's default precision (openvino: bf16 on CPUs with bf16
  instructions; the precision it ran in is recorded) and NNCF post-training INT8 (openvino-int8, calibrated on
  the built-in shapes data), with a fixed thread count. One runtime at a time, each extension model is timed in
  pairs alternating with its plain model (plain, ext, plain, ext, ...); its ratio is the median of the per-pair
  ratios, with their interquartile range as the spread; P50/P95/P99 of each model's timed runs. Achieved
  GFLOP/s = GFLOPs / latency; the fastest runtime per model; INT8's speed-up over the same model in f32;
* training throughput (images/s of forward + ComputeLoss + backward + clip + SGD step + EMA, as train.py does,
  on a fixed synthetic batch), alternated with the plain model in the same way; peak memory of training
  (CPU: growth of the peak resident set over two iterations, in a fresh process; GPU: max_memory_allocated);
* with --accuracy (or --only accuracy): ACCURACY OVER SEEDS, every model trained by yolov5/train.py --seeds
  times (default 3; only --seed differs between the runs of a model) with the same epochs, optimizer and
  hyperparameters (the demo's recipe: AdamW with scripts/hyps/hyp.short-cpu.yaml, batch 16), by default on
  the demo's shapes scene at img 160 and at the smallest scale of the run, in two cases: from scratch, and
  fine-tuned from a plain YOLOv5 checkpoint trained (once, by the benchmark, cached) on the standard shapes
  scene, as users start from yolov5s.pt. Per model: mean, sd and per-seed mAP of the final epoch; per family:
  the difference to plain with Welch's 95% interval and a verdict ("better by", "worse by", "no difference
  detectable at this budget"). A failed or missing seed fails the benchmark (exit 1, naming model, case and
  seed; the finished runs stay for --reuse-accuracy). A short schedule says which model learns faster in a
  few CPU epochs; it is not a claim about COCO.

Writes <out>/benchmark.md (tables, machine, date, command, targets met/missed, profile of missed targets),
<out>/benchmark.json (every number) and PNG plots, and prints the targets and verdicts. Timing runs are only
meaningful on an otherwise idle machine: the load average at the start and the end goes into the report. The
measurements live in the package extensions/benchmark/; this script parses the options and runs them in order
(the accuracy part first, so that a failing seed costs no timing work).
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
from extensions.benchmark.report_accuracy import CASES  # noqa: E402
from extensions.benchmark.targets import ALL_RUNTIMES  # noqa: E402
from extensions.families import FAMILIES  # noqa: E402

DEFAULT_HYP = ROOT / 'scripts' / 'hyps' / 'hyp.short-cpu.yaml'
RUNTIMES = tuple(k for k, _ in ALL_RUNTIMES)  # torch, onnx, openvino-f32, openvino, openvino-int8
MIN_SEEDS = 3  # fewer cannot tell a block from run-to-run noise (docs/benchmark_notes.md)
ACC_EPOCHS = 20  # the committed setting: chosen from measured CPU time per epoch (docs/benchmark_notes.md)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__.split('\n', 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cfg', nargs='+', default=None,
                    help='model YAMLs (default: models_yaml/yolov5<scale>-<family>.yaml for --scales x --families)')
    ap.add_argument('--scales', nargs='+', default=None, help='default: n s (--quick: n)')
    ap.add_argument('--families', nargs='+', default=[f.key for f in FAMILIES],
                    help='family keys of extensions/families.py (default: all of them) or other YAML suffixes')
    ap.add_argument('--device', default='cpu', help='cpu, cuda[:i] or i (a GPU index, as train.py)')
    ap.add_argument('--threads', type=int, default=None, help='CPU threads (default: all cores)')
    ap.add_argument('--img', type=int, default=None, help='latency image size (default 640; --quick: 320)')
    ap.add_argument('--runs', type=int, default=None, help='timed pairs per model and runtime (default 20, >= 10)')
    ap.add_argument('--warmup', type=int, default=None, help='warm-up pairs (default 3)')
    ap.add_argument('--train-img', type=int, default=320)
    ap.add_argument('--train-batch', type=int, default=8)
    ap.add_argument('--train-iters', type=int, default=None, help='timed training pairs (default 6)')
    ap.add_argument('--train-warmup', type=int, default=None, help='warm-up training pairs (default 2)')
    ap.add_argument('--runtimes', nargs='+', default=None, choices=RUNTIMES, metavar='RUNTIME',
                    help=f'latency runtimes, measured one at a time in this order: {", ".join(RUNTIMES)} (default: '
                         'all available; OpenVINO only on --device cpu; --quick: torch onnx)')
    ap.add_argument('--no-onnx', action='store_true', help='skip onnxruntime')
    ap.add_argument('--max-other', type=float, default=None, metavar='CORES',
                    help='re-measure a timed pair during which other processes used more than CORES cores, once '
                         'the machine is quiet again (default 0.2; --quick: 0 = keep every pair)')
    ap.add_argument('--max-wait', type=float, default=60, metavar='MIN',
                    help='total minutes the run may wait for a quiet machine before keeping busy pairs (default 60)')
    ap.add_argument('--profile', choices=('missed', 'all', 'off'), default=None,
                    help='profile extension models that miss a latency/FLOP-rate target (default), all, or none')
    ap.add_argument('--profile-iters', type=int, default=5)
    ap.add_argument('--accuracy', action='store_true',
                    help='also train every model --seeds times, from scratch and fine-tuned (slow: hours on a CPU)')
    ap.add_argument('--only', choices=['accuracy'], default=None,
                    help='accuracy: only the accuracy part (no cost/latency/training timing); its report goes to '
                         '<project>/report unless --out is given; a later full run takes it over with '
                         '--reuse-accuracy')
    ap.add_argument('--seeds', type=int, default=MIN_SEEDS,
                    help=f'accuracy: runs per model and case, seeds --seed .. --seed+N-1 (default {MIN_SEEDS}, at '
                         f'least {MIN_SEEDS})')
    ap.add_argument('--allow-few-seeds', action='store_true', help=argparse.SUPPRESS)  # tests of the plumbing only
    ap.add_argument('--epochs', type=int, default=ACC_EPOCHS,
                    help=f'accuracy: epochs of every run (default {ACC_EPOCHS}: all models, 3 seeds and both cases in '
                         'about 2 hours of a 2-core CPU, docs/benchmark_notes.md)')
    ap.add_argument('--optimizer', default='AdamW', choices=['SGD', 'Adam', 'AdamW'],
                    help='accuracy: train.py optimizer (default AdamW, what hyp.short-cpu.yaml is for)')
    ap.add_argument('--acc-data', nargs='+', default=['demo'],
                    help='accuracy: demo (the demo\'s shapes scene, 3 classes; default), shapes (the standard '
                         'scene, 6 classes), coco128 and/or data yamls')
    ap.add_argument('--acc-scales', nargs='+', default=None,
                    help='scales to train (default: the smallest of the run); DATA:SCALE limits one dataset, e.g. '
                         'demo:n demo:s')
    ap.add_argument('--acc-img', type=int, default=None,
                    help='default: 160 for the shapes data (as the demo), 320 otherwise')
    ap.add_argument('--acc-batch', type=int, default=16)
    ap.add_argument('--cases', nargs='+', choices=CASES, default=list(CASES),
                    help='accuracy: from scratch, fine-tuned from a plain YOLOv5 checkpoint (default: both)')
    ap.add_argument('--pretrain-data', default='shapes',
                    help='finetune: the task the plain checkpoint is trained on, once, by the benchmark (default: '
                         'shapes, the standard scene; demo, coco128 or a data yaml)')
    ap.add_argument('--pretrain-epochs', type=int, default=None,
                    help='finetune: its epochs (default: 2 x --epochs; one run, so a better start costs little)')
    ap.add_argument('--pretrained', nargs='+', default=None, metavar='[SCALE=]CKPT',
                    help='finetune: start from these plain YOLOv5 checkpoints instead (e.g. yolov5s.pt, or s=my.pt)')
    ap.add_argument('--hyp', default=str(DEFAULT_HYP))
    ap.add_argument('--seed', type=int, default=0, help='accuracy: the first seed')
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--project', default=str(ROOT / 'runs' / 'benchmark'), help='accuracy training runs go here')
    ap.add_argument('--reuse-accuracy', action='store_true',
                    help='reuse a finished accuracy run with identical settings (cfg, data, hyp, epochs, seed, ...)')
    ap.add_argument('--quick', action='store_true', help='smoke test: n scale (or --cfg), img 320, 3 runs, no accuracy')
    ap.add_argument('--wait-idle', type=float, default=0, metavar='MIN',
                    help='first wait up to MIN minutes for the 1-minute load average to drop below 0.5')
    ap.add_argument('--out', default=None,
                    help=f'report, JSON and plots go here (default {DEFAULT_OUT.relative_to(ROOT)}; --only accuracy: '
                         '<project>/report)')
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
    if opt.device.isdigit():  # train.py's spelling of a GPU
        opt.device = f'cuda:{opt.device}'
    if opt.only == 'accuracy':
        opt.accuracy = True
    if q:
        opt.accuracy = False
    if opt.seeds < (2 if opt.allow_few_seeds else MIN_SEEDS):
        raise SystemExit(f'--seeds {opt.seeds}: at least {MIN_SEEDS} (one or two runs per model cannot tell a block '
                         'from run-to-run noise)')
    opt.pretrain_epochs = opt.pretrain_epochs or 2 * opt.epochs
    opt.out = opt.out or str(Path(opt.project) / 'report' if opt.only == 'accuracy' else DEFAULT_OUT)
    opt.threads = opt.threads or os.cpu_count() or 1
    opt.hyp = str(Path(opt.hyp).resolve() if Path(opt.hyp).is_file() else ROOT / opt.hyp)
    opt.notes = []
    opt.runtimes_given = opt.runtimes is not None
    if opt.runtimes is None:  # resolved against what is installed in resolve_runtimes (main), not here
        opt.runtimes = ['torch', 'onnx'] if q else list(RUNTIMES)
    opt.runtimes = list(dict.fromkeys(k for k in opt.runtimes if not (opt.no_onnx and k == 'onnx')))
    return opt


def resolve_runtimes(opt, device) -> list[str]:
    """The runtimes to time: those asked for (a missing openvino/nncf is then an error naming the fix; OpenVINO
    on a GPU run is an error), or by default every one this environment has (what is left out goes into the
    notes)."""
    from extensions.benchmark import openvino as bov  # noqa: PLC0415  (imports openvino only when asked)
    ov = [k for k in opt.runtimes if bov.is_openvino(k)]
    if device.type == 'cuda':
        if ov and opt.runtimes_given:
            raise SystemExit(f'--runtimes {" ".join(ov)}: the OpenVINO runtimes time the CPU; run them with '
                             '--device cpu')
        return [k for k in opt.runtimes if k not in ov]
    if opt.runtimes_given:
        bov.require(ov)
        return opt.runtimes
    have = bov.available()
    missing = [k for k in ov if k not in have]
    if missing:
        opt.notes.append(f'Not timed ({", ".join(missing)}): openvino/nncf not installed (python scripts/setup.py '
                         'installs requirements.txt).')
    return [k for k in opt.runtimes if k not in missing]


def measure(groups, opt, device, pbar) -> float:
    """Per scale: cost, PyTorch/onnxruntime latency, training throughput and memory, then the ratios; profiles
    of the models that miss a speed target (CPU). Returns the minutes spent waiting for a quiet machine."""
    from extensions.benchmark import cost, profiling, targets, timing, training  # noqa: PLC0415  (see main)
    from extensions.benchmark.machine import Quiet  # noqa: PLC0415
    cuda = device.type == 'cuda'
    pairs = timing.Pairs(timing.Timer(device), None if cuda else Quiet(opt.max_other, opt.max_wait, pbar), pbar)
    runtimes = timing.prepare(device, opt.runtimes, opt.notes)

    def ov_profile(e, kind) -> bool:  # OpenVINO's per-node counters of a pair that misses its OpenVINO target
        if cuda or opt.profile == 'off' or not kind.startswith('openvino'):
            return False
        lim = targets.openvino_latency_target(e)
        return opt.profile == 'all' or (lim is not None and e.results[kind]['ratio']['median'] > lim)

    with tempfile.TemporaryDirectory(prefix='yolo-bench-', ignore_cleanup_errors=True) as tmp:
        for group in groups.values():
            fms = cost.measure_cost(group, opt.img, pbar)
            runtimes = timing.measure_latency(group, fms, device, opt.img, opt.threads, opt.runs, opt.warmup, pairs,
                                              Path(tmp), runtimes, opt.notes, ov_profile, opt.profile_iters)
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
    """Every model of the accuracy scales trained --seeds times per case; exits non-zero, naming model, case and
    seed, if any run failed (fail closed: no mean of the seeds that happened to finish)."""
    from extensions.benchmark import accuracy  # noqa: PLC0415  (torch: see main)
    with tqdm(total=0, desc='accuracy', unit='epoch', file=sys.stderr, dynamic_ncols=True) as pbar:
        acc, notes, failures = accuracy.measure(groups, opt, pbar)
    if failures:
        raise SystemExit(f'benchmark FAILED: {len(failures)} accuracy run(s) failed or missing, so no mean or '
                         'verdict is reported:\n  ' + '\n  '.join(failures) + f'\nThe finished runs are kept in '
                         f'{Path(opt.project).resolve()}: fix the cause and run the same command with '
                         '--reuse-accuracy to train only what is missing.')
    return acc, notes


def main(argv=None) -> int:
    opt = parse_args(argv)
    if opt.report_only:
        return report_only(opt)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run cleanups (temp files, train.py) on kill
    # torch, YOLOv5 and onnx load here and in measure*(): --report-only needs none of them
    import torch  # noqa: PLC0415

    from extensions.benchmark.machine import describe, loadavg  # noqa: PLC0415
    torch.set_num_threads(opt.threads)
    device = torch.device(opt.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device available')
    if device.type == 'cuda' and device.index is not None:
        torch.cuda.set_device(device)
    if opt.only != 'accuracy':  # before the (slow) accuracy part: a runtime asked for but missing fails now
        opt.runtimes = resolve_runtimes(opt, device)
    groups = resolve_groups(opt.cfg, opt.scales, opt.families)
    out = Path(opt.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    meta = {'date': dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
            'command': 'python scripts/benchmark.py ' + ' '.join(
                shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
            **describe(device, opt.threads)}
    if opt.only != 'accuracy':
        meta['runtimes'] = opt.runtimes
        if any(k.startswith('openvino') for k in opt.runtimes):
            from extensions.benchmark import openvino as bov  # noqa: PLC0415
            meta['openvino'] = bov.describe()
    print(f'benchmark: {", ".join(e.name for g in groups.values() for e in g)}; {meta["cpu"]}, {opt.threads} threads, '
          f'device {device}, load average {meta["load_start"]}', flush=True)
    if meta.get('runtimes'):
        ovm = meta.get('openvino')
        print(f'latency runtimes: {", ".join(meta["runtimes"])}' + (
            f'; OpenVINO {ovm["openvino"]}, CPU capabilities {", ".join(ovm["capabilities"])}, CPU flags '
            f'{", ".join(ovm["cpu_flags"]) or "none that matter"}' if ovm else ''), flush=True)
    acc, acc_notes = measure_accuracy(groups, opt) if opt.accuracy else ({}, [])
    meta['accuracy_min'] = (time.time() - t_start) / 60 if opt.accuracy else None
    if opt.only == 'accuracy':
        meta.update(waited_min=None, load_after_timing=None, other_cores=None, timing_min=None)
    else:
        measure_speed(groups, opt, device, meta)
    meta['load_end'] = loadavg()
    meta['duration_min'] = (time.time() - t_start) / 60
    finish(groups, acc, acc_notes, meta, opt, out)
    return 0


def measure_speed(groups, opt, device, meta) -> None:
    """The timing part (cost, latency, training throughput and memory) into groups; its conditions into meta."""
    from extensions.benchmark.machine import CpuWatch, loadavg, wait_idle  # noqa: PLC0415
    if opt.wait_idle:
        wait_idle(opt.wait_idle)
    la = meta['load_start'] = loadavg()  # what the timings met (after the accuracy part, if any)
    if la and la[0] > 0.5:
        print(f'WARNING: load average {la}: the machine is busy, timings will be disturbed '
              '(--wait-idle MIN waits for it to calm down)', flush=True)
    t0 = time.time()
    n_ext = sum(len(g) - 1 for g in groups.values())
    n_all = sum(len(g) for g in groups.values())
    n_files = 0 if opt.runtimes in (['torch'], []) else 1  # the ONNX export of each model, for onnx and OpenVINO
    total = n_all * (2 + n_files) + n_ext * (opt.runs * len(opt.runtimes) + opt.train_iters)
    watch = CpuWatch()
    with tqdm(total=total, desc='latency', unit='step', file=sys.stderr, dynamic_ncols=True) as pbar:
        meta['waited_min'] = measure(groups, opt, device, pbar)
    meta['load_after_timing'] = loadavg()
    meta['other_cores'] = round(watch.others(), 3)
    meta['timing_min'] = (time.time() - t0) / 60


def finish(groups, acc, acc_notes, meta, opt, out: Path) -> None:
    """Plots, report and JSON into out; the table and the targets on stdout."""
    files = plots(groups, acc, out)
    report = write_report(groups, acc, acc_notes, meta, opt, out, files)
    write_json(groups, acc, acc_notes, meta, opt, out)
    print_summary(groups, meta, report, [out / f for f in files], acc)


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
    acc, acc_notes = d.get('accuracy') or {}, d.get('accuracy_notes', [])
    if acc and 'results' not in acc:  # one seed per model, as the benchmark once did: no interval, no verdict
        acc, acc_notes = {}, [*acc_notes, 'The accuracy part of this JSON is of an older, single-seed format: '
                              'not shown (one seed cannot tell a block from run-to-run noise); rerun with --accuracy.']
    finish(groups_from_json(d['models']), acc, acc_notes, d['meta'], old, out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
