"""Shared benchmark machinery: results with targets, timing, peak memory of a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: JITAUDIT_BENCH_SCALE scales the ingest benchmarks' input (e.g. 0.2 for quick iteration at
#: 200,000 records instead of 1,000,000); the figures of record are taken at 1
SCALE = float(os.environ.get("JITAUDIT_BENCH_SCALE", "1"))


def scaled(n: int) -> int:
    """``n`` records at the benchmark scale (at least 1)."""
    return max(1, round(n * SCALE))


@dataclass(frozen=True)
class Result:
    """One measured figure and the target it is held to (None when there is none)."""

    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None

    def line(self) -> str:
        verdict = "" if self.ok is None else ("  PASS" if self.ok else "  MISS")
        target = f"  (target {self.target})" if self.target else ""
        return f"{self.name:<58}{self.value:>14,.2f} {self.unit:<10}{target}{verdict}"


def timed(fn: Callable[[], T], repeat: int = 1) -> tuple[float, T]:
    """Best wall time of ``repeat`` runs of ``fn`` and the last result."""
    best = float("inf")
    out: T
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


#: runs a child's code and, at exit, writes the child's own peak RSS (VmHWM, kB) to a file.
#: ``wait4``'s ``ru_maxrss`` cannot be used: Linux carries the high-water mark of the memory
#: map an ``exec`` replaces into it, and a vfork()ed child execs from its parent's map, so the
#: child would report the benchmark process's own peak.
_WRAPPER = """
import atexit, os, sys
def _peak():
    with open("/proc/self/status") as fh:
        kb = next((ln.split()[1] for ln in fh if ln.startswith("VmHWM:")), "")
    with open(os.environ["JITAUDIT_BENCH_PEAK_FILE"], "w") as out:
        out.write(kb)
atexit.register(_peak)
_code, sys.argv = sys.argv[1], ["-c", *sys.argv[2:]]
exec(compile(_code, "<string>", "exec"), {"__name__": "__main__"})
"""


def run_child(code: str, args: Sequence[str] = ()) -> tuple[float, float, str]:
    """Run ``python -c code`` in a child process: (seconds, peak RSS in MiB, stdout).

    The peak is that child's own: the high-water mark of its memory map, which the child reads
    from ``/proc/self/status`` as it exits (see :data:`_WRAPPER`); where that is unavailable,
    ``wait4``'s ``ru_maxrss``, which may include the parent's peak.
    """
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r", suffix=".peak") as peak_file,
    ):
        env = {**os.environ, "JITAUDIT_BENCH_PEAK_FILE": peak_file.name}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRAPPER, code, *args],
            stdout=out,
            stderr=err,
            text=True,
            env=env,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        hwm = peak_file.read().strip()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{stderr[-2000:]}")
    peak = int(hwm) / 1024.0 if hwm else usage.ru_maxrss / 1024.0
    return seconds, peak, stdout
