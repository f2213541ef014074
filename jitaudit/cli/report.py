"""``jitaudit report --lake DIR --output FILE``: an audit report per control framework."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from jitaudit.cli.common import add_lake, add_quiet
from jitaudit.report import FORMATS

SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".json": "json", ".pdf": "pdf"}


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="write an audit report: control states per framework, findings, exposure",
        description="Scan the lake (without changing the last scan's state) and write one "
        "report: scope, executive summary, per framework each control as gap evidenced, no "
        "gap found or not assessable, findings with evidence lineage, standing-privilege "
        "exposure, log completeness, method and limits, and a reproducibility stamp.",
    )
    add_lake(p)
    p.add_argument("--output", type=Path, metavar="FILE", required=True, help="report file")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="html (self-contained, offline), md, json, oscal (OSCAL Assessment Results "
        "JSON) or pdf (needs jitaudit[report]); default: from the --output suffix, else html",
    )
    p.add_argument(
        "--framework",
        metavar="NAME",
        help="only this framework (a catalogue id, e.g. owasp-asi-2026, nist-sp800-53r5)",
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
        help="accepted findings, YAML (default: ./suppressions.yaml if present)",
    )
    add_quiet(p)
    p.set_defaults(func=run)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        fmt: str = args.format
        return fmt
    return SUFFIXES.get(args.output.suffix.lower(), "html")


def run(args: argparse.Namespace) -> int:
    import time

    from jitaudit import catalog, suppressions
    from jitaudit.cli import UsageError
    from jitaudit.cli.scan import _suppressions_path
    from jitaudit.detections import params, registry
    from jitaudit.lake import MANIFEST_DIR, Lake, LakeError
    from jitaudit.report import model, render
    from jitaudit.report.pdf import PdfUnavailable

    if not args.output.parent.is_dir():
        raise UsageError(f"--output {args.output}: no such directory {args.output.parent}")
    if args.config is not None and not args.config.is_file():
        raise UsageError(f"--config {args.config}: no such file")
    fmt = _format(args)
    started = time.monotonic()
    try:
        if args.framework:
            catalog.framework(args.framework)
        supp_path = _suppressions_path(args)
        params.load_config(args.config)
        suppressions.load(supp_path)
        lake = Lake(args.lake, create=False)
        if not (lake.root / MANIFEST_DIR).is_dir():
            raise UsageError(f"{lake.root} is not a jitaudit lake (run jitaudit ingest first)")
        report = model.build(
            lake,
            framework=args.framework,
            config_path=args.config,
            suppressions_path=supp_path,
        )
        data = render(report, fmt)
    except (
        catalog.CatalogError,
        registry.RegistryError,
        suppressions.SuppressionError,
        LakeError,
        PdfUnavailable,
    ) as exc:
        raise UsageError(str(exc)) from None
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(args.output)
    if not args.quiet:
        print(
            f"wrote {fmt} report to {args.output} ({len(report.findings)} finding(s), "
            f"{time.monotonic() - started:.1f} s)",
            file=sys.stderr,
        )
    return 0
