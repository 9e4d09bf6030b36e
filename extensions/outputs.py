"""Writing outputs without ever losing an input or another run's work.

* :func:`check_output`: before any work, refuse an output path that would overwrite one of the tool's own
  inputs, an existing file (unless the caller allows it), or a directory.
* :func:`save_atomic`: ``torch.save`` to a temporary file beside the target, then rename it into place, so the
  target is always either the previous complete file or the new one; the file gets the permissions a plain
  ``torch.save`` would give it (the umask's, or those of the file it replaces).
* :func:`lock_run_dir`: a run directory held by one live process at a time (a lock file with its PID), so two
  trainings started into the same ``--project/--name`` cannot interleave one ``results.csv``.

Standard library only at import time (torch is imported by :func:`save_atomic` itself).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ['OutputPathError', 'RunDirBusyError', 'check_output', 'save_atomic', 'write_atomic', 'lock_run_dir']

LOCK_NAME = '.train.lock'


class OutputPathError(ValueError):
    """An output path that would overwrite an input, an existing file or a directory."""


class RunDirBusyError(RuntimeError):
    """A run directory that another live process is writing to."""


def check_output(out, inputs: Iterable = (), exist_ok: bool = False) -> Path:
    """The output path ``out``, checked before any work is done; raises :class:`OutputPathError` naming it.

    Refused: ``out`` equal to (or a link to) one of ``inputs``, always; a directory, always; an existing file
    unless ``exist_ok``. The parent directory must exist or be creatable (it is not created here).
    """
    out = Path(out)
    for i in inputs:
        if i is None or str(i) == '':
            continue
        i = Path(i)
        if out.resolve() == i.resolve() or (out.exists() and i.exists() and os.path.samefile(out, i)):
            raise OutputPathError(f'output {out} is the input {i}: writing it would destroy the input. '
                                  f'Fix: give another output path')
    if out.is_dir():
        raise OutputPathError(f'output {out} is a directory. Fix: give a file path, e.g. {out / "start.pt"}')
    if out.exists() and not exist_ok:
        raise OutputPathError(f'output {out} exists. Fix: give another path, or pass --exist-ok to replace it')
    parent = out.resolve().parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise OutputPathError(f'output {out}: {existing} is a file, not a directory. Fix: give another output path')
    return out


def _mode_for(target: Path) -> int:
    """The permission bits a plain ``open(target, 'wb')`` would leave: the existing file's, else the umask's."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write_atomic(target, write) -> None:
    """Call ``write(fh)`` on a temporary file beside ``target``, then rename it over ``target``.

    On any error (or interruption) the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f'.{target.name}.', suffix='.tmp', dir=target.parent)
    try:
        with os.fdopen(fd, 'wb') as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(target))  # mkstemp makes 0600; a checkpoint is read by others as torch.save's is
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(obj, path) -> None:
    """``torch.save(obj, path)`` that never leaves a half-written file and keeps the umask's permissions."""
    import torch

    write_atomic(path, lambda fh: torch.save(obj, fh))


# ------------------------------------------------------------------------------------------ run directory lock
_held: dict[str, int] = {}  # run dir -> fd of its lock file, for the life of this process


def lock_run_dir(run_dir) -> Path:
    """Create ``run_dir`` if needed and hold its lock file (``.train.lock``, the PID inside) until this process exits.

    Raises :class:`RunDirBusyError` naming the directory and the holder's PID when another live process holds it.
    The lock is an ``flock`` on the file, released by the operating system when the holder exits however it
    exits, so a killed run never leaves a stale lock; the PID in the file is for the message. Taking a lock
    this process already holds is a no-op. Where ``fcntl`` does not exist (Windows) runs are not locked.
    """
    run_dir = Path(run_dir)
    key = str(run_dir.resolve())
    if key in _held:
        return run_dir
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK_NAME
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors='replace').strip() or '?'
        os.close(fd)
        raise RunDirBusyError(
            f'run directory {run_dir} is in use by another training (PID {holder}, lock file {lock}). Fix: wait '
            f'for it to finish, or train into another directory (--name, or drop '
            f'--exist-ok so a new exp directory is made)') from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _held[key] = fd
    return run_dir
