"""Measure a trained checkpoint in every CPU deployment format: mAP (val.py), export size, latency.

    python -m extensions.deploy.measure --weights <best.pt> --data <data.yaml> --img 160 --out runs/deploy/res2

Works on a copy of the weights in ``--out`` (nothing is written next to the original), and runs YOLOv5's own
scripts as a user would:

* ``export.py --include torchscript onnx openvino`` (static shapes: val.py runs every exported model at batch 1
  square, so the static ONNX is the like-for-like reference), ``--include openvino --half`` (on a second copy,
  since it writes the same folder name) and ``--include openvino --int8 --data <data.yaml>``;
* ``val.py --img <img>`` on the .pt, the TorchScript, the ONNX and each OpenVINO model, recording the precision
  line OpenVINO logged (``YOLOV5_OPENVINO_PRECISION`` as in the environment; default f32);
* latency in this process, batch 1 at the export size, the formats taking turns in each round (so that a noisy
  shared machine slows all of them alike), median of ``--rounds``, with the torch/onnxruntime/OpenVINO threads
  set to ``--threads`` (default 1: on a shared, oversubscribed machine a 2-thread pool waits at every barrier for
  its preempted thread; measured here under load 10, PyTorch took 400-700 ms with 2 threads and 40 ms with 1).

Prints a Markdown table and writes it, with the commands run and the CPU flags, to ``<out>/measure.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / 'yolov5'
ALL_ROW = re.compile(r'^\s+all\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$', re.M)
CPU_FLAGS = ('avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_int8', 'avx512_fp16')


def cpu_info() -> dict:
    try:
        text = Path('/proc/cpuinfo').read_text()
    except OSError:
        return {}
    model = re.search(r'^model name\s*:\s*(.+)$', text, re.M)
    flags = set((re.search(r'^flags\s*:\s*(.+)$', text, re.M) or ['', ''])[1].split())
    return {'model': model[1] if model else '?', 'flags': [f for f in CPU_FLAGS if f in flags],
            'cores': os.cpu_count()}


def run(script: str, *args, log: list, env=None) -> str:
    cmd = [sys.executable, str(BASE / script), *[str(a) for a in args]]
    print('$', ' '.join(cmd), flush=True)
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=dict(os.environ if env is None else env, PYTHONUNBUFFERED='1'))
    log.append({'cmd': ' '.join(cmd), 'seconds': round(time.time() - t0, 1), 'rc': r.returncode})
    if r.returncode != 0:
        raise SystemExit(f'{script} failed (exit {r.returncode}):\n{r.stdout[-3000:]}')
    return r.stdout


def val_row(output: str) -> dict:
    rows = ALL_ROW.findall(output)
    if not rows:
        raise SystemExit(f'no "all" row in the val.py output:\n{output[-2000:]}')
    _, _, _, _, map50, map5095 = rows[-1]
    precision = next((ln.split('inference precision ')[1].split(' ')[0] for ln in output.splitlines()
                      if 'inference precision' in ln), None)
    return {'mAP50': float(map50), 'mAP50-95': float(map5095), 'precision': precision}


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob('*') if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def latency(models: dict, img: int, rounds: int, threads: int) -> dict:
    """Median ms per batch-1 inference of each model, the models taking turns in every round."""
    import numpy as np  # noqa: PLC0415
    import onnxruntime as ort  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from models.experimental import attempt_load  # noqa: PLC0415

    from extensions.deploy import openvino as ovd  # noqa: PLC0415
    ov = ovd.require('openvino', ovd.OPENVINO_REQUIREMENT)
    torch.set_num_threads(threads)
    x = np.random.default_rng(0).random((1, 3, img, img), dtype=np.float32)
    runners = {}
    for name, (kind, path) in models.items():
        if kind == 'pt':
            m = attempt_load(path, device=torch.device('cpu'), fuse=True).eval()
            xt = torch.from_numpy(x)
            runners[name] = lambda m=m, xt=xt: m(xt)
        elif kind == 'torchscript':
            m = torch.jit.load(str(path), map_location='cpu').eval()
            xt = torch.from_numpy(x)
            runners[name] = lambda m=m, xt=xt: m(xt)
        elif kind == 'onnx':
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            s = ort.InferenceSession(str(path), so, providers=['CPUExecutionProvider'])
            runners[name] = lambda s=s: s.run(None, {'images': x})
        else:  # openvino: compiled as DetectMultiBackend compiles it, with the thread count fixed
            _, config = ovd.precision_config()
            xml = next(Path(path).glob('*.xml'))
            c = ov.Core().compile_model(str(xml), 'CPU', {**config, 'INFERENCE_NUM_THREADS': threads})
            runners[name] = lambda c=c: c([x])
    times = {name: [] for name in runners}
    with torch.inference_mode():
        for f in runners.values():  # warm-up
            for _ in range(3):
                f()
        for _ in range(rounds):
            for name, f in runners.items():
                t0 = time.perf_counter()
                f()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--weights', type=Path, required=True)
    ap.add_argument('--data', type=Path, required=True)
    ap.add_argument('--img', type=int, default=640)
    ap.add_argument('--out', type=Path, required=True)
    ap.add_argument('--rounds', type=int, default=50)
    ap.add_argument('--threads', type=int, default=1)
    opt = ap.parse_args(argv)
    if not opt.weights.is_file():
        raise SystemExit(f'--weights {opt.weights}: no such file')
    out = opt.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    pt = out / 'best.pt'
    shutil.copy2(opt.weights, pt)
    pt16 = out / 'fp16' / 'best.pt'
    pt16.parent.mkdir(exist_ok=True)
    shutil.copy2(opt.weights, pt16)
    log, img = [], str(opt.img)
    run('export.py', '--weights', pt, '--include', 'torchscript', 'onnx', 'openvino', '--img', img, log=log)
    run('export.py', '--weights', pt16, '--include', 'openvino', '--half', '--img', img, log=log)
    run('export.py', '--weights', pt, '--include', 'openvino', '--int8', '--data', opt.data, '--img', img, log=log)
    formats = {  # name: (kind, path)
        'PyTorch (.pt)': ('pt', pt),
        'TorchScript': ('torchscript', pt.with_suffix('.torchscript')),
        'ONNX (static), onnxruntime': ('onnx', pt.with_suffix('.onnx')),
        'OpenVINO FP32': ('openvino', out / 'best_openvino_model'),
        'OpenVINO FP16 weights (--half)': ('openvino', pt16.parent / 'best_openvino_model'),
        'OpenVINO INT8 (--int8)': ('openvino', out / 'best_int8_openvino_model'),
    }
    rows = {}
    for name, (_, path) in formats.items():
        v = val_row(run('val.py', '--weights', path, '--data', opt.data, '--img', img, '--project', out / 'val',
                        '--name', re.sub(r'\W+', '-', name).strip('-').lower(), '--exist-ok', log=log))
        rows[name] = {**v, 'size_mb': round(size_mb(path), 2)}
    for name, ms in latency(formats, opt.img, opt.rounds, opt.threads).items():
        rows[name]['latency_ms'] = round(ms, 2)
    cpu = cpu_info()
    env = {k: os.environ[k] for k in ('YOLOV5_OPENVINO_PRECISION',) if k in os.environ}
    report = {'weights': str(opt.weights), 'data': str(opt.data), 'img': opt.img, 'cpu': cpu, 'threads': opt.threads,
              'rounds': opt.rounds, 'env': env, 'rows': rows, 'commands': log}
    (out / 'measure.json').write_text(json.dumps(report, indent=2))
    print(f'\n{opt.weights} at {opt.img} px; CPU {cpu.get("model")} ({", ".join(cpu.get("flags", []))}), '
          f'{opt.threads} threads')
    print('| format | precision run in | mAP50 | mAP50-95 | size MB | latency ms |')
    print('|---|---|---:|---:|---:|---:|')
    for name, r in rows.items():
        prec = r['precision'] or 'f32'
        prec = f'int8 + {prec}' if 'INT8' in name else prec
        print(f"| {name} | {prec} | {r['mAP50']:.3f} | {r['mAP50-95']:.3f} | {r['size_mb']:.1f} | "
              f"{r['latency_ms']:.1f} |")
    return 0


if __name__ == '__main__':
    sys.path[:0] = [str(ROOT), str(BASE)]
    sys.exit(main())
