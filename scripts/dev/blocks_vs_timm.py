"""Our blocks and backbone stages against timm's, same weights, alternating pairs (extensions.benchmark.reference).
The benchmark runs the same part with its report: python scripts/benchmark.py --only blocks. This script gives every
setting of it a flag and prints the table only.

    python scripts/dev/blocks_vs_timm.py                          # CPU, all cases, 10 pairs each
    python scripts/dev/blocks_vs_timm.py --threads 2 --only res2 --pairs 6
    python scripts/dev/blocks_vs_timm.py --device cuda            # fp16 autocast, cudnn.benchmark
    python scripts/dev/blocks_vs_timm.py --no-stages --json out.json

Prints one row per case and pass: median ms of ours and timm's, and the median per-pair ratio ours/timm with its
quartiles (a ratio above 1.00 means ours is slower; 'above': the whole IQR is). Exit status 1 on a bad
argument or a failed case.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout first on sys.path: scripts/_bootstrap.py)

from extensions.benchmark.parts import run_blocks
from extensions.benchmark.report import blocks_lines
from extensions.benchmark.settings import BenchmarkError, BlocksSettings


def parse_args(argv=None):
    d = BlocksSettings()
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--device', default=d.device, help='cpu, cuda or cuda:<i>')
    ap.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch default)')
    ap.add_argument('--infer-batch', type=int, default=d.infer_batch)
    ap.add_argument('--train-batch', type=int, default=d.train_batch)
    ap.add_argument('--width', type=int, default=d.width, help='block cases: output channels')
    ap.add_argument('--block-size', type=int, default=d.block_size, help='block cases: input height/width')
    ap.add_argument('--image-size', type=int, default=d.image_size, help='stage cases: network input size')
    ap.add_argument('--stages', type=int, nargs='*', default=list(d.stages), help='which layerN (none: no stages)')
    ap.add_argument('--no-stages', action='store_true')
    ap.add_argument('--no-blocks', action='store_true')
    ap.add_argument('--pairs', type=int, default=d.pairs)
    ap.add_argument('--warmup', type=int, default=d.warmup)
    ap.add_argument('--fp32', action='store_true', help='CUDA: no autocast')
    ap.add_argument('--clock', choices=('wall', 'cpu'), default=d.clock,
                    help='wall time, or the process CPU time (CPU only; robust to other processes)')
    ap.add_argument('--only', nargs='*', default=[], help='case names or families (res2, resnest, serd)')
    ap.add_argument('--json', default='', help='also write the report as JSON here')
    a = ap.parse_args(argv)
    return a, dict(device=a.device, threads=a.threads, infer_batch=a.infer_batch, train_batch=a.train_batch,
                   width=a.width, block_size=a.block_size, image_size=a.image_size,
                   stages=() if a.no_stages else tuple(a.stages), blocks=not a.no_blocks, pairs=a.pairs,
                   warmup=a.warmup, amp=not a.fp32, only=tuple(a.only), clock=a.clock)


def main(argv=None) -> int:
    a, kw = parse_args(argv)
    try:
        settings = BlocksSettings(**kw)
        result = run_blocks(settings, None)
    except BenchmarkError as e:
        print(f'blocks_vs_timm: {e}', file=sys.stderr)
        return 1
    notes = ''.join(f'; {n}' for n in result.notes)
    print(f'{result.device}, {result.threads} threads, torch {result.torch_version}, timm {result.timm_version}, '
          f'{settings.pairs} pairs per pass, {settings.clock} time{notes}')
    print('\n'.join(blocks_lines(result)))
    if a.json:
        d = {'settings': dataclasses.asdict(settings), 'result': dataclasses.asdict(result)}
        Path(a.json).write_text(json.dumps(d, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
