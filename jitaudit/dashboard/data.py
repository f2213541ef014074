"""Findings, overview, controls and sources of a lake for the dashboard (all its SQL)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from jitaudit import replay, suppressions
from jitaudit.detections import params, registry
from jitaudit.detections.runner import Finding
from jitaudit.lake import Lake, LakeError
from jitaudit.report import model
from jitaudit.scan_state import SavedScan

#: rows of one page of findings: only this many reach the browser at once
PAGE_SIZE = 50
#: replay views the dashboard reads; the use-based ones are replayed per key (timeline.py)
REPLAYED = ("replay_tasks", "replay_grants", "replay_delegations")


# ----------------------------------------------------------------------------- audit


@dataclass(frozen=True)
class Audit:
    """A lake's findings and report model, or why there are none yet."""

    lake_root: str
    findings: tuple[Finding, ...] = ()
    report: model.Report | None = None
    scan_id: str | None = None
    scanned_at: datetime | None = None
    #: findings came from the last persisted scan (else from a scan run for the dashboard)
    from_state: bool = False
    #: the lake has commits newer than the persisted scan
    stale: bool = False
    guidance: str | None = None

    @property
    def empty(self) -> bool:
        return self.report is None


def _guidance(root: str) -> str:
    return (
        f"The lake at `{root}` holds no data yet. Ingest logs with "
        f"`jitaudit ingest PATH... --lake {root}` (then `jitaudit scan --lake {root}`), or "
        "run `jitaudit demo` to build a lake from the bundled sample data."
    )


def _from_state(state: SavedScan) -> Any:
    from jitaudit.scan import ScanResult

    config = params.load_config(None)
    return ScanResult(
        scan_id=state.scan_id,
        scanned_at=state.scanned_at,
        mode="persisted",
        watermark=state.watermark,
        detections=[d.id for d in registry.select(None) if params.enabled(d, config)],
        findings=state.findings,
        coverage=state.coverage,
    )


def _apply_suppressions(found: list[Finding], path: Path | None) -> None:
    """Suppressions written since the scan take effect at once; expired ones stop."""
    now = datetime.now(UTC).replace(tzinfo=None)
    active = [s for s in suppressions.load(path) if not s.expired(now)]
    for f in found:
        if f.status == "resolved":
            continue
        match = next((s for s in active if s.matches(f)), None)
        if match is not None:
            f.status, f.suppression = "suppressed", match.to_json()
        elif f.status == "suppressed":
            f.status, f.suppression = "open", None


def load_audit(root: str, suppressions_path: str | None = None) -> Audit:
    """The findings of the last persisted scan (a scan that persists nothing when there is
    none) with the current suppressions applied, and the report model over them."""
    try:
        lake = Lake(root, create=False)
    except LakeError:
        return Audit(root, guidance=_guidance(root))
    if lake.watermark() == 0:
        return Audit(root, guidance=_guidance(root))
    from jitaudit import scan_state
    from jitaudit.scan import scan

    sup = Path(suppressions_path) if suppressions_path else None
    state = scan_state.load(lake)
    result = _from_state(state) if state else scan(lake, persist=False, suppressions_path=sup)
    _apply_suppressions(result.findings, sup)
    report = model.build(lake, result=result)
    return Audit(
        lake_root=str(lake.root),
        findings=tuple(result.findings),
        report=report,
        scan_id=result.scan_id,
        scanned_at=result.scanned_at,
        from_state=state is not None,
        stale=state is not None and state.watermark < lake.watermark(),
    )


def connect(root: str) -> duckdb.DuckDBPyConnection | None:
    """A connection over the lake's committed files (nothing is written to the lake), with
    grants, tasks and delegations replayed once into tables every cursor can read."""
    try:
        lake = Lake(root, create=False)
    except LakeError:
        return None
    con = duckdb.connect(config={"memory_limit": os.environ.get("JITAUDIT_MEMORY_LIMIT", "4GB")})
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    # no progress bar in the server's log (a cursor starts with the setting off anyway)
    con.execute("SET enable_progress_bar = false")
    lake.connect(con)
    replay.register(con, materialise=True, only=REPLAYED, temp=False)
    return con


# -------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Filters:
    severity: tuple[str, ...] = ()
    detection: tuple[str, ...] = ()
    agent: tuple[str, ...] = ()
    control: tuple[str, ...] = ()  # "framework control_id"
    status: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None

    def keep(self, f: Finding) -> bool:
        controls = {f"{c['framework']} {c['control_id']}" for c in f.controls}
        return (
            (not self.severity or f.severity in self.severity)
            and (not self.detection or f.detection_id in self.detection)
            and (not self.agent or (f.agent_id or "") in self.agent)
            and (not self.control or bool(controls & set(self.control)))
            and (not self.status or f.status in self.status)
            and (self.start is None or f.last_seen is None or f.last_seen.date() >= self.start)
            and (self.end is None or f.first_seen is None or f.first_seen.date() <= self.end)
        )


@dataclass(frozen=True)
class Page:
    rows: tuple[dict[str, Any], ...]
    total: int
    page: int
    pages: int


def finding_row(f: Finding) -> dict[str, Any]:
    return {
        "finding_id": f.finding_id,
        "severity": f.severity,
        "detection": f.detection_id,
        "status": f.status,
        "agent": f.agent_id,
        "credential": f.credential_id,
        "task": f.task_id,
        "first_seen": f.first_seen,
        "last_seen": f.last_seen,
        "events": f.events,
        "summary": f.summary,
    }


def _rank(f: Finding) -> tuple[bool, int, str, str]:
    return (
        f.status not in model.ACTIVE,
        model.SEVERITY_ORDER.index(f.severity),
        f.detection_id,
        f.finding_id,
    )


def findings(found: tuple[Finding, ...], filters: Filters, page: int = 0) -> Page:
    """One page of the findings that pass ``filters``, active and most severe first."""
    kept = sorted((f for f in found if filters.keep(f)), key=_rank)
    pages = max(1, -(-len(kept) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    chunk = kept[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    return Page(tuple(finding_row(f) for f in chunk), len(kept), page, pages)


def filter_options(found: tuple[Finding, ...]) -> dict[str, list[str]]:
    return {
        "severity": [s for s in model.SEVERITY_ORDER if any(f.severity == s for f in found)],
        "detection": sorted({f.detection_id for f in found}),
        "agent": sorted({f.agent_id for f in found if f.agent_id}),
        "control": sorted(
            {f"{c['framework']} {c['control_id']}" for f in found for c in f.controls}
        ),
        "status": sorted({f.status for f in found}),
    }


@dataclass(frozen=True)
class Detail:
    finding: Finding
    description: str
    remediation: str
    evidence: tuple[dict[str, Any], ...]
    controls: tuple[dict[str, str], ...]


def finding_detail(found: tuple[Finding, ...], finding_id: str) -> Detail | None:
    f = next((f for f in found if f.finding_id == finding_id), None)
    if f is None:
        return None
    det = registry.load().get(f.detection_id)
    return Detail(
        finding=f,
        description=det.description if det else "",
        remediation=det.remediation if det else "",
        evidence=tuple(dict(e) for e in f.evidence),
        controls=tuple(f.controls),
    )


def suppress(
    path: Path, f: Finding, owner: str, reason: str, expires: date, match: str = "finding_id"
) -> suppressions.Suppression:
    """Append a suppression of ``f`` (matched on its ``match`` key) to the suppressions file."""
    if not owner.strip() or not reason.strip():
        raise ValueError("owner and reason are required")
    if expires < datetime.now(UTC).date():
        raise ValueError("expiry must not be in the past")
    value = getattr(f, match, None) if match in suppressions.MATCH_KEYS else None
    if not value:
        raise ValueError(f"this finding has no {match}")
    entry = suppressions.Suppression(
        f.detection_id, {match: str(value)}, owner.strip(), reason.strip(), expires
    )
    suppressions.add(path, entry)
    return entry


def control_findings(
    found: tuple[Finding, ...], framework_id: str, control_id: str
) -> tuple[dict[str, Any], ...]:
    """Findings that evidence a gap in one control, active first."""
    kept = [
        f
        for f in found
        if any(c["framework"] == framework_id and c["control_id"] == control_id for c in f.controls)
    ]
    return tuple(finding_row(f) for f in sorted(kept, key=_rank))


# -------------------------------------------------------------------------- overview


@dataclass(frozen=True)
class Overview:
    by_severity: tuple[tuple[str, int], ...]
    by_detection: tuple[tuple[str, str, int], ...]
    #: (day, severity, findings first seen that day), active findings only
    trend: tuple[tuple[str, str, int], ...]
    privilege_hours: float
    measured_grants: int
    grants: int
    exposure_per_day: tuple[tuple[str, float], ...]
    top_agents: tuple[tuple[str, float], ...]
    grants_with_decision: int
    uses_with_decision: int
    uses: int
    #: (source, last event, hours behind the newest event of any source, p95 delay seconds)
    freshness: tuple[tuple[str, str, float | None, float | None], ...]
    summary: tuple[str, ...] = field(default_factory=tuple)


def overview(con: duckdb.DuckDBPyConnection, audit: Audit) -> Overview:
    assert audit.report is not None
    rep = audit.report
    active = [f for f in audit.findings if f.status in model.ACTIVE]
    sev = Counter(f.severity for f in active)
    det = Counter((f.detection_id, f.title) for f in active)
    trend = Counter(
        (f.first_seen.date().isoformat(), f.severity) for f in active if f.first_seen is not None
    )
    cur = con.cursor()
    try:
        with_decision = cur.execute(
            "SELECT count(*) FILTER (WHERE decision_id IS NOT NULL OR approval IS NOT NULL) "
            "FROM replay_grants"
        ).fetchall()[0][0]
        # a use is covered when a policy decision names its request (Envoy ext_authz → OPA)
        uses, covered = cur.execute(
            """SELECT count(*), count(*) FILTER (WHERE request_id IN (
                   SELECT request_id FROM decisions WHERE request_id IS NOT NULL))
               FROM uses"""
        ).fetchall()[0]
    finally:
        cur.close()
    newest = max((s.last_event for s in rep.completeness.sources if s.last_event), default=None)
    freshness = tuple(
        (
            s.source,
            s.last_event.isoformat(sep=" ") if s.last_event else "never",
            (newest - s.last_event).total_seconds() / 3600 if newest and s.last_event else None,
            s.p95_delay_seconds,
        )
        for s in rep.completeness.sources
    )
    exp = rep.exposure
    return Overview(
        by_severity=tuple((s, sev[s]) for s in model.SEVERITY_ORDER if sev[s]),
        by_detection=tuple((d, t, n) for (d, t), n in sorted(det.items(), key=lambda x: -x[1])),
        trend=tuple((d, s, n) for (d, s), n in sorted(trend.items())),
        privilege_hours=exp.total_hours,
        measured_grants=exp.measured_grants,
        grants=exp.grants,
        exposure_per_day=tuple((d.isoformat(), h) for d, h in exp.per_day),
        top_agents=tuple(
            (a.agent_id or "(unknown)", a.privilege_hours) for a in exp.per_agent[:10]
        ),
        grants_with_decision=int(with_decision),
        uses_with_decision=int(covered),
        uses=int(uses),
        freshness=freshness,
        summary=rep.summary,
    )


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Sources:
    #: (source, hour, records)
    volume: tuple[tuple[str, str, int], ...]
    #: (source, hour, p95 delivery delay in seconds)
    delay: tuple[tuple[str, str, float], ...]
    #: (source, records, first, last, p95 delay s, max delay s, quarantined)
    summary: tuple[tuple[str, int, str, str, float | None, float | None, int], ...]
    #: (source, JIT-014 finding summary): late deliveries and silent windows
    silent: tuple[tuple[str, str], ...]
    #: (source, reason, count), most frequent first
    quarantine: tuple[tuple[str, str, int], ...]


def sources(con: duckdb.DuckDBPyConnection, audit: Audit) -> Sources:
    assert audit.report is not None
    comp = audit.report.completeness
    delay = "greatest(date_diff('millisecond', event_time, logged_time), 0) / 1000.0"
    cur = con.cursor()
    try:
        rows = cur.execute(
            f"""SELECT source, strftime(date_trunc('hour', event_time), '%Y-%m-%dT%H:%M:%S'),
                       count(*), quantile_cont({delay}, 0.95)
                FROM ({model._events_sql()}) WHERE event_time IS NOT NULL
                GROUP BY 1, 2 ORDER BY 1, 2"""
        ).fetchall()
    finally:
        cur.close()

    def iso(t: datetime | None) -> str:
        return t.isoformat(sep=" ") if t else ""

    return Sources(
        volume=tuple((str(s), str(h), int(n)) for s, h, n, _ in rows),
        delay=tuple((str(s), str(h), float(d)) for s, h, _, d in rows if d is not None),
        summary=tuple(
            (
                s.source,
                s.records,
                iso(s.first_event),
                iso(s.last_event),
                s.p95_delay_seconds,
                s.max_delay_seconds,
                s.quarantined,
            )
            for s in comp.sources
        ),
        silent=tuple((s.source, text) for s in comp.sources for text in s.delay_findings),
        quarantine=comp.quarantine,
    )
