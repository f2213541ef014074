"""The report model: everything a report says, computed once from a lake and a scan.

Every renderer (html, md, json, oscal, pdf) reads this model and nothing else, so the formats
cannot disagree. Strings that came from logs (agent ids, summaries, sources, quarantine
reasons, evidence lineage) are kept raw here; escaping is each renderer's job.

Control states follow ARCHITECTURE §6: a finding *evidences a gap*; the absence of findings
says *no gap found* only when some detection of the control verified at least one subject on
this lake; otherwise the control is *not assessable* on these sources. Nothing here says a
control is satisfied or compliant.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from jitaudit import __version__, catalog, replay
from jitaudit.detections import registry
from jitaudit.detections.runner import Coverage, Finding
from jitaudit.lake import Lake

if TYPE_CHECKING:
    from jitaudit.scan import ScanResult

GAP = "gap evidenced"
NO_GAP = "no gap found"
NOT_ASSESSABLE = "not assessable"
STATES = (GAP, NO_GAP, NOT_ASSESSABLE)
#: finding statuses that evidence a gap now (suppressed = accepted; resolved = gone)
ACTIVE = ("new", "open")
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
EVENT_TABLES = ("grants", "grant_events", "uses", "decisions", "tasks")
DELAY_DETECTION = "JIT-014"


@dataclass(frozen=True)
class DetectionState:
    """What one detection could say on this lake."""

    detection_id: str
    name: str
    title: str
    severity: str
    state: str
    active_findings: int
    suppressed_findings: int
    verifiable: int | None
    unverifiable: int | None
    reason: str


@dataclass(frozen=True)
class ControlState:
    framework_id: str
    control_id: str
    title: str
    url: str
    state: str
    detections: tuple[str, ...]
    active_findings: int
    reason: str


@dataclass(frozen=True)
class FrameworkSection:
    framework: catalog.Framework
    controls: tuple[ControlState, ...]

    def count(self, state: str) -> int:
        return sum(1 for c in self.controls if c.state == state)


@dataclass(frozen=True)
class AgentExposure:
    agent_id: str | None
    grants: int
    measured_grants: int
    privilege_hours: float
    unknown_scope: int
    unknown_expiry: int


@dataclass(frozen=True)
class Exposure:
    """Standing privilege: privilege-hours = hours valid × scope items, per agent and per day.

    A grant whose scope or expiry the logs do not record is counted as unverifiable, never
    guessed. Validity is counted up to the last logged event (time after it has not elapsed).
    """

    per_agent: tuple[AgentExposure, ...]
    per_day: tuple[tuple[date, float], ...]
    total_hours: float
    grants: int
    measured_grants: int
    unknown_scope: int
    unknown_expiry: int


@dataclass(frozen=True)
class SourceCompleteness:
    source: str
    records: int
    first_event: datetime | None
    last_event: datetime | None
    with_delivery_time: int
    p95_delay_seconds: float | None
    max_delay_seconds: float | None
    quarantined: int
    #: JIT-014 finding summaries naming this source (delays and silent windows)
    delay_findings: tuple[str, ...]


@dataclass(frozen=True)
class Completeness:
    sources: tuple[SourceCompleteness, ...]
    #: (source, reason, count), most frequent first
    quarantine: tuple[tuple[str, str, int], ...]

    @property
    def quarantined(self) -> int:
        return sum(n for _, _, n in self.quarantine)


@dataclass(frozen=True)
class Scope:
    start: datetime | None
    end: datetime | None
    sources: tuple[str, ...]
    agents: tuple[str, ...]


@dataclass(frozen=True)
class Stamp:
    """What reproduces this report: the lake content, the catalogue and the detections."""

    lake_digest: str
    watermark: int
    jitaudit_version: str
    generated_at: datetime
    scan_id: str
    scan_mode: str
    #: (framework id, version) of each catalogue file the report used
    catalogue: tuple[tuple[str, str], ...]
    #: (detection id, sha-256 prefix of its SQL, coverage query and metadata)
    detections: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Report:
    title: str
    scope: Scope
    summary: tuple[str, ...]
    frameworks: tuple[FrameworkSection, ...]
    detections: tuple[DetectionState, ...]
    findings: tuple[Finding, ...]
    exposure: Exposure
    completeness: Completeness
    method: tuple[str, ...]
    limits: tuple[str, ...]
    stamp: Stamp
    framework_filter: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------ states


def detection_state(
    det_id: str, findings: Sequence[Finding], coverage: Coverage | None, ran: bool
) -> DetectionState:
    """The state of one detection from its findings and coverage on this lake."""
    det = registry.load().get(det_id)
    mine = [f for f in findings if f.detection_id == det_id]
    active = sum(1 for f in mine if f.status in ACTIVE)
    suppressed = sum(1 for f in mine if f.status == "suppressed")
    verifiable = coverage.verifiable if coverage else None
    unverifiable = coverage.unverifiable if coverage else None
    if active:
        state, reason = GAP, f"{active} new or open finding(s)"
    elif not ran:
        state, reason = NOT_ASSESSABLE, "not run in this scan (disabled or not selected)"
    elif verifiable is None:
        state, reason = NOT_ASSESSABLE, "the detection measures no coverage"
    elif verifiable == 0:
        state = NOT_ASSESSABLE
        reason = (
            "no subject could be verified on these sources"
            + (f" ({unverifiable} lack the facts it needs)" if unverifiable else "")
            + f"; it needs {', '.join(det.tables) if det else 'tables absent from this lake'}"
        )
    else:
        state = NO_GAP
        reason = f"verified {verifiable} subject(s), no new or open finding" + (
            f" ({unverifiable} unverifiable)" if unverifiable else ""
        )
        if suppressed:
            reason += f"; {suppressed} suppressed finding(s)"
    return DetectionState(
        detection_id=det_id,
        name=det.name if det else det_id,
        title=det.title if det else det_id,
        severity=det.severity if det else "info",
        state=state,
        active_findings=active,
        suppressed_findings=suppressed,
        verifiable=verifiable,
        unverifiable=unverifiable,
        reason=reason,
    )


def control_state(
    framework_id: str, control: catalog.Control, detections: dict[str, DetectionState]
) -> ControlState:
    """Gap evidenced when a detection of the control has findings; no gap found when one
    verified something and none found anything; not assessable otherwise."""
    states = [detections[d] for d in control.detections if d in detections]
    active = sum(s.active_findings for s in states)
    blind = [s.detection_id for s in states if s.state == NOT_ASSESSABLE]
    if not control.detections:
        state, reason = NOT_ASSESSABLE, "no jitaudit detection evidences this control"
    elif active:
        gaps = [s.detection_id for s in states if s.state == GAP]
        state, reason = GAP, f"{active} finding(s) from {', '.join(gaps)}"
    elif any(s.state == NO_GAP for s in states):
        seen = [s.detection_id for s in states if s.state == NO_GAP]
        state, reason = NO_GAP, f"measured by {', '.join(seen)}"
        if blind:
            reason += f"; not assessable here: {', '.join(blind)}"
    else:
        state = NOT_ASSESSABLE
        reason = (
            f"its detections ({', '.join(control.detections)}) verified nothing on these sources"
        )
    return ControlState(
        framework_id=framework_id,
        control_id=control.id,
        title=control.title,
        url=control.url,
        state=state,
        detections=control.detections,
        active_findings=active,
        reason=reason,
    )


# ------------------------------------------------------------------------------ lake facts


def _connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        config={
            "memory_limit": os.environ.get("JITAUDIT_MEMORY_LIMIT", "4GB"),
        },
    )
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # progress is reported per detection
    lake.connect(con)
    replay.register(con, materialise=True)
    return con


def _events_sql() -> str:
    return " UNION ALL ".join(
        f"SELECT source, event_time, logged_time, "
        f"{'CAST(NULL AS VARCHAR)' if t == 'grant_events' else 'agent_id'} AS agent_id FROM {t}"
        for t in EVENT_TABLES
    )


def _scope(con: duckdb.DuckDBPyConnection) -> Scope:
    start, end = con.execute(
        f"SELECT min(event_time), max(event_time) FROM ({_events_sql()})"
    ).fetchall()[0]
    sources = [
        r[0]
        for r in con.execute(f"SELECT DISTINCT source FROM ({_events_sql()}) ORDER BY 1").fetchall()
    ]
    agents = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT agent_id FROM ({_events_sql()} UNION ALL "
            "SELECT source, event_time, NULL, agent_id FROM replay_grants) "
            "WHERE agent_id IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    return Scope(start, end, tuple(sources), tuple(agents))


def _exposure(con: duckdb.DuckDBPyConnection, end: datetime | None) -> Exposure:
    horizon = end or datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _exposure AS
        SELECT agent_id, issued_at, least(valid_until, CAST(? AS TIMESTAMP)) AS until,
               scope IS NULL AS unknown_scope, valid_until IS NULL AS unknown_expiry,
               CASE WHEN scope IS NULL THEN NULL ELSE len(scope) END AS items
        FROM replay_grants""",
        [horizon],
    )
    measured = "NOT unknown_scope AND NOT unknown_expiry AND issued_at IS NOT NULL"
    hours = "greatest(date_diff('second', issued_at, until), 0) / 3600.0 * items"
    agents = [
        AgentExposure(a, int(n), int(m), float(ph or 0.0), int(us), int(ue))
        for a, n, m, ph, us, ue in con.execute(
            f"""SELECT agent_id, count(*), count(*) FILTER (WHERE {measured}),
                   sum(CASE WHEN {measured} THEN {hours} END),
                   count(*) FILTER (WHERE unknown_scope), count(*) FILTER (WHERE unknown_expiry)
            FROM _exposure GROUP BY agent_id ORDER BY 4 DESC NULLS LAST, agent_id NULLS LAST"""
        ).fetchall()
    ]
    days = [
        (d, float(h or 0.0))
        for d, h in con.execute(
            f"""WITH m AS (SELECT issued_at, until, items FROM _exposure
                           WHERE {measured} AND until > issued_at),
                 d AS (SELECT m.*, UNNEST(generate_series(date_trunc('day', issued_at),
                                                          date_trunc('day', until),
                                                          INTERVAL 1 DAY)) AS day FROM m)
            SELECT CAST(day AS DATE), sum(greatest(date_diff('second', greatest(issued_at, day),
                                                    least(until, day + INTERVAL 1 DAY)), 0)
                                          / 3600.0 * items)
            FROM d GROUP BY 1 ORDER BY 1"""
        ).fetchall()
    ]
    return Exposure(
        per_agent=tuple(agents),
        per_day=tuple(days),
        total_hours=sum(a.privilege_hours for a in agents),
        grants=sum(a.grants for a in agents),
        measured_grants=sum(a.measured_grants for a in agents),
        unknown_scope=sum(a.unknown_scope for a in agents),
        unknown_expiry=sum(a.unknown_expiry for a in agents),
    )


def _completeness(con: duckdb.DuckDBPyConnection, findings: Sequence[Finding]) -> Completeness:
    quarantine = [
        (str(s), str(r), int(n))
        for s, r, n in con.execute(
            "SELECT source, reason, count(*) FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
        ).fetchall()
    ]
    per_source_q: dict[str, int] = {}
    for s, _, n in quarantine:
        per_source_q[s] = per_source_q.get(s, 0) + n
    delay = "greatest(date_diff('millisecond', event_time, logged_time), 0) / 1000.0"
    rows = con.execute(
        f"""SELECT source, count(*), min(event_time), max(event_time), count(logged_time),
               quantile_cont({delay}, 0.95) FILTER (WHERE logged_time IS NOT NULL),
               max({delay}) FILTER (WHERE logged_time IS NOT NULL)
        FROM ({_events_sql()}) GROUP BY source ORDER BY source"""
    ).fetchall()
    delays: dict[str, list[str]] = {}
    for f in findings:
        if f.detection_id == DELAY_DETECTION and f.subject.startswith("source:"):
            src = f.subject[len("source:") :].split("|", 1)[0]
            delays.setdefault(src, []).append(f.summary)
    sources = [
        SourceCompleteness(
            source=str(s),
            records=int(n),
            first_event=first,
            last_event=last,
            with_delivery_time=int(logged),
            p95_delay_seconds=None if p95 is None else float(p95),
            max_delay_seconds=None if mx is None else float(mx),
            quarantined=per_source_q.pop(str(s), 0),
            delay_findings=tuple(delays.get(str(s), ())),
        )
        for s, n, first, last, logged, p95, mx in rows
    ]
    # a source whose every record was quarantined still belongs in the table
    for s, n in sorted(per_source_q.items()):
        sources.append(SourceCompleteness(s, 0, None, None, 0, None, None, n, ()))
    return Completeness(tuple(sources), tuple(quarantine))


def _stamp(lake: Lake, result: ScanResult, frameworks: Sequence[catalog.Framework]) -> Stamp:
    dets = registry.load()
    det_digests = []
    for did in result.detections:
        d = dets[did]
        h = hashlib.sha256(
            f"{d.sql}\0{d.coverage}\0{d.summary}\0{d.severity}\0{d.parameters}".encode()
        )
        det_digests.append((did, h.hexdigest()[:16]))
    return Stamp(
        lake_digest=lake.digest(),
        watermark=lake.watermark(),
        jitaudit_version=__version__,
        generated_at=datetime.now(UTC).replace(tzinfo=None, microsecond=0),
        scan_id=result.scan_id,
        scan_mode=result.mode,
        catalogue=tuple((fw.id, fw.version) for fw in frameworks),
        detections=tuple(det_digests),
    )


# ------------------------------------------------------------------------------ text


def _summary(
    sections: Sequence[FrameworkSection],
    findings: Sequence[Finding],
    exposure: Exposure,
    completeness: Completeness,
    scope: Scope,
) -> tuple[str, ...]:
    active = [f for f in findings if f.status in ACTIVE]
    by_sev = {s: sum(1 for f in active if f.severity == s) for s in SEVERITY_ORDER}
    sev = ", ".join(f"{n} {s}" for s, n in by_sev.items() if n) or "none"
    gap = sum(s.count(GAP) for s in sections)
    no_gap = sum(s.count(NO_GAP) for s in sections)
    blind = sum(s.count(NOT_ASSESSABLE) for s in sections)
    total = sum(len(s.controls) for s in sections)
    lines = [
        f"{len(active)} new or open finding(s) ({sev}) from "
        f"{len({f.detection_id for f in active})} detection(s) evidence gaps in {gap} of "
        f"{total} control(s) across {len(sections)} framework(s).",
        f"{no_gap} control(s): no gap found where coverage was measured; {blind} control(s) "
        "not assessable on these sources (their detections could verify nothing, or no "
        "detection maps to them). No gap found is not a statement that a control is met.",
        f"Standing privilege: {exposure.total_hours:,.1f} privilege-hours (hours valid × scope "
        f"items) over {exposure.measured_grants} of {exposure.grants} grant(s); "
        f"{exposure.grants - exposure.measured_grants} grant(s) unverifiable (unknown scope "
        f"{exposure.unknown_scope}, unknown expiry {exposure.unknown_expiry}).",
    ]
    delayed = sum(len(s.delay_findings) for s in completeness.sources)
    lines.append(
        f"Logs: {len(scope.sources)} source(s), {len(scope.agents)} agent(s); "
        f"{delayed} late-delivery or silent window(s); "
        f"{completeness.quarantined} record(s) quarantined."
    )
    return tuple(lines)


METHOD = (
    "Native logs were normalised into the lake's canonical tables (grants, grant events, uses, "
    "decisions, tasks); the grant, task and use streams were replayed into validity intervals, "
    "and each detection's SQL returned the violating events, aggregated per subject into "
    "findings with their evidence lineage (table, event id, source file and offset).",
    "A control's state comes from the detections the catalogue maps to it: gap evidenced when "
    "one of them has a new or open finding; no gap found when at least one verified a subject "
    "and none found anything; not assessable when none could verify any subject on these "
    "sources or no detection maps to it.",
    "Privilege-hours = hours a grant was valid (issue to the earliest of expiry, revocation "
    "or expire event, counted up to the last logged event) × the number of its scope items.",
)
LIMITS = (
    "Unknown is neither a gap nor its absence: a grant whose scope or expiry the source does "
    "not record is unverifiable for the checks that need it and counted as such.",
    "A scope item counts as one in privilege-hours whatever it matches; a wildcard item may "
    "grant far more than one action.",
    "Findings evidence gaps; the absence of findings shows only that the measured subjects "
    "showed none, on these sources, over this time range.",
    "Silent windows and late deliveries (JIT-014) mark times when every detection reading "
    "that source was blind.",
)


# ------------------------------------------------------------------------------ build


def build(
    lake: Lake,
    *,
    framework: str | None = None,
    result: ScanResult | None = None,
    config_path: Path | None = None,
    suppressions_path: Path | None = None,
) -> Report:
    """The report model of ``lake``: scans it (without persisting) unless ``result`` is given;
    ``framework`` (a catalogue id) restricts the report to one framework."""
    frameworks = [catalog.framework(framework)] if framework else catalog.frameworks()
    if result is None:
        from jitaudit.scan import scan

        result = scan(
            lake, persist=False, config_path=config_path, suppressions_path=suppressions_path
        )
    coverage = {c.detection_id: c for c in result.coverage}
    ran = set(result.detections)
    findings = list(result.findings)
    if framework:
        wanted = frameworks[0].detection_ids
        findings = [f for f in findings if f.detection_id in wanted]
    det_ids = sorted(registry.load())
    dstates = {d: detection_state(d, result.findings, coverage.get(d), d in ran) for d in det_ids}
    sections = tuple(
        FrameworkSection(fw, tuple(control_state(fw.id, c, dstates) for c in fw.controls))
        for fw in frameworks
    )
    con = _connect(lake)
    try:
        scope = _scope(con)
        exposure = _exposure(con, scope.end)
        completeness = _completeness(con, result.findings)
    finally:
        con.close()
    findings.sort(
        key=lambda f: (
            f.status not in ACTIVE,
            SEVERITY_ORDER.index(f.severity),
            f.detection_id,
            f.finding_id,
        )
    )
    title = "jitaudit access audit report" + (
        f" — {frameworks[0].name} {frameworks[0].version}" if framework else ""
    )
    return Report(
        title=title,
        scope=scope,
        summary=_summary(sections, findings, exposure, completeness, scope),
        frameworks=sections,
        detections=tuple(
            dstates[d] for d in det_ids if not framework or d in frameworks[0].detection_ids
        ),
        findings=tuple(findings),
        exposure=exposure,
        completeness=completeness,
        method=METHOD,
        limits=LIMITS,
        stamp=_stamp(lake, result, frameworks),
        framework_filter=framework,
    )
