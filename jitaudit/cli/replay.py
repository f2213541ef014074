"""``jitaudit replay --lake DIR --at TS``: the grants valid at an instant, with TTL left."""

from __future__ import annotations

import argparse
import json
from typing import Any

from jitaudit.cli.common import add_lake


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="show the grants valid at an instant",
        description="Replay grant lifecycles (issue, renew, revoke, expire) and list the grants "
        "valid at TS with their agent, task, scope and remaining TTL. A grant whose expiry the "
        "source never recorded shows 'unknown': it may or may not still be valid.",
    )
    add_lake(p)
    p.add_argument(
        "--at",
        required=True,
        metavar="TS",
        help="the instant (ISO 8601, UTC unless an offset is given)",
    )
    p.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="output format (default: table)",
    )
    p.set_defaults(func=run)


def _json(grants: list[dict[str, Any]], at: Any) -> str:
    def iso(v: Any) -> Any:
        return v.isoformat() if hasattr(v, "isoformat") else v

    doc = {"at": at.isoformat(), "grants": [{k: iso(v) for k, v in g.items()} for g in grants]}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    import duckdb

    from jitaudit import replay
    from jitaudit.cli import UsageError
    from jitaudit.cli.scan import parse_timestamp
    from jitaudit.lake import Lake, LakeError
    from jitaudit.output.table import grants_table

    at = parse_timestamp(args.at, "--at")
    try:
        lake = Lake(args.lake, create=False)
    except LakeError as exc:
        raise UsageError(str(exc)) from None
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        lake.connect(con)
        replay.register(con)
        grants = replay.as_of(con, at)
    finally:
        con.close()
    if args.format == "json":
        print(_json(grants, at))
    else:
        print(grants_table(grants, at), end="")
    return 0
