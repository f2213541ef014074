"""``jitaudit sample --out DIR [--seed N] [--scale N]``: native-format logs with ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jitaudit.cli.common import add_quiet, progress


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "sample",
        help="write a simulated organisation's logs with expected findings",
        description="Write three days of a multi-agent organisation's Vault, CloudTrail, GCP, "
        "Kubernetes, OPA, Envoy and OpenTelemetry logs in their native formats, with one "
        "injected case per detection (expected_findings.csv) and the canonical row counts a "
        "correct ingest yields (expected_counts.json). Output is byte-identical per seed.",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument("--seed", type=int, default=7, metavar="N", help="random seed (default: 7)")
    p.add_argument(
        "--scale",
        type=int,
        default=None,
        metavar="N",
        help="approximate number of log records (default: 6000)",
    )
    add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jitaudit.cli import UsageError
    from jitaudit.simulate import DEFAULT_SCALE, generate

    scale = DEFAULT_SCALE if args.scale is None else args.scale
    if scale < 1:
        raise UsageError("--scale must be a positive number of records")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is not a directory")
    counts = generate(args.out, seed=args.seed, scale=scale, progress=progress(args))
    total = {table: sum(by_source.values()) for table, by_source in counts.items()}
    summary = ", ".join(f"{table} {n}" for table, n in total.items())
    print(f"wrote sample data to {args.out} (expected rows: {summary})")
    return 0
