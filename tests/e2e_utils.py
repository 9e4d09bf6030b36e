"""Helpers for end-to-end tests: run YOLOv5's scripts as a user would, with the network switched off.

Scripts are run and val.py's results parsed by extensions/runs.py, as scripts/demo.py does; this adds the
checks a test wants (exit status, no network attempt, no download, no traceback).
"""

from __future__ import annotations

import os
from pathlib import Path

from conftest import ROOT

from extensions.datasets.shapes import video_info
from extensions.runs import parse_map, run_command, script_command

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


def with_pythonpath(*paths, env=None) -> dict:
    """A copy of ``env`` (default: this process's environment) with ``paths`` put first on PYTHONPATH: how a
    subprocess gets import paths (pytest.ini's ``pythonpath`` only applies to the test process itself)."""
    env = dict(os.environ if env is None else env)
    env['PYTHONPATH'] = os.pathsep.join([*map(str, paths), *filter(None, [env.get('PYTHONPATH')])])
    return env


def nonet_env(tmp: Path) -> dict:
    site = tmp / 'nonet'
    site.mkdir(exist_ok=True)
    (site / 'sitecustomize.py').write_text(SITECUSTOMIZE)
    log = tmp / 'network-attempts.log'
    log.touch()
    env = dict(with_pythonpath(site), NONET_LOG=str(log), PYTHONUNBUFFERED='1')
    env.pop('RANK', None)
    env.pop('LOCAL_RANK', None)
    return env


def network_attempts(env: dict) -> str:
    return Path(env['NONET_LOG']).read_text()


def run_yolo(script: str, *args, env: dict, cwd: Path = ROOT, timeout: int = 900, check: bool = True):
    """Run yolov5/<script> (or scripts/<script> when it starts with 'scripts/'); return (rc, output)."""
    r = run_command(script_command(script, *args), cwd=cwd, env=env, timeout=timeout)
    if check:
        assert r.returncode == 0, f'{script} failed (exit {r.returncode}):\n{r.stdout[-4000:]}'
        assert network_attempts(env) == '', f'{script} tried to use the network:\n{network_attempts(env)}'
        for bad in ('Downloading', 'download failed', 'Traceback'):
            assert bad not in r.stdout, f'{script} printed {bad!r}:\n{r.stdout[-4000:]}'
    return r.returncode, r.stdout


def val_map(output: str) -> dict:
    """The final "all" row of val.py's table, parsed as the demo parses it (extensions.runs.parse_map)."""
    return parse_map(output, 'val.py')


def count_frames(path: Path):
    """(frames decoded, fps) of a video."""
    info = video_info(path)
    return info['frames'], info['fps']


def tree_state(root: Path) -> dict:
    """{relative path: (size, mtime_ns)} of every file under root: compare before and after a run to prove
    that nothing was written there (e.g. YOLOv5's label *.cache next to a read-only dataset)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(root).rglob('*')) if p.is_file()}
