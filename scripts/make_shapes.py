#!/usr/bin/env python3
"""Command line of the built-in synthetic shapes dataset (YOLO format) and its demo video.

    python scripts/make_shapes.py                                  # datasets/shapes/shapes.yaml
    python scripts/make_shapes.py --scene demo --classes 3 --out datasets/shapes-demo
    python scripts/make_shapes.py --video                          # also datasets/shapes.mp4

The generator is extensions/datasets/shapes.py (what the images hold, caching, the Python API); see
docs/data.md.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout first on sys.path: scripts/_bootstrap.py)

from extensions.datasets.shapes import CLASSES, DEFAULT_OUT, DEFAULT_VIDEO, DEFAULTS, SCENES, ensure_shapes, make_video


def _size(text):
    m = re.fullmatch(r'(\d+)[xX](\d+)', text)
    if not m:
        raise argparse.ArgumentTypeError('expected WIDTHxHEIGHT, e.g. 320x256')
    return int(m.group(1)), int(m.group(2))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Generate the built-in synthetic shapes dataset (YOLO format) and optionally a demo video. '
                    f'Classes: {", ".join(CLASSES)}. Deterministic for a given seed; cached (a repeated call '
                    'with the same parameters does nothing).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out', type=Path, default=DEFAULT_OUT, help='dataset directory (data yaml: <out>/<name>.yaml)')
    p.add_argument('--img', type=int, default=DEFAULTS['img'], help='image side in pixels')
    p.add_argument('--train', type=int, default=DEFAULTS['train'], help='number of training images')
    p.add_argument('--val', type=int, default=DEFAULTS['val'], help='number of validation images')
    p.add_argument('--seed', type=int, default=DEFAULTS['seed'], help='random seed')
    p.add_argument('--classes', default=None, metavar='N|NAMES',
                   help='class subset: a count N (the first N) or comma-separated names; None means all six')
    p.add_argument('--scene', choices=sorted(SCENES), default='standard',
                   help="'standard' (default) or 'demo' (what scripts/demo.py trains on: easier, learns in minutes)")
    p.add_argument('--force', action='store_true', help='regenerate even if cached (and replace a foreign --out)')
    p.add_argument('--video', nargs='?', type=Path, const=DEFAULT_VIDEO, default=None,
                   metavar='PATH', help='also write a demo mp4 of moving shapes (PATH if omitted: datasets/shapes.mp4)')
    p.add_argument('--video-only', action='store_true', help='write only the video (implies --video)')
    p.add_argument('--frames', type=int, default=75, help='video frames')
    p.add_argument('--fps', type=float, default=15, help='video frames per second')
    p.add_argument('--video-size', type=_size, default=(320, 256), metavar='WxH', help='video frame size')
    p.add_argument('--quiet', action='store_true', help='print only the resulting path(s)')
    return p.parse_args(argv)


def main(argv=None):
    opt = parse_args(argv)
    try:
        return _main(opt)
    except (ValueError, FileExistsError, RuntimeError) as e:
        print(f'make_shapes: error: {e}', file=sys.stderr)
        return 2


def _main(opt):
    verbose = not opt.quiet
    if opt.video_only and opt.video is None:
        opt.video = DEFAULT_VIDEO
    if not opt.video_only:
        path = ensure_shapes(opt.out, img=opt.img, train=opt.train, val=opt.val, seed=opt.seed,
                             classes=opt.classes, force=opt.force, verbose=verbose, scene=opt.scene)
        if opt.quiet:
            print(path)
    if opt.video is not None:
        path = make_video(opt.video, frames=opt.frames, fps=opt.fps, size=opt.video_size, seed=opt.seed,
                          classes=opt.classes, force=opt.force, verbose=verbose, scene=opt.scene)
        if opt.quiet:
            print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
