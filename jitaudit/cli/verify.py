"""``jitaudit verify --lake DIR``: recompute hashes; report missing, modified, unlisted files."""

from __future__ import annotations

import argparse
from typing import Any

from jitaudit.cli.common import add_lake


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="check the lake's files against its manifest",
        description="Recompute the SHA-256 of every committed file and report files that are "
        "missing, modified, or present but listed in no commit. Exit 1 when any.",
    )
    add_lake(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jitaudit.cli import UsageError
    from jitaudit.lake import Lake, LakeError

    try:
        report = Lake(args.lake, create=False).verify()
    except LakeError as exc:
        raise UsageError(str(exc)) from None
    for label, paths in (
        ("missing", report.missing),
        ("modified", report.modified),
        ("unlisted", report.unlisted),
    ):
        for path in paths:
            print(f"{label:<9} {path}")
    print(
        f"checked {report.checked} files: {len(report.missing)} missing, "
        f"{len(report.modified)} modified, {len(report.unlisted)} unlisted"
    )
    return 0 if report.ok else 1
