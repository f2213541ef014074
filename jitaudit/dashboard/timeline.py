"""One agent's, task's or credential's history: grants, renewals, task windows, uses,
decisions, delegations and findings, as intervals and points on a time axis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from jitaudit.detections.runner import Finding

KINDS = ("agent", "task", "credential")
#: at most this many uses are drawn (the most recent); the total is reported beside them
USE_LIMIT = 2000
ROW_LIMIT = 500

#: a use's scope verdict against the grant its credential held at that instant, by the same
#: rule as replay_scope_item_checks (globs over action or action:resource)
_USES_SQL = """
WITH g AS (
  SELECT credential_id, grant_id, issued_at, scope FROM replay_grants
  WHERE credential_id IN (SELECT UNNEST(CAST(? AS VARCHAR[])))
),
u AS (
  SELECT source, event_id, event_time, credential_id, action, resource, outcome, request_id
  FROM uses WHERE {where}
),
j AS (
  SELECT u.*, g.grant_id, g.scope FROM u LEFT JOIN g ON g.credential_id = u.credential_id
  QUALIFY row_number() OVER (
    PARTITION BY u.source, u.event_id
    ORDER BY CASE WHEN g.issued_at <= u.event_time + INTERVAL 5 SECOND THEN 0 ELSE 1 END,
             CASE WHEN g.issued_at <= u.event_time + INTERVAL 5 SECOND THEN g.issued_at END DESC,
             g.issued_at) = 1
)
SELECT event_time, credential_id, action, resource, outcome, request_id, count(*) OVER () AS n,
       CASE WHEN outcome = 'denied' THEN 'denied'
            WHEN scope IS NULL THEN 'unverifiable'
            WHEN list_bool_or(list_transform(scope, lambda s: like_escape(action, p(s), '\\')
                   OR like_escape(concat(action, ':', coalesce(resource, '')), p(s), '\\')))
            THEN 'in scope' ELSE 'drift' END AS verdict
FROM j ORDER BY event_time DESC LIMIT {limit}
"""
_PATTERN_MACRO = (
    "CREATE OR REPLACE TEMP MACRO p(s) AS replace(replace(replace(replace(s, '\\', '\\\\'), "
    "'%', '\\%'), '_', '\\_'), '*', '%')"
)


@dataclass(frozen=True)
class Timeline:
    kind: str
    key: str
    #: {lane, kind, start, end, label}: grants (issue → validity end), task windows, delegations
    intervals: tuple[dict[str, Any], ...]
    #: {lane, kind, time, category, label}: renewals, uses, decisions, findings
    points: tuple[dict[str, Any], ...]
    uses_total: int
    uses_shown: int

    @property
    def empty(self) -> bool:
        return not self.intervals and not self.points


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def timeline_keys(con: duckdb.DuckDBPyConnection, kind: str, limit: int = 200) -> list[str]:
    """Ids to offer for ``kind``: those with the most grants first."""
    col = {"agent": "agent_id", "task": "task_id", "credential": "credential_id"}[kind]
    cur = con.cursor()
    try:
        rows = cur.execute(
            f"SELECT {col} FROM replay_grants WHERE {col} IS NOT NULL "
            f"GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT {int(limit)}"
        ).fetchall()
    finally:
        cur.close()
    return [str(r[0]) for r in rows]


def timeline(
    con: duckdb.DuckDBPyConnection, kind: str, key: str, found: Sequence[Finding] = ()
) -> Timeline:
    """The history of one agent, task or credential (``kind``), newest uses first."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    col = f"{kind}_id"
    cur = con.cursor()
    try:
        return _timeline(cur, kind, col, key, found)
    finally:
        cur.close()


def _timeline(
    cur: duckdb.DuckDBPyConnection, kind: str, col: str, key: str, found: Sequence[Finding]
) -> Timeline:
    horizon = cur.execute("SELECT max(coalesce(valid_until, issued_at)) FROM replay_grants")
    end_of_data = horizon.fetchall()[0][0]
    grants = cur.execute(
        f"""SELECT grant_id, credential_id, task_id, decision_id, issued_at,
                   coalesce(valid_until, greatest(?, issued_at)) AS until, valid_until IS NULL,
                   revoked_at IS NOT NULL
            FROM replay_grants WHERE {col} = ? ORDER BY issued_at LIMIT {ROW_LIMIT}""",
        [end_of_data, key],
    ).fetchall()
    creds = sorted({str(g[1]) for g in grants if g[1]} | ({key} if kind == "credential" else set()))
    tasks = sorted({str(g[2]) for g in grants if g[2]} | ({key} if kind == "task" else set()))
    intervals: list[dict[str, Any]] = [
        {
            "lane": f"grant {cred or gid}",
            "kind": "grant",
            "start": _iso(issued),
            "end": _iso(until),
            "label": ("revoked" if revoked else "expiry unknown" if unknown else "expires")
            + f" · {gid}",
        }
        for gid, cred, _, _, issued, until, unknown, revoked in grants
    ]
    points: list[dict[str, Any]] = []
    for t, gid, cred in cur.execute(
        """SELECT event_time, grant_id, credential_id FROM grant_events WHERE kind = 'renew'
           AND (grant_id IN (SELECT UNNEST(CAST(? AS VARCHAR[])))
                OR credential_id IN (SELECT UNNEST(CAST(? AS VARCHAR[]))))
           ORDER BY event_time LIMIT ?""",
        [[str(g[0]) for g in grants], creds, ROW_LIMIT],
    ).fetchall():
        points.append(
            {
                "lane": f"grant {cred or gid}",
                "kind": "renewal",
                "time": _iso(t),
                "category": "renewal",
                "label": "renewed",
            }
        )
    task_filter = "agent_id = ?" if kind == "agent" else "task_id IN (SELECT UNNEST(?))"
    for tid, start, stop in cur.execute(
        f"""SELECT task_id, started_at, ended_at FROM replay_tasks
            WHERE ({task_filter}) AND started_at IS NOT NULL ORDER BY started_at LIMIT ?""",
        [key if kind == "agent" else tasks, ROW_LIMIT],
    ).fetchall():
        intervals.append(
            {
                "lane": f"task {tid}",
                "kind": "task",
                "start": _iso(start),
                "end": _iso(stop or end_of_data or start),
                "label": "task window" + ("" if stop else " (no end logged)"),
            }
        )
    deleg = (
        "child_agent_id = ? OR parent_agent_id = ?"
        if kind == "agent"
        else "task_id = ? OR parent_task_id = ?"
    )
    if kind != "credential":
        for tid, child, parent, start, stop in cur.execute(
            f"""SELECT task_id, child_agent_id, parent_agent_id, started_at, ended_at
                FROM replay_delegations WHERE ({deleg}) AND started_at IS NOT NULL LIMIT ?""",
            [key, key, ROW_LIMIT],
        ).fetchall():
            intervals.append(
                {
                    "lane": f"delegation {parent} → {child}",
                    "kind": "delegation",
                    "start": _iso(start),
                    "end": _iso(stop or start),
                    "label": f"task {tid}",
                }
            )
    where = {
        "credential": "credential_id = ?",
        "agent": "agent_id = ? OR credential_id IN (SELECT UNNEST(CAST(? AS VARCHAR[])))",
        "task": "task_id = ? OR credential_id IN (SELECT UNNEST(CAST(? AS VARCHAR[])))",
    }[kind]
    args: list[Any] = [creds, key] if kind == "credential" else [creds, key, creds]
    cur.execute(_PATTERN_MACRO)
    uses = cur.execute(_USES_SQL.format(where=where, limit=USE_LIMIT), args).fetchall()
    total = int(uses[0][6]) if uses else 0
    requests: list[str] = []
    for t, cred, action, resource, _, req, _, verdict in uses:
        points.append(
            {
                "lane": "uses",
                "kind": "use",
                "time": _iso(t),
                "category": verdict,
                "label": f"{action} {resource or ''} ({cred or 'no credential'})",
            }
        )
        if req:
            requests.append(str(req))
    dec_where = {
        "agent": "agent_id = ?",
        "task": "task_id = ?",
        "credential": "request_id IN (SELECT UNNEST(CAST(? AS VARCHAR[]))) "
        "OR decision_id IN (SELECT UNNEST(CAST(? AS VARCHAR[])))",
    }[kind]
    dec_args: list[Any] = (
        [requests, [str(g[3]) for g in grants if g[3]]] if kind == "credential" else [key]
    )
    for t, allowed, action, reason in cur.execute(
        f"""SELECT event_time, allowed, action, reason FROM decisions
            WHERE ({dec_where}) AND event_time IS NOT NULL ORDER BY event_time DESC LIMIT ?""",
        [*dec_args, ROW_LIMIT],
    ).fetchall():
        points.append(
            {
                "lane": "decisions",
                "kind": "decision",
                "time": _iso(t),
                "category": "allowed" if allowed else "denied" if allowed is False else "unknown",
                "label": f"{action or ''} {reason or ''}".strip(),
            }
        )
    for f in found:
        if getattr(f, col) == key and f.first_seen is not None:
            points.append(
                {
                    "lane": "findings",
                    "kind": "finding",
                    "time": _iso(f.first_seen),
                    "category": f.severity,
                    "label": f"{f.detection_id} {f.summary}",
                }
            )
    return Timeline(kind, key, tuple(intervals), tuple(points), total, len(uses))
