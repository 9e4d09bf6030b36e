"""Running YOLOv5's own scripts as a user would, and reading their results from what they print.

One implementation for the two places that do it: ``scripts/demo.py`` (the main job: train, val, export and
detect, each as a subprocess, streamed to the terminal) and the end-to-end tests (``tests/e2e_utils.py``,
output captured and checked). Standard library only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository root
BASE = ROOT / 'yolov5'

# A line of val.py's table: "all  <images> <instances> <P> <R> <mAP50> <mAP50-95>"
NUM = r'([0-9.]+(?:e[-+]?[0-9]+)?)'  # val.py prints %11.3g: small values come as e.g. 5.78e-05
ALL_ROW = re.compile(rf'^\s+all\s+(\d+)\s+(\d+)\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s*$', re.M)


class RunError(RuntimeError):
    """A script failed, or its output lacks what was to be read from it."""


def script_command(script, *args) -> list[str]:
    """The command line that runs ``yolov5/<script>`` with ``args`` under this interpreter; a ``script`` that starts
    with ``scripts/`` is one of this project's scripts, and an absolute path is used as it is."""
    script = str(script)
    path = ROOT / script if script.startswith('scripts/') else BASE / script
    return [sys.executable, str(path), *[str(a) for a in args]]


def run_command(cmd, *, cwd=ROOT, env=None, timeout=None, echo=False) -> subprocess.CompletedProcess:
    """Run ``cmd`` with stdout and stderr merged into one text (``.stdout`` of the result, decoded as UTF-8).

    ``echo``: also stream the output to this process's stdout as it comes (YOLOv5's progress bars included).
    ``env``: the environment (default: this one); ``PYTHONUNBUFFERED=1`` is always added so output arrives in
    order. ``timeout`` (seconds): the process is killed and :class:`subprocess.TimeoutExpired` raised, with the
    output so far. A non-zero exit status is returned, not raised.
    """
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED='1')
    chunks = []
    timed_out = threading.Event()
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as p:

        def kill():
            timed_out.set()
            p.kill()

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        try:
            while chunk := os.read(p.stdout.fileno(), 65536):
                chunks.append(chunk)
                if echo:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
            rc = p.wait()
        finally:
            if timer:
                timer.cancel()
    out = b''.join(chunks).decode('utf-8', 'replace')
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(cmd, timeout, output=out)
    return subprocess.CompletedProcess(cmd, rc, out)


def parse_map(output: str, where: str = 'val.py') -> dict:
    """The last "all" row of val.py's results table in ``output``: images, instances, P, R, mAP50, mAP50-95.

    Raises :class:`RunError` naming ``where`` (what printed ``output``) when there is no such row.
    """
    rows = ALL_ROW.findall(output)
    if not rows:
        raise RunError(f'no "all" row with mAP in the output of {where}')
    images, instances, p, r, map50, map5095 = rows[-1]
    return {'images': int(images), 'instances': int(instances), 'P': float(p), 'R': float(r),
            'mAP50': float(map50), 'mAP50-95': float(map5095)}
