"""Facts about the machine a measurement runs on: CPU model and flags, load, /proc readers, the CPU use of other
processes (and a guard that waits for them to calm down), and this process's resident set.

Standard library and psutil only, importing nothing of the overlay: the benchmark (extensions.benchmark) and the
deployment measurements (extensions.deploy) both build on it."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import psutil


def loadavg():
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return None


def proc_field(path: str, key: str) -> str | None:
    """The value of the first 'key: value' line of a /proc file (Linux), or None."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return proc_field('/proc/cpuinfo', 'model name') or platform.processor() or platform.machine()


# the CPU flags that decide the runtimes' kernels and OpenVINO's default precision (bf16 where the CPU has it)
CPU_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16', 'amx_int8',
             'avx512_fp16')


def cpu_flag_list() -> list[str]:
    flags = set((proc_field('/proc/cpuinfo', 'flags') or '').split())
    return [f for f in CPU_FLAGS if f in flags]


def cpu_flags() -> str:
    return ', '.join(cpu_flag_list())


class CpuWatch:
    """Cores used by OTHER processes over an interval: system-wide busy CPU time (steal time of the hypervisor
    included) minus this process's own (and its waited-for children's), per second of wall time. 0 on an idle
    machine; 1.0 = one core taken."""

    def __init__(self):
        self.proc = psutil.Process()
        self.t0, self.sys0, self.own0 = time.time(), self._busy(), self._own()

    @staticmethod
    def _busy():
        t = psutil.cpu_times()
        return sum(getattr(t, k, 0.0) for k in ('user', 'nice', 'system', 'irq', 'softirq', 'steal'))

    def _own(self):
        t = self.proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def others(self) -> float:
        wall = time.time() - self.t0
        return max(0.0, ((self._busy() - self.sys0) - (self._own() - self.own0)) / wall) if wall > 0 else 0.0


class Quiet:
    """Guards CPU timings against other processes: a measurement during which they used more than max_other
    cores (see CpuWatch) is discarded, and the next one waits until the machine is quiet again, within a total
    waiting budget for the whole run; once that is spent, busy measurements are kept (and counted)."""

    def __init__(self, max_other: float, budget_min: float, pbar=None):
        self.max_other, self.budget, self.waited, self.pbar = max_other, 60 * budget_min, 0.0, pbar

    @property
    def active(self) -> bool:
        return self.max_other > 0

    def watch(self):
        return CpuWatch() if self.active else None

    def busy(self, watch) -> bool:
        return watch is not None and watch.others() > self.max_other

    def can_wait(self) -> bool:
        return self.waited < self.budget

    def wait(self) -> None:
        """Sleep in 2 s windows until other processes use at most max_other cores (or the budget is spent)."""
        if self.pbar is not None:
            self.pbar.set_postfix_str('other processes busy: waiting')
        try:
            while self.can_wait():
                w = CpuWatch()
                time.sleep(2.0)
                self.waited += 2.0
                if w.others() <= self.max_other:
                    return
        finally:
            if self.pbar is not None:
                self.pbar.set_postfix_str('')


def wait_idle(max_minutes: float, threshold: float = 0.5, on_wait=None) -> tuple | None:
    """Wait (up to max_minutes) until the 1-minute load average drops below threshold; on_wait(load) is called
    before each 30 s sleep (a script says so). Returns the load average at the end."""
    t_end = time.time() + 60 * max_minutes
    la = loadavg()
    while la and la[0] >= threshold and time.time() < t_end:
        if on_wait is not None:
            on_wait(la)
        time.sleep(30)
        la = loadavg()
    return la


def rss_bytes() -> int:
    return psutil.Process().memory_info().rss


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (VmHWM) to the current RSS (Linux)."""
    try:
        Path('/proc/self/clear_refs').write_text('5')
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    hwm = proc_field('/proc/self/status', 'VmHWM:')  # e.g. '123456 kB'
    if hwm:
        return int(hwm.split()[0]) * 1024
    import resource  # noqa: PLC0415  (Unix only; the fallback where /proc does not answer)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
