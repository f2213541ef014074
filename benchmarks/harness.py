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


def run_child(code: str, args: Sequence[str] = ()) -> tuple[float, float, str]:
    """Run ``python -c code`` in a child process: (seconds, peak RSS in MiB, stdout).

    The peak is that child's own (``wait4`` returns the rusage of exactly that process), not
    the maximum over every child this process ever waited for.
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=out, stderr=err, text=True
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 1024.0, stdout
