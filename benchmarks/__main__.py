"""``python -m benchmarks [NAME...]``: run every benchmark module (or the named ones)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import tempfile
from pathlib import Path

import benchmarks
from benchmarks.harness import Result


def main(argv: list[str]) -> int:
    names = [
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    ]
    wanted = [n for n in names if not argv or any(a in n for a in argv)]
    results: list[Result] = []
    for name in sorted(wanted):
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}: {(module.__doc__ or '').strip().splitlines()[0]}", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"jitaudit-{name}-") as tmp:
            for r in module.run(Path(tmp)):
                print(r.line(), flush=True)
                results.append(r)
    misses = [r for r in results if r.ok is False]
    print(f"\n{len(results)} figures, {len(misses)} below target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
