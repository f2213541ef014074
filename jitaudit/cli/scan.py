"""``jitaudit scan --lake DIR``: run the detections (incrementally), print or write findings."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jitaudit.cli.common import add_lake, add_quiet, progress
from jitaudit.output import FORMATS

#: ARCHITECTURE §5 severities, lowest first (kept here too so that --help imports no pyarrow)
SEVERITY_CHOICES = ("info", "low", "medium", "high", "critical")
DEFAULT_SUPPRESSIONS = Path("suppressions.yaml")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "scan",
        help="run the detections over the lake and report findings",
        description="Replay the lake and run the detections. Incremental by default: only what "
        "the data committed since the last scan can change is re-evaluated, over those "
        "subjects' whole history, so late data is handled and the result equals a full scan. "
        "Exit 0 when no new or open finding is at or above --fail-on, 1 when one is, "
        "2 on a usage or input error.",
    )
    add_lake(p)
    p.add_argument(
        "--since",
        metavar="TS",
        help="only report findings whose last evidence is at or after TS (ISO 8601, UTC "
        "unless an offset is given)",
    )
    p.add_argument(
        "--detections",
        metavar="ID,...",
        help="run only these detections (default: all), e.g. JIT-001,JIT-004",
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="detection parameters (default: ./jitaudit.toml if present)",
    )
    p.add_argument(
        "--suppressions",
        type=Path,
        metavar="FILE",
        help=f"accepted findings, YAML (default: ./{DEFAULT_SUPPRESSIONS} if present)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="output format (default: table); ocsf is a JSON array of OCSF Detection Findings",
    )
    p.add_argument("--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument(
        "--fail-on",
        choices=SEVERITY_CHOICES,
        metavar="SEVERITY",
        help="exit 1 when a new or open finding is at or above SEVERITY "
        f"({', '.join(SEVERITY_CHOICES)})",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="re-evaluate everything, ignoring the previous scan's watermark",
    )
    add_quiet(p)
    p.set_defaults(func=run)


def parse_timestamp(text: str, option: str) -> datetime:
    """A naive UTC datetime from ISO 8601 text (``Z`` or an offset converted; none = UTC)."""
    from jitaudit.cli import UsageError

    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not an ISO 8601 timestamp (e.g. 2026-11-02T14:00:00Z)"
        ) from None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def _suppressions_path(args: argparse.Namespace) -> Path | None:
    from jitaudit.cli import UsageError

    if args.suppressions is None:
        return DEFAULT_SUPPRESSIONS if DEFAULT_SUPPRESSIONS.is_file() else None
    if not args.suppressions.is_file():
        raise UsageError(f"--suppressions {args.suppressions}: no such file")
    path: Path = args.suppressions
    return path


def _write(text: str, output: Path | None) -> None:
    """To stdout, or atomically to ``output`` so a scheduled job never ships half a file."""
    if output is None:
        sys.stdout.write(text)
        return
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)


def run(args: argparse.Namespace) -> int:
    from jitaudit import suppressions
    from jitaudit.cli import UsageError
    from jitaudit.detections import params, registry
    from jitaudit.lake import MANIFEST_DIR, Lake, LakeError
    from jitaudit.output import render
    from jitaudit.output.table import describe_suppression
    from jitaudit.scan import scan

    since = parse_timestamp(args.since, "--since") if args.since else None
    if args.config is not None and not args.config.is_file():
        raise UsageError(f"--config {args.config}: no such file")
    if args.output is not None and not args.output.parent.is_dir():
        raise UsageError(f"--output {args.output}: no such directory {args.output.parent}")
    supp_path = _suppressions_path(args)
    try:
        # cheap checks first: a typo costs no scan
        config = params.load_config(args.config)
        for det in registry.select(args.detections):
            params.resolve(det, config)
        suppressions.load(supp_path)
        lake = Lake(args.lake, create=False)
        if not (lake.root / MANIFEST_DIR).is_dir():
            raise UsageError(f"{lake.root} is not a jitaudit lake (run jitaudit ingest first)")
        result = scan(
            lake,
            detections=args.detections,
            config_path=args.config,
            suppressions_path=supp_path,
            since=since,
            full=args.full,
            progress=progress(args),
        )
    except (registry.RegistryError, suppressions.SuppressionError, LakeError) as exc:
        raise UsageError(str(exc)) from None

    for s in result.expired_suppressions:
        print(
            f"jitaudit scan: warning: expired suppression no longer suppresses: "
            f"{describe_suppression(s.to_json())}",
            file=sys.stderr,
        )
    width = None
    if args.output is None and sys.stdout.isatty():
        import shutil

        width = shutil.get_terminal_size().columns
    _write(render(result, args.format, width=width), args.output)
    if args.output is not None and not args.quiet:
        print(f"wrote {len(result.findings)} finding(s) to {args.output}", file=sys.stderr)
    failing = result.at_or_above(args.fail_on) if args.fail_on else []
    if failing and not args.quiet:
        print(
            f"jitaudit scan: {len(failing)} new or open finding(s) at or above {args.fail_on}",
            file=sys.stderr,
        )
    return 1 if failing else 0
