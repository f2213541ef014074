"""Replay the grant, task, decision and use streams: validity intervals, task windows,
delegation edges, each use joined to the grant valid at its instant, and as-of state."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import duckdb

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)
#: a view marked so streams over the uses: it is never materialised
_STREAMING = "-- materialise: no"


@cache
def statements() -> tuple[tuple[str, str], ...]:
    """(view name, CREATE VIEW statement) in dependency order, from ``views.sql``."""
    text = resources.files("jitaudit.replay").joinpath("views.sql").read_text()
    parts = _NAME.split(text)[1:]
    return tuple((parts[i], parts[i + 1].strip().rstrip(";")) for i in range(0, len(parts), 2))


def register(
    con: duckdb.DuckDBPyConnection,
    *,
    materialise: bool = False,
    only: tuple[str, ...] | None = None,
    temp: bool = True,
) -> None:
    """Create the replay views on a connection that already has the lake's table views.

    With ``materialise`` each relation of grants, tasks and the small per-combination checks is
    computed once into a temp table instead: a scan runs sixteen detections over them. The
    views over every use (marked ``-- materialise: no``) stay views: materialising millions of
    wide rows costs more than streaming them once per detection. With ``only``, just those
    are created, with the replay relations they read. ``temp=False`` materialises into
    tables of the database rather than of the connection (every cursor can read them).
    """
    wanted = None if only is None else with_dependencies(only)
    for name, sql in statements():
        if wanted is not None and name not in wanted:
            continue
        kinds = con.execute(
            "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = ? "
            "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = ?",
            [name, name],
        ).fetchall()
        for (kind,) in kinds:
            con.execute(f"DROP {kind} IF EXISTS {name}")
        if materialise and _STREAMING not in sql:
            table = "TEMP TABLE" if temp else "TABLE"
            sql = sql.replace(
                f"CREATE OR REPLACE VIEW {name} AS", f"CREATE OR REPLACE {table} {name} AS", 1
            )
        con.execute(sql)


def with_dependencies(names: tuple[str, ...]) -> set[str]:
    """``names`` and every replay relation they read, directly or not."""
    views = dict(statements())
    out: set[str] = set()
    todo = [n for n in names if n in views]
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo += [r for r in _reads(views[name]) if r in views and r != name]
    return out


def _reads(statement: str) -> set[str]:
    """The relations a CREATE VIEW statement reads (names in comments are none)."""
    body = re.split(r"\bVIEW\s+\w+\s+AS\s", statement, maxsplit=1)[1]
    return set(RELATION.findall(re.sub(r"--[^\n]*", "", body)))


RELATION = re.compile(
    r"\b(replay_\w+|uses|grants|grant_events|decisions|tasks|span_links|redeliveries)\b"
)


@cache
def base_tables(relation: str) -> frozenset[str]:
    """The canonical tables a replay relation (or a canonical table itself) is computed from."""
    views = dict(statements())
    if relation not in views:
        return frozenset({relation})
    out: set[str] = set()
    for name in _reads(views[relation]) - {relation}:
        out |= base_tables(name)
    return frozenset(out)


AS_OF_SQL = """
SELECT grant_id, credential_id, source, agent_id, principal_id, task_id, scope, targets,
       issued_at, expires_at, renewals, revoked_at,
       CASE WHEN valid_until IS NULL THEN NULL
            ELSE date_diff('second', CAST(? AS TIMESTAMP), valid_until) END AS remaining_seconds
FROM replay_grants
WHERE issued_at <= CAST(? AS TIMESTAMP)
  AND (valid_until IS NULL OR valid_until > CAST(? AS TIMESTAMP))
ORDER BY issued_at, grant_id
"""


def as_of(con: duckdb.DuckDBPyConnection, at: datetime) -> list[dict[str, Any]]:
    """Grants valid at ``at``: scope, task and remaining TTL (None when expiry is unknown).

    A grant whose expiry the source never recorded and that was never revoked is listed with
    ``remaining_seconds`` None: it may or may not still be valid (unverifiable).
    """
    cur = con.execute(AS_OF_SQL, [at, at, at])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
