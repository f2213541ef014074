"""What an incremental scan re-reads: the keys new rows touch, and the slice of the lake that
decides every finding and coverage figure those keys can change.

The rows committed after the last scan's watermark name credentials, grants, tasks, agents,
principals, hours and OTel traces (``touched``). The slice (``restrict``) replaces the ``uses``, ``grants``
and ``grant_events`` views of a connection by

- the uses of touched credentials (their whole history), the credential-less uses of touched
  agents and principals, every use within ``WINDOW_HOURS`` of a new event, and the OTel spans
  that wait for an ancestor span with the spans they wait for;
- the grants those uses and keys name, with their parent and child grants (attestation, agent,
  task and targets are inherited along ``parent_grant_id``) and the other grants of their tasks;
- the grant events of those grants, and every bulk revocation.

The detections then run over the slice, and a finding replaces the previous one only when the
slice holds everything its subject depends on (``COMPLETE_SQL``, ``complete``). Coverage figures
move by the difference between the slice after and before the new commits (``before``): rows
outside the slice kept their verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from jitaudit.lake import Lake, view_sql
from jitaudit.schema import INGEST_TABLES

#: hours around new data that an incremental scan re-reads (time-window detections look at
#: most this far around an event)
WINDOW_HOURS = 2
#: levels of parent_grant_id followed (replay_grants inherits along three)
LINEAGE_LEVELS = 3


@dataclass
class Touched:
    """What the rows committed after the watermark can change."""

    credentials: set[str]
    agents: set[str]
    hours: set[datetime]  # hours of new events (the core; the scan reads ± WINDOW_HOURS)


def files_between(lake: Lake, after: int, upto: int | None = None) -> dict[str, list[str]]:
    """Paths per table of the commits with ``after < seq <= upto``."""
    out: dict[str, list[str]] = {t: [] for t in INGEST_TABLES}
    for c in lake.commits():
        if c.seq > after and (upto is None or c.seq <= upto):
            for f in c.files:
                if f.table in out:
                    out[f.table].append((lake.root / f.path).as_posix())
    return out


def touched(con: duckdb.DuckDBPyConnection, new: dict[str, list[str]]) -> Touched:
    """Keys of the new rows, closed over what they affect (children, tasks, late decisions,
    bulk revocations, policy revisions, delegates). Leaves them in the temp table ``_t_keys``."""
    for table, paths in new.items():
        con.execute(view_sql(table, paths, name=f"new_{table}"))
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _t_keys AS
        SELECT 'c' AS k, credential_id AS v FROM new_grants UNION SELECT 'c', grant_id FROM new_grants
        UNION SELECT 'c', parent_grant_id FROM new_grants UNION SELECT 'c', credential_id FROM new_uses
        UNION SELECT 'c', credential_id FROM new_grant_events UNION SELECT 'c', grant_id FROM new_grant_events
        UNION SELECT 't', task_id FROM new_grants UNION SELECT 't', task_id FROM new_uses
        UNION SELECT 't', task_id FROM new_tasks UNION SELECT 't', parent_task_id FROM new_tasks
        UNION SELECT 't', task_id FROM new_decisions
        UNION SELECT 'a', agent_id FROM new_grants UNION SELECT 'a', agent_id FROM new_uses
        UNION SELECT 'a', agent_id FROM new_tasks UNION SELECT 'a', agent_id FROM new_decisions
        UNION SELECT 'a', delegated_by FROM new_tasks
        UNION SELECT 'p', principal_id FROM new_uses WHERE credential_id IS NULL
        UNION SELECT 'p', principal_id FROM new_grants WHERE credential_id IS NULL
        UNION SELECT 'b', principal_id FROM new_grant_events WHERE revokes_issued_before IS NOT NULL
        UNION SELECT 'b', workload_identity FROM new_grant_events
              WHERE revokes_issued_before IS NOT NULL
        UNION SELECT 'x', trace_id FROM new_uses WHERE source = 'otel'
        UNION SELECT 'x', trace_id FROM new_tasks WHERE source = 'otel'
        UNION SELECT 'x', trace_id FROM new_span_links
        UNION SELECT 'r', request_id FROM new_decisions
        UNION SELECT 'd', decision_id FROM new_decisions
        UNION SELECT 'h', CAST(date_trunc('hour', event_time) AS VARCHAR) FROM (
            SELECT event_time FROM new_uses UNION ALL SELECT event_time FROM new_grants
            UNION ALL SELECT event_time FROM new_decisions UNION ALL SELECT event_time FROM new_tasks
            UNION ALL SELECT event_time FROM new_grant_events)"""
    )
    con.execute("DELETE FROM _t_keys WHERE v IS NULL")
    revision_moved = con.execute(
        """SELECT count(*) FROM (SELECT DISTINCT policy_revision FROM new_decisions
                                 WHERE policy_revision IS NOT NULL
                                 EXCEPT SELECT DISTINCT policy_revision FROM decisions
                                 WHERE decision_id NOT IN (SELECT decision_id FROM new_decisions))"""
    ).fetchall()[0][0]
    # grants whose findings the new rows can change, beyond their own credentials
    con.execute(
        f"""INSERT INTO _t_keys
        SELECT 'c', g.credential_id FROM grants g
        WHERE g.task_id IN (SELECT v FROM _t_keys WHERE k = 't')
           OR g.parent_grant_id IN (SELECT v FROM _t_keys WHERE k = 'c')
           -- a late decision can give an old grant its policy revision
           OR g.decision_id IN (SELECT v FROM _t_keys WHERE k = 'd')
           -- principal-window joins (no shared credential id) and principal-wide revocations
           OR (g.credential_id IS NULL AND g.principal_id IN (SELECT v FROM _t_keys WHERE k = 'p'))
           OR g.principal_id IN (SELECT v FROM _t_keys WHERE k = 'b')
           OR g.issuer IN (SELECT v FROM _t_keys WHERE k = 'b')
           OR g.workload_identity IN (SELECT v FROM _t_keys WHERE k = 'b')
           {"OR g.policy_revision IS NOT NULL" if revision_moved else ""}
        UNION
        SELECT 'c', g.grant_id FROM grants g
        WHERE g.credential_id IS NULL AND (g.task_id IN (SELECT v FROM _t_keys WHERE k = 't')
                                            OR g.decision_id IN (SELECT v FROM _t_keys WHERE k = 'd'))
        UNION
        -- a grant without an agent of its own inherits its parent's (two levels up)
        SELECT 'a', coalesce(p1.agent_id, p2.agent_id) FROM new_grants n
        JOIN grants p1 ON p1.grant_id = n.parent_grant_id
        LEFT JOIN grants p2 ON p2.grant_id = p1.parent_grant_id
        WHERE n.agent_id IS NULL
        UNION
        -- OTel spans that waited for an ancestor may now know their agent and task: every
        -- agent, task and credential of the traces new spans belong to
        SELECT 'a', agent_id FROM tasks
        WHERE source = 'otel' AND trace_id IN (SELECT v FROM _t_keys WHERE k = 'x')
        UNION
        SELECT 't', task_id FROM tasks
        WHERE source = 'otel' AND trace_id IN (SELECT v FROM _t_keys WHERE k = 'x')
        UNION
        SELECT k, v FROM (
          SELECT 'a' AS k, agent_id AS v, trace_id FROM uses WHERE source = 'otel'
          UNION ALL SELECT 't', task_id, trace_id FROM uses WHERE source = 'otel'
          UNION ALL SELECT 'c', credential_id, trace_id FROM uses WHERE source = 'otel')
        WHERE trace_id IN (SELECT v FROM _t_keys WHERE k = 'x')
        UNION
        SELECT 'c', u.credential_id FROM uses u
        WHERE u.request_id IN (SELECT v FROM _t_keys WHERE k = 'r')
           OR (u.agent_id IN (SELECT v FROM _t_keys WHERE k = 'a')
               AND u.task_id IN (SELECT v FROM _t_keys WHERE k = 't'))"""
    )
    con.execute("DELETE FROM _t_keys WHERE v IS NULL")
    rows = con.execute("SELECT DISTINCT k, v FROM _t_keys").fetchall()
    keys: dict[str, set[str]] = {k: set() for k in "ctaprhbdx"}
    for k, v in rows:
        keys[k].add(v)
    return Touched(
        credentials=keys["c"],
        agents=keys["a"],
        hours={datetime.fromisoformat(h) for h in keys["h"]},
    )


#: SQL: an hour (``date_trunc('hour', …)``) the slice holds every use of (see ``window``)
_IN_WINDOW = f""" IN (
        SELECT CAST(v AS TIMESTAMP) + to_hours(CAST(o.o AS BIGINT))
        FROM _t_keys, (SELECT UNNEST(range(-{WINDOW_HOURS}, {WINDOW_HOURS} + 1)) AS o) o
        WHERE k = 'h')"""

_USES_SLICE = f"""
CREATE OR REPLACE TEMP TABLE _r_uses AS
SELECT u.* FROM _all_uses u
WHERE u.credential_id IN (SELECT v FROM _t_keys WHERE k = 'c')
   OR (u.credential_id IS NULL AND (u.agent_id IN (SELECT v FROM _t_keys WHERE k = 'a')
                                    OR u.principal_id IN (SELECT v FROM _t_keys WHERE k = 'p')))
   OR date_trunc('hour', u.event_time){_IN_WINDOW}
   -- OTel spans waiting for an ancestor, and the stored spans they wait for: the replay
   -- resolves their agent and task from these alone (replay_span_owners), as over the lake
   OR (u.source = 'otel' AND (u.ancestor_span_id IS NOT NULL
                              OR u.trace_id || ':' || u.span_id IN (SELECT * FROM _waited_for)))
"""

#: trace:span of the spans OTel rows wait for (see ``replay_span_owners``)
_WAITED_FOR = """
CREATE OR REPLACE TEMP TABLE _waited_for AS
SELECT trace_id || ':' || ancestor_span_id AS span FROM _all_uses
WHERE source = 'otel' AND ancestor_span_id IS NOT NULL
UNION SELECT trace_id || ':' || ancestor_span_id FROM tasks
WHERE source = 'otel' AND ancestor_span_id IS NOT NULL
"""

_GRANT_SEED = f"""
CREATE OR REPLACE TEMP TABLE _r_grants AS
SELECT DISTINCT g.grant_id, g.parent_grant_id, g.task_id FROM _all_grants g
WHERE g.credential_id IN (SELECT v FROM _t_keys WHERE k = 'c')
   OR g.grant_id IN (SELECT v FROM _t_keys WHERE k = 'c')
   OR g.task_id IN (SELECT v FROM _t_keys WHERE k = 't')
   OR g.credential_id IN (SELECT credential_id FROM _r_uses)
   OR g.task_id IN (SELECT task_id FROM _r_uses)
   OR (g.credential_id IS NULL AND g.principal_id IN (SELECT principal_id FROM _r_uses))
   OR date_trunc('hour', g.issued_at){_IN_WINDOW}
"""

_GRANT_CLOSURE = """
INSERT INTO _r_grants
SELECT DISTINCT g.grant_id, g.parent_grant_id, g.task_id FROM _all_grants g
WHERE (g.grant_id IN (SELECT parent_grant_id FROM _r_grants)
       OR g.parent_grant_id IN (SELECT grant_id FROM _r_grants)
       OR g.task_id IN (SELECT task_id FROM _r_grants))
  AND g.grant_id NOT IN (SELECT grant_id FROM _r_grants)
"""


def restrict(con: duckdb.DuckDBPyConnection) -> None:
    """Replace ``uses``, ``grants`` and ``grant_events`` by the slice (see the module notes)."""
    for table in ("uses", "grants", "grant_events"):
        con.execute(f"ALTER VIEW {table} RENAME TO _all_{table}")
    con.execute(_WAITED_FOR)
    con.execute(_USES_SLICE)
    con.execute(_GRANT_SEED)
    for _ in range(LINEAGE_LEVELS):
        before = con.execute("SELECT count(*) FROM _r_grants").fetchall()[0][0]
        con.execute(_GRANT_CLOSURE)
        if con.execute("SELECT count(*) FROM _r_grants").fetchall()[0][0] == before:
            break
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _r_grant_rows AS SELECT g.* FROM _all_grants g "
        "WHERE g.grant_id IN (SELECT grant_id FROM _r_grants)"
    )
    _slice_views(con)


def _slice_views(con: duckdb.DuckDBPyConnection, *, without_new: bool = False) -> None:
    """``uses`` and ``grants`` over the slice's rows (``without_new``: minus the rows of the
    new commits), ``grant_events`` of those grants and every bulk revocation."""
    for table, rows in (("uses", "_r_uses"), ("grants", "_r_grant_rows")):
        new = (
            f" ANTI JOIN new_{table} n ON n.source = r.source AND n.event_id = r.event_id"
            if without_new
            else ""
        )
        con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT r.* FROM {rows} r{new}")
    con.execute(
        """CREATE OR REPLACE VIEW grant_events AS SELECT e.* FROM _all_grant_events e
        WHERE e.revokes_issued_before IS NOT NULL
           OR coalesce(e.grant_id, e.credential_id) IN (SELECT grant_id FROM grants)"""
    )


def before(lake: Lake, con: duckdb.DuckDBPyConnection, upto: int) -> None:
    """Turn ``con``'s slice into the slice as it was at commit ``upto``: the same uses, grants
    and grant events minus the new rows, every other table as of ``upto``. (The coverage of
    the slice moves by the difference; nothing is copied or read again from the lake.)"""
    for table, paths in files_between(lake, -1, upto).items():
        sliced = table in ("uses", "grants", "grant_events")
        con.execute(view_sql(table, paths, name=f"_all_{table}" if sliced else table))
    _slice_views(con, without_new=True)


#: SQL over a detection's rows: the subjects the slice holds completely (see ``complete``)
COMPLETE_SQL = """
  ((subject LIKE 'grant:%' OR subject LIKE 'credential:%')
   AND credential_id IN (SELECT v FROM _t_keys WHERE k = 'c'))
  OR (subject LIKE 'grant:%' AND substr(subject, 7) IN (SELECT v FROM _t_keys WHERE k = 'c'))
  OR (subject LIKE 'agent:%' AND subject NOT LIKE '%|%'
      AND substr(subject, 7) IN (SELECT v FROM _t_keys WHERE k = 'a'))
  -- judged by their time span afterwards (``complete``)
  OR subject LIKE 'agent:%|escalation:%'
"""


def window(t: Touched) -> set[datetime]:
    """The hours the slice holds every use of."""
    return {h + timedelta(hours=o) for h in t.hours for o in range(-WINDOW_HOURS, WINDOW_HOURS + 1)}


def complete(
    subject: str,
    credential_id: str | None,
    agent_id: str | None,
    first_seen: datetime | None,
    last_seen: datetime | None,
    t: Touched,
    hours: set[datetime] | None = None,
) -> bool:
    """Whether the slice held everything a finding's subject depends on (as ``COMPLETE_SQL``).

    An agent's episode (``agent:…|escalation:…``) is complete when the slice holds every hour
    from the one before its first event to the one after its last: nothing it could merge
    with or be followed by lies outside.
    """
    if subject.startswith(("grant:", "credential:")):
        return (credential_id is not None and credential_id in t.credentials) or (
            subject.startswith("grant:") and subject[len("grant:") :] in t.credentials
        )
    if subject.startswith("agent:"):
        if "|" not in subject:
            return subject[len("agent:") :] in t.agents
        if "|escalation:" in subject and first_seen is not None and last_seen is not None:
            held = hours if hours is not None else window(t)
            h = _hour(first_seen) - timedelta(hours=1)
            while h <= _hour(last_seen) + timedelta(hours=1):
                if h not in held:
                    return False
                h += timedelta(hours=1)
            return True
    return False


def _hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)
