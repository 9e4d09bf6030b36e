"""``export.py`` fails when a requested format did not export (patches/0013).

Upstream's ``try_export`` logs "export failure" and carries on, so ``export.py`` exits 0 and ``export.run()``
returns a shorter list when a format failed: scripts and CI never notice. With the patch, ``try_export`` still
logs each failure and carries on with the other formats (those that export are kept), records it here, and
``run()`` then raises :class:`ExportFailed`, an ordinary exception that callers such as upstream
``benchmarks.py`` catch per format. The command line turns it into one error line and exit status 1.

Standard library only: ``export.py`` imports this module at start-up.
"""

from __future__ import annotations

import contextlib

MAX_CAUSE = 400  # characters of each cause in the one-line summary; the full message is in the log above it

_failed: list[tuple[str, BaseException]] = []


class ExportFailed(RuntimeError):
    """One or more requested formats did not export. ``failed``: [(format, exception)]; ``exported``: files."""

    def __init__(self, weights, failed, exported):
        self.weights, self.failed, self.exported = weights, list(failed), list(exported)
        causes = '; '.join(f'{fmt} ({_one_line(e)})' for fmt, e in self.failed)
        kept = ', '.join(self.exported) if self.exported else 'nothing'
        super().__init__(f'export of {weights} failed for {len(self.failed)} format(s): {causes}. Exported: {kept}')


def _one_line(e: BaseException) -> str:
    text = ' '.join(str(e).split()) or '(no message)'
    if len(text) > MAX_CAUSE:
        text = text[:MAX_CAUSE - 3] + '...'
    return f'{type(e).__name__}: {text}'


def format_name(func_name: str) -> str:
    """The --include name of an ``export_<name>`` function (export_openvino -> openvino)."""
    return func_name.removeprefix('export_')


def begin() -> None:
    """Called at the start of ``export.run()``: forget failures of an earlier call in this process."""
    _failed.clear()


def record(func_name: str, error: BaseException) -> None:
    """Called by ``try_export`` for an exception it caught (it still logs it and returns no file)."""
    _failed.append((format_name(func_name), error))


def check(weights, exported) -> None:
    """Called by ``export.run()`` once every requested format was tried: raise :class:`ExportFailed` if any failed."""
    if _failed:
        failed = list(_failed)
        _failed.clear()
        raise ExportFailed(weights, failed, [str(f) for f in exported])


@contextlib.contextmanager
def exit_on_failure():
    """``export.py``'s ``__main__``: a failed format prints one ``ERROR:`` line (no traceback) and exits 1."""
    try:
        yield
    except ExportFailed as e:
        raise SystemExit(f'ERROR: {e}') from None
