"""``jitaudit demo``: sample data → ingest → verify → scan → report → dashboard, printing where
each output went."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jitaudit.cli.common import add_lake, add_quiet, progress


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run the whole pipeline on the bundled sample data",
        description="Ingest the bundled sample data (or freshly simulated data) into a lake, "
        "verify it, scan it with every detection, write the findings and the compliance "
        "reports, and print where each output went.",
    )
    add_lake(p)
    p.add_argument(
        "--sample-data",
        type=Path,
        default=Path("sample_data"),
        metavar="DIR",
        help="native-format logs to use; simulated when the directory is absent",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("jitaudit-out"),
        metavar="DIR",
        help="where the scan's findings are written (default: ./jitaudit-out)",
    )
    p.add_argument("--no-dashboard", action="store_true", help="stop before serving the dashboard")
    from jitaudit.cli.dashboard import add_serve_options

    add_serve_options(p)
    add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jitaudit.cli import UsageError
    from jitaudit.ingest import ingest
    from jitaudit.ingest.files import InputError
    from jitaudit.lake import Lake
    from jitaudit.output import render
    from jitaudit.scan import scan

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
    result = scan(lake, progress=progress(args))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, name in (
        ("json", "findings.json"),
        ("ocsf", "findings.ocsf.json"),
        ("csv", "findings.csv"),
    ):
        (out / name).write_text(render(result, fmt))
        written.append(out / name)
    from jitaudit.report import model
    from jitaudit.report import render as render_report

    audit = model.build(lake)
    for fmt, name in (("html", "report.html"), ("md", "report.md"), ("oscal", "report.oscal.json")):
        (out / name).write_bytes(render_report(audit, fmt))
        written.append(out / name)
    print(render(result, "table"))
    print(f"[demo] lake:     {lake.root} (manifest digest {lake.digest()[:16]})")
    for path in written:
        print(f"[demo] wrote:    {path.absolute()}")
    print(
        f"[demo] next: `jitaudit replay --lake {args.lake} --at 2026-11-02T14:30:00Z` shows "
        "the grants valid at an instant"
    )
    if args.no_dashboard or not check.ok:
        print(f"[demo] dashboard: `jitaudit dashboard --lake {args.lake}`")
        return 0 if check.ok else 1
    from jitaudit.cli.dashboard import serve

    return serve(args.lake, args.address, args.port, args.suppressions)
