"""Scan a lake: replay, run the detections, track finding status across scans, persist.

A scan after new data evaluates only what the new data can change. The lake manifest's commit
sequence is the watermark: the rows committed after it name the credentials, tasks, agents,
principals and hours they touch; the uses of those credentials (their whole history) and the
uses in those hours are replayed against the full grant, task and decision streams, and the
findings whose subject was fully re-evaluated replace the previous ones. Detections that read
no uses are cheap and always complete; the few that aggregate over time windows of many
credentials (``incremental: false``) run over the full lake. An incremental scan therefore
equals a full one, late-arriving events included (tests prove it).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from jitaudit import replay, suppressions
from jitaudit.detections import params, registry
from jitaudit.detections.registry import Detection
from jitaudit.detections.runner import Coverage, Finding, run_detection
from jitaudit.lake import InputRef, Lake, view_sql
from jitaudit.schema import INGEST_TABLES, SEVERITIES, spec

STATE_FILE = "scan_state.json"
STATE_VERSION = 1
#: relations whose rows come from ``uses``: detections reading them are re-run on the touched
#: subset in an incremental scan
USE_RELATIONS = {"uses", "replay_uses", "replay_scope", "replay_targets"}
#: hours around new data that an incremental scan re-reads (time-window detections look at
#: most this far around an event)
WINDOW_HOURS = 2

Progress = Callable[[str], None]


@dataclass
class ScanResult:
    scan_id: str
    scanned_at: datetime
    mode: str  # full | incremental | unchanged
    watermark: int
    detections: list[str]
    findings: list[Finding]
    coverage: list[Coverage]
    expired_suppressions: list[suppressions.Suppression] = field(default_factory=list)
    reevaluated: dict[str, int] = field(default_factory=dict)

    def at_or_above(self, severity: str) -> list[Finding]:
        floor = SEVERITIES.index(severity)
        return [
            f
            for f in self.findings
            if f.status in ("new", "open") and SEVERITIES.index(f.severity) >= floor
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "scan_id": self.scan_id,
            "scanned_at": self.scanned_at.isoformat(),
            "mode": self.mode,
            "watermark": self.watermark,
            "detections": self.detections,
            "findings": [f.to_json() for f in self.findings],
            "coverage": [c.to_json() for c in self.coverage],
            "expired_suppressions": [s.to_json() for s in self.expired_suppressions],
        }


# ----------------------------------------------------------------------------- state


def _digest(dets: Sequence[Detection], config: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for d in dets:
        h.update(f"{d.id}\0{d.sql}\0{d.coverage}\0{d.summary}\0{d.severity}\0".encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()


def load_state(lake: Lake) -> dict[str, Any] | None:
    path = lake.root / "_meta" / STATE_FILE
    if not path.exists():
        return None
    state: dict[str, Any] = orjson.loads(path.read_bytes())
    return state if state.get("version") == STATE_VERSION else None


def _save_state(lake: Lake, state: dict[str, Any]) -> None:
    path = lake.root / "_meta" / STATE_FILE
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(orjson.dumps(state, default=str))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


# ----------------------------------------------------------------------------- touched


@dataclass
class Touched:
    """What the rows committed after the watermark can change."""

    credentials: set[str]
    agents: set[str]
    principals: set[str]
    hours: set[datetime]  # hours of new events (the core; the scan reads ± WINDOW_HOURS)


def _new_files(lake: Lake, watermark: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {t: [] for t in INGEST_TABLES}
    for c in lake.commits():
        if c.seq > watermark:
            for f in c.files:
                if f.table in out:
                    out[f.table].append((lake.root / f.path).as_posix())
    return out


def touched(con: duckdb.DuckDBPyConnection, new: dict[str, list[str]]) -> Touched:
    """Keys of the new rows, closed over what they affect (children, tasks, late decisions,
    bulk revocations, policy revisions, delegates)."""
    for table, paths in new.items():
        con.execute(view_sql(table, paths).replace(f'VIEW "{table}"', f'VIEW "new_{table}"'))
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
        UNION SELECT 'r', request_id FROM new_decisions
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
           -- principal-window joins (no shared credential id) and principal-wide revocations
           OR (g.credential_id IS NULL AND g.principal_id IN (SELECT v FROM _t_keys WHERE k = 'p'))
           OR g.principal_id IN (SELECT v FROM _t_keys WHERE k = 'b')
           OR g.issuer IN (SELECT v FROM _t_keys WHERE k = 'b')
           OR g.workload_identity IN (SELECT v FROM _t_keys WHERE k = 'b')
           {"OR g.policy_revision IS NOT NULL" if revision_moved else ""}
        UNION
        SELECT 'c', u.credential_id FROM uses u
        WHERE u.request_id IN (SELECT v FROM _t_keys WHERE k = 'r')
           OR (u.agent_id IN (SELECT v FROM _t_keys WHERE k = 'a')
               AND u.task_id IN (SELECT v FROM _t_keys WHERE k = 't'))"""
    )
    con.execute("DELETE FROM _t_keys WHERE v IS NULL")
    rows = con.execute("SELECT DISTINCT k, v FROM _t_keys").fetchall()
    keys: dict[str, set[str]] = {k: set() for k in "ctaprhb"}
    for k, v in rows:
        keys[k].add(v)
    return Touched(
        credentials=keys["c"],
        agents=keys["a"],
        principals=keys["p"],
        hours={datetime.fromisoformat(h) for h in keys["h"]},
    )


def _restrict_uses(con: duckdb.DuckDBPyConnection) -> None:
    """Replace the ``uses`` view by the uses an incremental scan must replay."""
    con.execute("ALTER VIEW uses RENAME TO _all_uses")
    con.execute(
        f"""CREATE VIEW uses AS SELECT u.* FROM _all_uses u
        WHERE u.credential_id IN (SELECT v FROM _t_keys WHERE k = 'c')
           OR (u.credential_id IS NULL AND (u.agent_id IN (SELECT v FROM _t_keys WHERE k = 'a')
                                            OR u.principal_id IN (SELECT v FROM _t_keys WHERE k = 'p')))
           OR date_trunc('hour', u.event_time) IN (
                SELECT CAST(v AS TIMESTAMP) + to_hours(CAST(o.o AS BIGINT))
                FROM _t_keys, (SELECT UNNEST(range(-{WINDOW_HOURS}, {WINDOW_HOURS} + 1)) AS o) o
                WHERE k = 'h')"""
    )


def _complete(f: Finding, t: Touched) -> bool:
    """Whether an incremental run saw everything this finding's subject depends on."""
    if f.subject.startswith(("grant:", "credential:")):
        return f.credential_id is not None and f.credential_id in t.credentials
    if f.subject.startswith("agent:") and "|" not in f.subject:
        return f.subject[len("agent:") :] in t.agents
    return False


# ------------------------------------------------------------------------------ scan


def _connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    (lake.root / "_spill").mkdir(exist_ok=True)
    con = duckdb.connect(
        config={
            "memory_limit": os.environ.get("JITAUDIT_MEMORY_LIMIT", "4GB"),
            "temp_directory": str(lake.root / "_spill"),
        }
    )
    con.execute("SET TimeZone = 'UTC'")
    lake.connect(con)
    return con


#: SQL over a detection's rows: the subjects an incremental run saw completely (see _complete)
COMPLETE_SQL = """
  ((subject LIKE 'grant:%' OR subject LIKE 'credential:%')
   AND credential_id IN (SELECT v FROM _t_keys WHERE k = 'c'))
  OR (subject LIKE 'agent:%' AND subject NOT LIKE '%|%'
      AND substr(subject, 7) IN (SELECT v FROM _t_keys WHERE k = 'a'))
"""


def _run(
    con: duckdb.DuckDBPyConnection,
    dets: Iterable[Detection],
    config: dict[str, Any],
    progress: Progress | None,
    row_filter: str | None = None,
) -> tuple[dict[str, list[Finding]], dict[str, Coverage]]:
    found: dict[str, list[Finding]] = {}
    cover: dict[str, Coverage] = {}
    for det in dets:
        if progress:
            progress(f"{det.id} {det.name}")
        f, c = run_detection(con, det, config, row_filter, coverage=row_filter is None)
        found[det.id] = f
        if c is not None:
            cover[det.id] = c
    return found, cover


def scan(
    lake: Lake,
    *,
    detections: str | None = None,
    config_path: Path | None = None,
    suppressions_path: Path | None = None,
    since: datetime | None = None,
    full: bool = False,
    persist: bool = True,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Scan ``lake`` (incrementally when a previous scan's state allows it)."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    config = params.load_config(config_path)
    dets = [d for d in registry.select(detections) if params.enabled(d, config)]
    digest = _digest(dets, config)
    watermark = lake.watermark()
    state = None if full else load_state(lake)
    if state is not None and state.get("digest") != digest:
        state = None  # other detections or parameters: nothing of the last scan carries over
    previous = {f["finding_id"]: Finding.from_json(f) for f in (state or {}).get("findings", [])}

    con = _connect(lake)
    reevaluated: dict[str, int] = {}
    if state is None:
        mode = "full"
        replay.register(con, materialise=True)  # computed once, read by every detection
        found, cover = _run(con, dets, config, progress)
    else:
        new = _new_files(lake, int(state["watermark"]))
        prev_cover = {c["detection_id"]: Coverage(**c) for c in state.get("coverage", [])}
        if not any(new.values()):
            mode = "unchanged"
            found = {
                d.id: [
                    f
                    for f in previous.values()
                    if f.detection_id == d.id and f.status != "resolved"
                ]
                for d in dets
            }
            cover = prev_cover
        else:
            mode = "incremental"
            t = touched(con, new)
            # the whole-lake replay feeds the windowed detections, the grant-only ones and the
            # coverage counts; the use-based detections then re-run on the touched uses only
            replay.register(con, materialise=True)
            windowed = [d for d in dets if not d.incremental]
            local = [d for d in dets if d.incremental]
            uses_based = [d for d in local if set(d.tables) & USE_RELATIONS]
            others = [d for d in local if not set(d.tables) & USE_RELATIONS]
            found, cover = _run(con, windowed + others, config, progress)
            # coverage counts of the use-based detections, over the whole lake
            for det in uses_based:
                if det.coverage:
                    got = con.execute(params.render(det, config, det.coverage)).fetchall()
                    cover[det.id] = Coverage(det.id, int(got[0][0] or 0), int(got[0][1] or 0))
            _restrict_uses(con)
            replay.register(con, materialise=True, skip=("replay_tasks", "replay_grants"))
            f3, _ = _run(con, uses_based, config, progress, row_filter=COMPLETE_SQL)
            for det in uses_based:
                fresh = [f for f in f3[det.id] if _complete(f, t)]
                kept = [
                    f
                    for f in previous.values()
                    if f.detection_id == det.id and f.status != "resolved" and not _complete(f, t)
                ]
                found[det.id] = fresh + kept
                reevaluated[det.id] = len(fresh)
            for k, v in prev_cover.items():
                cover.setdefault(k, v)
    con.close()

    findings = _with_status(found, previous, dets)
    entries = suppressions.load(suppressions_path)
    expired = [s for s in entries if s.expired(now)]
    active = [s for s in entries if not s.expired(now)]
    for f in findings:
        match = next((s for s in active if s.matches(f)), None)
        if match is not None and f.status != "resolved":
            f.status = "suppressed"
            f.suppression = match.to_json()
    _attach_controls(findings)
    result = ScanResult(
        scan_id=f"scan-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        scanned_at=now,
        mode=mode,
        watermark=watermark,
        detections=[d.id for d in dets],
        findings=sorted(findings, key=lambda f: (f.detection_id, f.finding_id)),
        coverage=[cover[d.id] for d in dets if d.id in cover],
        expired_suppressions=expired,
        reevaluated=reevaluated,
    )
    if persist:
        _record(lake, result)
        _save_state(
            lake,
            {
                "version": STATE_VERSION,
                "digest": digest,
                "watermark": watermark,
                "scan_id": result.scan_id,
                "scanned_at": now.isoformat(),
                "findings": [f.to_json() for f in result.findings if f.status != "resolved"],
                "coverage": [c.to_json() for c in result.coverage],
            },
        )
    if since is not None:
        result.findings = [
            f for f in result.findings if f.last_seen is None or f.last_seen >= since
        ]
    return result


def _record(lake: Lake, result: ScanResult) -> None:
    """Append this scan's findings (every status, resolved included) to the lake's ``findings``
    table: the history of scans, one commit per scan."""
    if not result.findings:
        return
    rows = []
    for i, f in enumerate(result.findings):
        rows.append(
            {
                "source": "scan",
                "source_file": result.scan_id,
                "source_offset": i,
                "event_id": f"{result.scan_id}:{f.finding_id}",
                "event_time": result.scanned_at,
                "ingested_at": result.scanned_at,
                "finding_id": f.finding_id,
                "scan_id": result.scan_id,
                "detection_id": f.detection_id,
                "title": f.title,
                "severity": f.severity,
                "agent_id": f.agent_id,
                "principal_id": f.principal_id,
                "credential_id": f.credential_id,
                "task_id": f.task_id,
                "first_seen": f.first_seen,
                "last_seen": f.last_seen,
                "summary": f.summary,
                "evidence": f.evidence,
                "controls": f.controls,
                "status": f.status,
            }
        )
    table = pa.Table.from_pylist(rows, schema=spec("findings").schema)
    con = duckdb.connect()
    try:
        lake.commit(con, {"findings": table}, [InputRef(result.scan_id, result.scan_id, "scan")])
    finally:
        con.close()


def _with_status(
    found: dict[str, list[Finding]], previous: dict[str, Finding], dets: Sequence[Detection]
) -> list[Finding]:
    """new: first seen by this scan; open: seen before; resolved: seen before, gone now."""
    out: list[Finding] = []
    ids: set[str] = set()
    for fs in found.values():
        for f in fs:
            before = previous.get(f.finding_id)
            f.status = "open" if before is not None and before.status != "resolved" else "new"
            out.append(f)
            ids.add(f.finding_id)
    run = {d.id for d in dets}
    for fid, f in previous.items():
        if fid not in ids and f.detection_id in run and f.status != "resolved":
            f.status = "resolved"
            out.append(f)
    return out


def _attach_controls(findings: list[Finding]) -> None:
    """Controls each finding evidences, from the control catalogue when it is installed."""
    try:
        from jitaudit import catalog
    except ImportError:
        return
    for f in findings:
        f.controls = catalog.controls_for(f.detection_id)
