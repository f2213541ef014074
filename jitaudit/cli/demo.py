"""``jitaudit demo``: sample data → ingest → verify (→ scan → report → dashboard as they land)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from jitaudit.cli.common import add_lake, add_quiet, progress


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run the whole pipeline on the bundled sample data",
        description="Ingest the bundled sample data (or freshly simulated data) into a lake, "
        "verify it, and print where each output went.",
    )
    add_lake(p)
    p.add_argument(
        "--sample-data",
        type=Path,
        default=Path("sample_data"),
        metavar="DIR",
        help="native-format logs to use; simulated when the directory is absent",
    )
    p.add_argument("--no-dashboard", action="store_true", help="stop before serving the dashboard")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jitaudit.cli import UsageError
    from jitaudit.ingest import ingest
    from jitaudit.ingest.files import InputError
    from jitaudit.lake import Lake

    data: Path = args.sample_data
    if not data.exists():
        from jitaudit.simulate import generate

        print(f"[demo] simulating sample data into {data}")
        generate(data)
    logs = [p for p in sorted(data.iterdir()) if p.is_dir()]
    if not logs:
        raise UsageError(f"{data} holds no log directories")
    lake = Lake(args.lake)
    print(f"[demo] ingesting {', '.join(p.name for p in logs)} from {data} into {lake.root}")
    try:
        report = ingest(logs, lake, progress=progress(args))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    print(report.render())
    check = lake.verify()
    print(
        f"[demo] lake verified: {check.checked} files, "
        f"{'intact' if check.ok else 'PROBLEMS — run jitaudit verify'}"
    )
    print(f"[demo] lake: {lake.root}  (manifest digest {lake.digest()[:16]})")
    print(
        "[demo] next: the detections, reports and dashboard arrive with their issues",
        file=sys.stderr,
    )
    return 0 if check.ok else 1
