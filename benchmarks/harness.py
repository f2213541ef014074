"""Shared benchmark machinery: results with targets, timing, peak memory of a child process."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


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

    A child of its own gives a clean peak-memory figure (ru_maxrss of the waited child).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all waited children: report it only when it grew
    return seconds, max(peak, before) / 1024.0, proc.stdout
