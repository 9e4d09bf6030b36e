"""Helpers for end-to-end tests: run YOLOv5's scripts as a user would, with the network switched off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import BASE, ROOT


# Imported by every Python process the tests start (PYTHONPATH): any attempt to open a network connection
# is refused and written to a log, which the tests then require to be empty.
SITECUSTOMIZE = '''
import os, socket
_log = os.environ.get('NONET_LOG')

def _refuse(*args, **kwargs):
    if _log:
        with open(_log, 'a') as f:
            f.write(repr(args[:2]) + '\\n')
    raise OSError('network disabled by the test suite')

def _connect(self, address, *a, **k):
    if isinstance(address, tuple):  # AF_INET/AF_INET6; unix sockets stay allowed (multiprocessing)
        return _refuse(address)
    return _real_connect(self, address, *a, **k)

_real_connect = socket.socket.connect
socket.socket.connect = _connect
socket.socket.connect_ex = _connect
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
'''


def nonet_env(tmp: Path) -> dict:
    site = tmp / 'nonet'
    site.mkdir(exist_ok=True)
    (site / 'sitecustomize.py').write_text(SITECUSTOMIZE)
    log = tmp / 'network-attempts.log'
    log.touch()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
               NONET_LOG=str(log), PYTHONUNBUFFERED='1')
    env.pop('RANK', None)
    env.pop('LOCAL_RANK', None)
    return env


def network_attempts(env: dict) -> str:
    return Path(env['NONET_LOG']).read_text()


def run_yolo(script: str, *args, env: dict, cwd: Path = ROOT, timeout: int = 900, check: bool = True):
    """Run yolov5/<script> (or scripts/<script> when it starts with 'scripts/'); return (rc, output)."""
    path = ROOT / script if script.startswith('scripts/') else BASE / script
    r = subprocess.run([sys.executable, str(path), *[str(a) for a in args]], cwd=cwd, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f'{script} failed (exit {r.returncode}):\n{r.stdout[-4000:]}'
        assert network_attempts(env) == '', f'{script} tried to use the network:\n{network_attempts(env)}'
        for bad in ('Downloading', 'download failed', 'Traceback'):
            assert bad not in r.stdout, f'{script} printed {bad!r}:\n{r.stdout[-4000:]}'
    return r.returncode, r.stdout


def val_map(output: str) -> dict:
    """The final "all" row of val.py's table, parsed as the demo parses it (scripts/demo.py)."""
    from demo import parse_map  # noqa: PLC0415
    return parse_map(output, 'val.py')


def count_frames(path: Path):
    import cv2  # noqa: PLC0415
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f'cannot open {path}'
    fps, n = cap.get(cv2.CAP_PROP_FPS), 0
    while cap.grab():
        n += 1
    cap.release()
    return n, fps


def tree_state(root: Path) -> dict:
    """{relative path: (size, mtime_ns)} of every file under root: compare before and after a run to prove
    that nothing was written there (e.g. YOLOv5's label *.cache next to a read-only dataset)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(root).rglob('*')) if p.is_file()}
