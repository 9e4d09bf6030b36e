"""Trained checkpoints in every CPU deployment format: precision, size, mAP (val.py) against the static ONNX, latency.

    python scripts/measure_deploy.py --weights runs/demo/exp1/train/weights/best.pt [more.pt ...] [--img 160]

What it runs and how it compares: ``extensions/deploy/measure.py``. Prints a Markdown table; exit status 1 when a
step fails, or (with --strict) when a format is off its target against the static ONNX.
"""

import argparse
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout first on sys.path: scripts/_bootstrap.py)

from extensions.deploy import measure as dm
from extensions.machine import cpu_flags, cpu_model
from extensions.runs import RunError


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=dm.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--weights', nargs='+', required=True, type=Path, help='trained checkpoints (.pt)')
    ap.add_argument('--data', default='', help="data yaml (default: the training run's opt.yaml)")
    ap.add_argument('--img', type=int, default=0, help="export and val image size (default: the run's)")
    ap.add_argument('--formats', nargs='+', default=list(dm.DEFAULT_FORMATS), choices=list(dm.FORMATS),
                    metavar='FORMAT', help=f'of {", ".join(dm.FORMATS)} (default: {" ".join(dm.DEFAULT_FORMATS)}); '
                                           'onnx is always added')
    ap.add_argument('--project', type=Path, default=Path('runs/deploy'), help='exports and val runs go here')
    ap.add_argument('--rounds', type=int, default=30, help='timed rounds (0: no latency)')
    ap.add_argument('--threads', type=int, default=1, help='threads of every runtime while timing')
    ap.add_argument('--markdown', type=Path, help='also write the table to this file')
    ap.add_argument('--tolerance', type=float, default=0.005, help='mark mAP50-95 differences to ONNX above this')
    ap.add_argument('--int8-drop', type=float, default=0.01, help='mark INT8 mAP50-95 drops below ONNX above this')
    ap.add_argument('--strict', action='store_true', help='exit 1 when a format is marked')
    ap.add_argument('--echo', action='store_true', help="stream the scripts' output")
    opt = ap.parse_args(argv)
    for w in opt.weights:
        if not w.is_file():
            ap.error(f'--weights {w}: no such file')
    return opt


def main(argv=None) -> int:
    opt = parse_args(argv)
    try:
        rows = dm.measure_all(opt.weights, opt.formats, opt.data, opt.img, opt.project, opt.rounds, opt.threads,
                              opt.echo)
    except RunError as e:
        print(f'measure_deploy: {e}', file=sys.stderr)
        return 1
    text, over = dm.table(rows, opt.tolerance, opt.int8_drop)
    text += (f'\nCPU {cpu_model()} (flags: {cpu_flags()}); latency: batch 1, {opt.threads} thread(s), median of '
             f'{opt.rounds} rounds, formats taking turns.\n')
    print(text)
    if opt.markdown:
        opt.markdown.write_text(text)
    if over and opt.strict:
        print(f'measure_deploy: mAP50-95 off the static ONNX (float formats +-{opt.tolerance}, INT8 drop '
              f'{opt.int8_drop}): {", ".join(over)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
