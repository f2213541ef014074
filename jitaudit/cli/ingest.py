"""``jitaudit ingest PATH... --lake DIR [--format auto|NAME]``"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from jitaudit.cli.common import add_lake, add_quiet, progress


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "ingest",
        help="normalise native logs into the lake",
        description="Ingest native log files, globs or directories (plain or gzip) into the lake. "
        "The format is detected from content; records that cannot be normalised are "
        "quarantined with a reason; re-ingesting a file adds nothing.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_lake(p)
    p.add_argument(
        "--format",
        default="auto",
        metavar="auto|NAME",
        help="force a format instead of detecting it",
    )
    p.add_argument(
        "--mapping",
        type=Path,
        metavar="FILE",
        help="YAML mapping for a custom JSON-lines or CSV log",
    )
    p.add_argument(
        "--enrich",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="enrichment file (e.g. Vault role TTLs, policy files); repeatable",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jitaudit.cli import UsageError
    from jitaudit.ingest import ingest
    from jitaudit.ingest.files import InputError
    from jitaudit.lake import Lake, LakeError

    options: dict[str, Any] = {}
    fmt = args.format
    try:
        if args.mapping is not None:
            from jitaudit.ingest.custom import load_mapping

            # validated before any data is read: a bad mapping costs nothing
            options["mapping"] = load_mapping(args.mapping)
            fmt = "custom"
        lake = Lake(args.lake)
        report = ingest(
            args.paths, lake, fmt, options=options, enrichment=args.enrich, progress=progress(args)
        )
    except (InputError, LakeError) as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({k: v.to_json() for k, v in report.sources.items()}, indent=2))
    else:
        print(report.render())
    if report.unrecognised:
        # the others are in the lake; these wait for --format (re-ingesting adds nothing)
        n = len(report.unrecognised)
        raise UsageError(
            f"{n} file{'s' if n > 1 else ''} not ingested, the rest were: "
            + "; ".join(report.unrecognised)
        )
    return 0
