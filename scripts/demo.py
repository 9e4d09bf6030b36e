#!/usr/bin/env python3
"""The main job, end to end on CPU: data -> train -> val -> detect (images, video) -> ONNX -> detect/val ONNX.

    python scripts/demo.py                               # built-in synthetic shapes data, yolov5n-res2, ~6 min
    python scripts/demo.py --cfg models_yaml/yolov5s-serd.yaml --epochs 20
    python scripts/demo.py --data datasets/coco128/coco128.yaml --img 320 --video ../shared/data/video/cockatoo.mp4
                                                         # (datasets/coco128 made by scripts/coco128.py)

Every step runs YOLOv5's own script (yolov5/train.py, val.py, detect.py, export.py) as a user would, with
its progress bars and plots, into one fresh run directory runs/demo/expN (never overwriting an earlier run).
It ends by printing where every artifact is and the mAP of the .pt and the .onnx side by side, and writes
the same as summary.json in the run directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _bootstrap import ROOT  # this checkout first on sys.path (scripts/_bootstrap.py)

import yaml

from extensions.datasets.shapes import ensure_shapes, make_video, video_info
from extensions.runs import RunError, parse_map, run_command, script_command

DEFAULT_CFG = 'models_yaml/yolov5n-res2.yaml'
DEFAULT_HYP = 'scripts/hyps/hyp.short-cpu.yaml'
DEMO_CLASSES = 3  # circle, rectangle, triangle: see docs/data.md for what a short CPU schedule learns


def run_step(title: str, script: str, *args, log: Path) -> str:
    """Run yolov5/<script> with args, streaming its output (progress bars included) and keeping a copy."""
    cmd = script_command(script, *args)
    print(f'\n\033[1m==> {title}\033[0m\n    {" ".join(cmd)}', flush=True)
    t0 = time.time()
    r = run_command(cmd, cwd=ROOT, echo=True)
    log.write_text(r.stdout)
    if r.returncode != 0:
        raise RunError(f'{title} failed (exit {r.returncode}); its output is in {log}')
    print(f'    ({time.time() - t0:.0f}s)', flush=True)
    return r.stdout


def next_run_dir(project: Path) -> Path:
    project.mkdir(parents=True, exist_ok=True)
    n = 1
    while (project / f'exp{n}').exists():
        n += 1
    d = project / f'exp{n}'
    d.mkdir()
    return d


def rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument('--cfg', default=DEFAULT_CFG, help='model YAML (any of models_yaml/ or yolov5/models/)')
    ap.add_argument('--data', default='', help="data yaml; default: the built-in shapes set (made if missing)")
    ap.add_argument('--hyp', default=DEFAULT_HYP, help='hyperparameters (default: a short CPU schedule)')
    ap.add_argument('--epochs', type=int, default=30)
    ap.add_argument('--img', type=int, default=160, help='train/val/detect image size')
    ap.add_argument('--optimizer', default='AdamW', choices=['SGD', 'Adam', 'AdamW'],
                    help='AdamW: what the short CPU schedule was measured with (docs/demo.md)')
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--weights', default='', help="initial weights ('' = from scratch)")
    ap.add_argument('--video', default='', help='video for detect.py; default: one made from the shapes generator')
    ap.add_argument('--project', default=str(ROOT / 'runs' / 'demo'), help='runs go to PROJECT/expN')
    ap.add_argument('--device', default='cpu')
    opt = ap.parse_args(argv)
    t_start = time.time()

    cfg = Path(opt.cfg) if Path(opt.cfg).is_file() else ROOT / opt.cfg
    if not cfg.is_file():
        ap.error(f'--cfg {opt.cfg}: no such file')
    if opt.data:
        data = Path(opt.data).resolve()
        if not data.is_file():
            ap.error(f'--data {opt.data}: no such file')
    else:
        print('\033[1m==> built-in data: synthetic shapes, demo scene (made once, then cached)\033[0m', flush=True)
        data = ensure_shapes(ROOT / 'datasets' / 'shapes-demo', classes=DEMO_CLASSES, scene='demo')
    if opt.video:
        video = Path(opt.video).resolve()
        if not video.is_file():
            ap.error(f'--video {opt.video}: no such file')
    else:
        video = make_video(ROOT / 'datasets' / 'shapes-demo.mp4', size=(320, 256), classes=DEMO_CLASSES,
                           scene='demo')

    with open(data) as f:
        d = yaml.safe_load(f)
    val_images = (Path(d.get('path', data.parent)) if Path(d.get('path', '.')).is_absolute()
                  else (data.parent / d.get('path', '.')).resolve()) / d['val']

    run = next_run_dir(Path(opt.project).resolve())
    logs = run / 'logs'
    logs.mkdir()
    common = ['--img', opt.img, '--device', opt.device]
    print(f'\033[1m==> run directory: {rel(run)}\033[0m', flush=True)

    run_step('train (from scratch)' if not opt.weights else 'train', 'train.py', '--cfg', cfg, '--data', data,
             '--hyp', ROOT / opt.hyp if not Path(opt.hyp).is_file() else opt.hyp, '--weights', opt.weights,
             '--optimizer', opt.optimizer, '--epochs', opt.epochs, '--batch-size', opt.batch, '--workers', opt.workers,
             '--cache', 'ram', '--project', run,
             '--name', 'train', '--exist-ok', *common, log=logs / 'train.log')
    weights = run / 'train' / 'weights'
    best_pt = weights / 'best.pt'

    out = run_step('validate best.pt', 'val.py', '--weights', best_pt, '--data', data, '--batch-size', opt.batch,
                   '--project', run, '--name', 'val_pt', '--exist-ok', *common, log=logs / 'val_pt.log')
    map_pt = parse_map(out, 'val.py best.pt')

    run_step('export best.pt to ONNX (dynamic axes, simplified)', 'export.py', '--weights', best_pt,
             '--include', 'onnx', '--dynamic', '--simplify', *common, log=logs / 'export.log')
    best_onnx = weights / 'best.onnx'

    out = run_step('validate best.onnx (onnxruntime)', 'val.py', '--weights', best_onnx, '--data', data,
                   '--project', run, '--name', 'val_onnx', '--exist-ok', *common, log=logs / 'val_onnx.log')
    map_onnx = parse_map(out, 'val.py best.onnx')

    detect = {}
    for fmt, w in (('pt', best_pt), ('onnx', best_onnx)):
        for kind, source in (('images', val_images), ('video', video)):
            name = f'detect_{fmt}_{kind}'
            run_step(f'detect.py {w.name} on {kind}', 'detect.py', '--weights', w, '--source', source,
                     '--project', run, '--name', name, '--exist-ok', *common, log=logs / f'{name}.log')
            detect[name] = run / name

    video_out = detect['detect_pt_video'] / video.name
    vin, vout = video_info(video), video_info(video_out)
    summary = {
        'run': str(run), 'cfg': str(cfg), 'data': str(data), 'epochs': opt.epochs, 'img': opt.img,
        'weights': {'pt': str(best_pt), 'onnx': str(best_onnx)},
        'map': {'pt': map_pt, 'onnx': map_onnx},
        'video': {'input': str(video), **{f'input_{k}': v for k, v in vin.items()},
                  **{f'output_{k}': v for k, v in vout.items()}},
        'artifacts': {'train': str(run / 'train'), **{k: str(v) for k, v in detect.items()},
                      'val_pt': str(run / 'val_pt'), 'val_onnx': str(run / 'val_onnx'), 'logs': str(logs)},
        'seconds': round(time.time() - t_start, 1),
    }
    (run / 'summary.json').write_text(json.dumps(summary, indent=1) + '\n')

    n_img = len(list(detect['detect_pt_images'].glob('*.*')))
    print(f'\n\033[1mDone in {summary["seconds"] / 60:.1f} min. Artifacts in {rel(run)}:\033[0m')
    rows = [
        ('training plots, labels, batches', run / 'train', 'results.png, confusion_matrix.png, *_batch*.jpg'),
        ('weights', best_pt, f'{best_pt.stat().st_size / 1e6:.1f} MB'),
        ('ONNX model', best_onnx, f'{best_onnx.stat().st_size / 1e6:.1f} MB, dynamic batch/H/W'),
        ('detections on images (.pt)', detect['detect_pt_images'], f'{n_img} annotated images'),
        ('detections on images (.onnx)', detect['detect_onnx_images'], ''),
        ('annotated video (.pt)', video_out, f'{vout["frames"]} frames at {vout["fps"]:g} fps '
                                             f'(input: {vin["frames"]} at {vin["fps"]:g})'),
        ('annotated video (.onnx)', detect['detect_onnx_video'] / video.name, ''),
        ('logs of every step', logs, ''),
        ('summary', run / 'summary.json', ''),
    ]
    for what, path, note in rows:
        print(f'  {what:<30} {rel(path)}' + (f'  ({note})' if note else ''))
    print(f'\n\033[1mmAP on {map_pt["images"]} val images ({map_pt["instances"]} objects):\033[0m')
    print(f'  {"":<12}{"mAP50":>8}{"mAP50-95":>10}{"P":>8}{"R":>8}')
    for name, m in (('best.pt', map_pt), ('best.onnx', map_onnx)):
        print(f'  {name:<12}{m["mAP50"]:>8.3f}{m["mAP50-95"]:>10.3f}{m["P"]:>8.3f}{m["R"]:>8.3f}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except RunError as e:
        print(f'\ndemo: ERROR: {e}', file=sys.stderr)
        sys.exit(1)
