"""Scan a lake: replay, run the detections, track finding status across scans, persist.

A scan after new data evaluates only what the new data can change. The lake manifest's commit
sequence is the watermark: the rows committed after it name the credentials, tasks, agents,
principals and hours they touch, and the detections run over the slice of the lake those keys
decide (``jitaudit.incremental``). The findings whose subject the slice holds completely replace
the previous ones; coverage figures move by the slice's difference. The few detections that
aggregate over time windows of many subjects (``incremental: false``) run over the whole lake.
An incremental scan therefore equals a full one, late-arriving events included (tests prove it).
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

from jitaudit import incremental, replay, scan_state, suppressions
from jitaudit.detections import params, registry
from jitaudit.detections.registry import Detection
from jitaudit.detections.runner import Coverage, Finding, coverage_of, run_detection
from jitaudit.lake import Lake
from jitaudit.schema import SEVERITIES

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


# ------------------------------------------------------------------------------ scan


def _digest(dets: Sequence[Detection], config: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for d in dets:
        h.update(f"{d.id}\0{d.sql}\0{d.coverage}\0{d.summary}\0{d.severity}\0".encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A connection over the lake."""
    (lake.root / "_spill").mkdir(exist_ok=True)
    con = duckdb.connect(
        config={
            "memory_limit": os.environ.get("JITAUDIT_MEMORY_LIMIT", "4GB"),
            "temp_directory": str(lake.root / "_spill"),
        }
    )
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # progress is reported per detection
    lake.connect(con)
    return con


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


def _coverage(
    con: duckdb.DuckDBPyConnection, dets: Iterable[Detection], config: dict[str, Any]
) -> dict[str, Coverage]:
    return {c.detection_id: c for d in dets if (c := coverage_of(con, d, config)) is not None}


def _saved_coverage(state: scan_state.SavedScan) -> dict[str, Coverage]:
    return {c.detection_id: c for c in state.coverage}


def _open(previous: dict[str, Finding], detection_id: str) -> list[Finding]:
    """The previous scan's findings of a detection that were not resolved."""
    return [
        f for f in previous.values() if f.detection_id == detection_id and f.status != "resolved"
    ]


def _reads(det: Detection) -> set[str]:
    """The relations the detection and its coverage figure read."""
    reads = set(det.tables)
    if det.coverage:
        reads |= set(replay.RELATION.findall(det.coverage))
    return reads


def _feeds(det: Detection, changed: set[str]) -> bool:
    """Whether rows of the ``changed`` tables feed the detection (or its coverage figure)."""
    return any(replay.base_tables(r) & changed for r in _reads(det))


def _whole_lake_coverage(det: Detection) -> bool:
    """A coverage figure that reads the decisions themselves: a new decision can change the
    verdict of any use, so it is counted over the whole lake, not moved by a difference."""
    return "decisions" in replay.RELATION.findall(det.coverage or "")


def _incremental(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    dets: Sequence[Detection],
    config: dict[str, Any],
    state: scan_state.SavedScan,
    new: dict[str, list[str]],
    previous: dict[str, Finding],
    progress: Progress | None,
) -> tuple[dict[str, list[Finding]], dict[str, Coverage], dict[str, int]]:
    """Re-judge what the commits after the last scan (``new``: their files per table) can
    change (see ``jitaudit.incremental``)."""
    t = incremental.touched(con, new)
    changed = {table for table, paths in new.items() if paths}
    windowed = [d for d in dets if not d.incremental]
    local = [d for d in dets if d.incremental]
    # detections over the whole history of many subjects (JIT-006's chains of grants, JIT-014's
    # per-source delays) rerun over the whole lake when the new rows feed them, and coverage
    # that reads decisions is counted over the whole lake; only the replay they read is built
    rerun = [d for d in windowed if _feeds(d, changed)]
    replayed = tuple(sorted({r for d in rerun for r in _reads(d) if r.startswith("replay_")}))
    if replayed:
        replay.register(con, materialise=True, only=replayed)
    found, cover = _run(con, rerun, config, progress)
    prev_cover = _saved_coverage(state)
    for det in windowed:
        if det not in rerun:  # nothing it reads has changed
            found[det.id] = _open(previous, det.id)
            if det.id in prev_cover:
                cover[det.id] = prev_cover[det.id]
    cover.update(_coverage(con, [d for d in local if _whole_lake_coverage(d)], config))
    incremental.restrict(con)
    replay.register(con, materialise=True)
    ran, _ = _run(con, local, config, progress, row_filter=incremental.COMPLETE_SQL)
    hours = incremental.window(t)

    def complete(f: Finding) -> bool:
        return incremental.complete(
            f.subject, f.credential_id, f.agent_id, f.first_seen, f.last_seen, t, hours
        )

    # a finding the slice held completely is replaced; the others are kept as they were
    reevaluated: dict[str, int] = {}
    for det in local:
        fresh = [f for f in ran[det.id] if complete(f)]
        found[det.id] = fresh + [f for f in _open(previous, det.id) if not complete(f)]
        reevaluated[det.id] = len(fresh)
    # coverage moves by the slice after minus the slice before the new commits
    moved = [d for d in local if d.coverage and not _whole_lake_coverage(d)]
    after = _coverage(con, moved, config)
    incremental.before(lake, con, state.watermark)
    replay.register(con, materialise=True)
    earlier = _coverage(con, moved, config)
    for det in moved:
        p, a, e = prev_cover.get(det.id), after[det.id], earlier[det.id]
        if p is None:
            continue
        cover[det.id] = Coverage(
            det.id,
            p.verifiable + a.verifiable - e.verifiable,
            p.unverifiable + a.unverifiable - e.unverifiable,
        )
    return found, cover, reevaluated


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
    state = None if full else scan_state.load(lake)
    if state is not None and state.digest != digest:
        state = None  # other detections or parameters: nothing of the last scan carries over
    previous = {f.finding_id: f for f in state.findings} if state else {}

    con = _connect(lake)
    reevaluated: dict[str, int] = {}
    if state is None:
        mode = "full"
        replay.register(con, materialise=True)  # computed once, read by every detection
        found, cover = _run(con, dets, config, progress)
    else:
        new = incremental.files_between(lake, state.watermark)
        if not any(new.values()):
            mode = "unchanged"
            found = {d.id: _open(previous, d.id) for d in dets}
            cover = _saved_coverage(state)
        else:
            mode = "incremental"
            found, cover, reevaluated = _incremental(
                lake, con, dets, config, state, new, previous, progress
            )
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
    scan_state.attach_controls(findings)
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
        scan_state.save(lake, result, digest)
    if since is not None:
        result.findings = [
            f for f in result.findings if f.last_seen is None or f.last_seen >= since
        ]
    return result


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
