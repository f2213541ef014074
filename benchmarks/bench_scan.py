"""Scan: full scan over 10M uses and 1M grants vs one bare DuckDB join; incremental after 1 %.

Builds a canonical lake directly (vectorised in DuckDB, committed through the lake like an
ingest would): agents work on tasks, each task holds one grant with a scope and targets, and
issues uses inside its validity; a few percent of uses drift out of scope, come late or are
denied, so the detections have work to do. Times (a) one bare DuckDB join of uses to grants on
the same lake, (b) a full ``jitaudit scan``, (c) an incremental scan after 1 % more data (the
next 43 minutes of activity, as a scheduled scan would find it), and (d) one after a further 1 %
of uses alone (proxy logs of those 43 minutes delivered later, no grants).

Two floors put the targets in proportion. (e) One pass that joins every use to the grant valid
at its instant (``replay_uses``), which each detection judging every use against its grant must
make once. (f) JIT-006 and JIT-014 over the whole lake, with the replay they read: their
subjects are (agent, target) chains and sources, and the benchmark's next 1 % of activity
touches every one of them, so an incremental scan that re-evaluates touched subjects over their
whole history (ARCHITECTURE §5) must redo this work.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from benchmarks.harness import Result, timed
from jitaudit import replay
from jitaudit.conform import conform
from jitaudit.detections import params, registry
from jitaudit.detections.runner import run_detection
from jitaudit.lake import InputRef, Lake
from jitaudit.scan import _connect, scan

USES = int(os.environ.get("JITAUDIT_BENCH_USES", "10000000"))
GRANTS = int(os.environ.get("JITAUDIT_BENCH_GRANTS", str(USES // 10)))

_GRANTS_SQL = """
SELECT 'bench' AS source, 'bench://grants' AS source_file, i AS source_offset,
       'g-' || i AS event_id, t0 AS event_time, t0 AS logged_time,
       TIMESTAMP '2026-11-01 00:00:00' AS ingested_at,
       'g-' || i AS grant_id, 'cred-' || i AS credential_id,
       'agent-' || (i % 1000) AS agent_id, 'agent-' || (i % 1000) AS principal_id,
       'task-' || i AS task_id, TRUE AS attested, 'kubernetes' AS auth_method,
       ['api-' || (i % 50) || '.internal', 'arn:aws:s3:::bucket-' || (i % 50) || '/*'] AS targets,
       ['GET *', 's3:GetObject', 's3:PutObject'] AS scope,
       t0 AS issued_at, t0 + INTERVAL 30 MINUTE AS expires_at
FROM (SELECT i, TIMESTAMP '2026-11-02 00:00:00'
                   + to_seconds(CAST({offset} + (i - {start}) * {span} // {n} AS BIGINT)) AS t0
      FROM range({start}, {start} + {n}) r(i))
"""

_USES_SQL = """
SELECT 'bench' AS source, 'bench://uses' AS source_file, j AS source_offset,
       'u-' || j AS event_id, t AS event_time, t + INTERVAL 90 SECOND AS logged_time,
       TIMESTAMP '2026-11-01 00:00:00' AS ingested_at,
       'cred-' || g AS credential_id, 'agent-' || (g % 1000) AS agent_id,
       'agent-' || (g % 1000) AS principal_id, 'task-' || g AS task_id,
       CASE WHEN j % 50 = 7 THEN 'DELETE /orders/{{id}}' WHEN k % 2 = 0 THEN 'GET /orders/{{id}}'
            WHEN k % 3 = 1 THEN 's3:PutObject' ELSE 's3:GetObject' END AS action,
       CASE WHEN k % 2 = 0 THEN '/orders/{{id}}' ELSE 'arn:aws:s3:::bucket-' || (g % 50) || '/k' END
         AS resource,
       CASE WHEN k % 2 = 0 THEN 'api-' || (g % 50) || '.internal'
            ELSE 'arn:aws:s3:::bucket-' || (g % 50) || '/k' END AS target,
       CASE WHEN j % 97 = 3 THEN 'denied' ELSE 'success' END AS outcome,
       'req-' || j AS request_id
FROM (SELECT j, g, k, TIMESTAMP '2026-11-02 00:00:00'
                   + to_seconds(CAST({offset} + (g - {gstart}) * {span} // {grants} AS BIGINT))
                   + to_seconds(CAST(j % 1500 AS BIGINT) + CASE WHEN j % 10007 = 5 THEN 3600 ELSE 0 END) AS t
      FROM (SELECT j, (j * 7919) % {grants} + {gstart} AS g, j // {grants} AS k
            FROM range({start}, {start} + {n}) r(j)))
"""


def _commit(
    lake: Lake,
    name: str,
    grants: tuple[int, int],
    uses: tuple[int, int],
    offset: int = 0,
    *,
    with_grants: bool = True,
) -> None:
    """Commit ``grants`` (first id, count) and ``uses`` issued over a span proportional to
    their number (the base: three days), starting ``offset`` seconds into the period. Without
    ``with_grants`` only the uses are committed (made with those grants, already in the lake)."""
    span = 259200 * grants[1] // GRANTS
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    g = con.sql(_GRANTS_SQL.format(start=grants[0], n=grants[1], span=span, offset=offset))
    u = con.sql(
        _USES_SQL.format(
            start=uses[0], n=uses[1], grants=grants[1], gstart=grants[0], span=span, offset=offset
        )
    )
    tables = {"uses": conform(con, "uses", u).good}
    if with_grants:
        tables["grants"] = conform(con, "grants", g).good
    lake.commit(con, tables, [InputRef(name, name, "bench")])
    con.close()


def _bare_join(lake: Lake) -> int:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    lake.connect(con)
    rows = con.execute(
        "SELECT count(*) FROM uses u JOIN grants g ON g.credential_id = u.credential_id"
    ).fetchall()
    con.close()
    return int(rows[0][0])


def _grant_pass(lake: Lake) -> float:
    """Seconds of one pass over ``replay_uses`` that reads the grant of every use."""
    con = _connect(lake)
    replay.register(con, materialise=True, only=("replay_uses",))
    seconds, _ = timed(
        lambda: con.execute(
            "SELECT count(*) FROM replay_uses WHERE grant_valid_until < event_time"
        ).fetchall()
    )
    con.close()
    return seconds


def _whole_history(lake: Lake) -> float:
    """Seconds of JIT-006 and JIT-014 over the whole lake, with the replay they read."""
    config = params.load_config(None)
    dets = registry.select("JIT-006,JIT-014")
    con = _connect(lake)

    def work() -> None:
        replay.register(con, materialise=True, only=("replay_grants",))
        for det in dets:
            run_detection(con, det, config, coverage=False)

    seconds, _ = timed(work)
    con.close()
    return seconds


def run(workdir: Path) -> list[Result]:
    lake = Lake(workdir / "lake")
    build, _ = timed(lambda: _commit(lake, "base", (0, GRANTS), (0, USES)))
    join_s, joined = timed(lambda: _bare_join(lake))
    full_s, full = timed(lambda: scan(lake, full=True))
    pass_s = _grant_pass(lake)
    whole_s = _whole_history(lake)
    extra_g, extra_u = max(1, GRANTS // 100), max(1, USES // 100)
    # the next 1 % of activity: what a scheduled scan finds after the last one
    _commit(lake, "one-percent-more", (GRANTS, extra_g), (USES, extra_u), offset=259200)
    inc_s, inc = timed(lambda: scan(lake))
    # then 1 % more proxy logs alone (uses made with those grants, delivered later): the
    # detections over whole histories of grants have nothing new to chain
    _commit(
        lake, "proxy-logs", (GRANTS, extra_g), (USES + extra_u, extra_u), 259200, with_grants=False
    )
    uses_s, _ = timed(lambda: scan(lake))
    return [
        Result(f"lake built: {USES:,} uses, {GRANTS:,} grants", build, "s"),
        Result("bare DuckDB join of uses to grants", join_s, "s"),
        Result("rows joined", joined, "rows"),
        Result("full scan (16 detections)", full_s, "s", "<= 10x join", full_s <= 10 * join_s),
        Result("full scan / bare join", full_s / join_s, "x", "<= 10", full_s / join_s <= 10),
        Result("findings (full scan)", len(full.findings), "findings"),
        Result("floor: one pass joining every use to its grant", pass_s, "s"),
        Result("floor pass / bare join", pass_s / join_s, "x"),
        Result("floor: JIT-006 + JIT-014 over the whole lake", whole_s, "s"),
        Result("whole-history floor / full scan", whole_s / full_s * 100, "%"),
        Result(
            "incremental scan after 1 % new data",
            inc_s,
            "s",
            "<= 15 % of full",
            inc_s <= 0.15 * full_s,
        ),
        Result("incremental / full", inc_s / full_s * 100, "%", "<= 15", inc_s <= 0.15 * full_s),
        Result(f"incremental mode: {inc.mode}", len(inc.findings), "findings"),
        Result("incremental scan after 1 % more uses only (no grants)", uses_s, "s"),
        Result("uses-only incremental / full", uses_s / full_s * 100, "%"),
    ]
