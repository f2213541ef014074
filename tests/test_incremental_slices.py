"""Incremental scans over a slice of the lake: cases where what arrives later changes what was
judged before — a late grant makes old uses verifiable, a success after a burst of denials
turns it into an escalation episode, a late renewal ends a grant's expiry — each equals a full
scan of the same lake, findings and coverage both."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from jitaudit import scan as scan_module
from jitaudit.conform import conform
from jitaudit.ingest import ingest
from jitaudit.lake import InputRef, Lake
from jitaudit.scan import ScanResult, scan
from jitaudit.schema import spec
from tests.conftest import FIXTURES

T0 = datetime(2026, 3, 1, 10, 0, 0)


def _row(table: str, n: int, **values: Any) -> dict[str, Any]:
    base = {
        "source": "test",
        "source_file": f"test://{table}",
        "source_offset": n,
        "event_id": f"{table}-{n}",
        "ingested_at": T0,
    }
    base.update(values)
    base.setdefault("logged_time", base.get("event_time"))
    return base


def _commit(lake: Lake, name: str, **tables: list[dict[str, Any]]) -> None:
    con = duckdb.connect()
    good = {}
    for table, rows in tables.items():
        schema = spec(table).schema
        full = [{f.name: r.get(f.name) for f in schema} for r in rows]
        rel = con.from_arrow(pa.Table.from_pylist(full, schema=schema))
        good[table] = conform(con, table, rel).good
    lake.commit(con, good, [InputRef(name, name, "test")])
    con.close()


def _use(n: int, at: datetime, credential: str, outcome: str = "success", **kw: Any) -> dict:
    return _row(
        "uses",
        n,
        event_time=at,
        credential_id=credential,
        agent_id=kw.pop("agent_id", "a"),
        action=kw.pop("action", "s3:GetObject"),
        resource=kw.pop("resource", "arn:aws:s3:::hr/x"),
        target=kw.pop("target", "s3"),
        outcome=outcome,
        **kw,
    )


def _grant(n: int, at: datetime, credential: str, hours: float = 1, **kw: Any) -> dict:
    return _row(
        "grants",
        n,
        event_time=at,
        grant_id=f"g-{credential}",
        credential_id=credential,
        agent_id="a",
        issued_at=at,
        expires_at=at + timedelta(hours=hours),
        scope=kw.pop("scope", ["s3:GetObject"]),
        targets=kw.pop("targets", ["s3"]),
        **kw,
    )


def _view(result: ScanResult) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    findings = sorted(
        (f.finding_id, f.detection_id, f.events, f.first_seen, f.last_seen, f.summary)
        for f in result.findings
        if f.status != "resolved"
    )
    return findings, [c.to_json() for c in result.coverage]


def _equal_to_full(lake: Lake) -> ScanResult:
    inc = scan(lake)
    assert inc.mode == "incremental"
    assert _view(inc) == _view(scan(lake, full=True, persist=False))
    return inc


def test_a_late_grant_makes_earlier_uses_verifiable(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    uses = [_use(i, T0 + timedelta(minutes=10 * i), "c1") for i in range(3)]
    uses += [_use(10 + i, T0 + timedelta(hours=20, minutes=i), "c9") for i in range(3)]
    _commit(lake, "uses", uses=uses)
    first = scan(lake)
    unverified = {c.detection_id: c.unverifiable for c in first.coverage}
    assert unverified["JIT-003"] == 6  # no grant explains any use yet
    # the broker's log for c1 arrives a day late; c9 stays unexplained
    _commit(lake, "late grant", grants=[_grant(1, T0 - timedelta(minutes=1), "c1")])
    inc = _equal_to_full(lake)
    assert {c.detection_id: c.unverifiable for c in inc.coverage}["JIT-003"] == 3


def test_a_success_after_denials_completes_an_escalation_episode(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    denials = [_use(i, T0 + timedelta(minutes=2 * i), "c1", "denied") for i in range(5)]
    # an older, unrelated episode of the same agent far from the new data must be kept
    old = [_use(20 + i, T0 - timedelta(days=1, minutes=-i), "c0", "denied") for i in range(5)]
    old.append(_use(30, T0 - timedelta(days=1, minutes=-30), "c2"))
    _commit(lake, "denials", uses=denials + old)
    assert [f.subject for f in scan(lake).findings if f.detection_id == "JIT-012"] == [
        "agent:a|escalation:2026-02-28 10:00:00"
    ]
    _commit(lake, "success", uses=[_use(40, T0 + timedelta(minutes=40), "c3")])
    inc = _equal_to_full(lake)
    assert sorted(f.subject for f in inc.findings if f.detection_id == "JIT-012") == [
        "agent:a|escalation:2026-02-28 10:00:00",
        "agent:a|escalation:2026-03-01 10:00:00",
    ]


def test_a_late_renewal_changes_an_old_grants_verdict(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    grant = _grant(1, T0, "c1", hours=1)
    late_use = _use(1, T0 + timedelta(hours=2), "c1")  # after the declared expiry
    noise = [_use(100 + i, T0 + timedelta(hours=30, minutes=i), "c7") for i in range(3)]
    _commit(lake, "base", grants=[grant], uses=[late_use, *noise])
    assert {f.detection_id for f in scan(lake).findings} >= {"JIT-002"}
    renewal = _row(
        "grant_events",
        1,
        event_time=T0 + timedelta(minutes=50),
        grant_id="g-c1",
        credential_id="c1",
        kind="renew",
        new_expires_at=T0 + timedelta(hours=3),
    )
    _commit(lake, "renewal", grant_events=[renewal])
    inc = _equal_to_full(lake)
    assert "JIT-002" not in {f.detection_id for f in inc.findings if f.status != "resolved"}


def test_whole_history_detections_rerun_only_when_their_tables_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(tmp_path / "lake")
    # back-to-back grants of one agent on one target for 9 h: standing access (JIT-006)
    grants = [_grant(i, T0 + timedelta(minutes=30 * i), f"c{i}", hours=0.5) for i in range(18)]
    _commit(lake, "grants", grants=grants, uses=[_use(1, T0, "c0")])
    assert "JIT-006" in {f.detection_id for f in scan(lake).findings}
    ran: list[str] = []
    real = scan_module.run_detection

    def spy(con: duckdb.DuckDBPyConnection, det: Any, *args: Any, **kw: Any) -> Any:
        ran.append(det.id)
        return real(con, det, *args, **kw)

    monkeypatch.setattr(scan_module, "run_detection", spy)
    # a batch of proxy logs only: nothing JIT-006 reads has changed, JIT-014 reads every table
    _commit(lake, "uses", uses=[_use(2, T0 + timedelta(hours=1), "c2")])
    _equal_to_full(lake)
    assert ran.count("JIT-006") == 1  # the full scan's, not the incremental one's
    assert ran.count("JIT-014") == 2


def test_otel_spans_whose_parents_arrive_later_resolve_as_in_a_full_scan(tmp_path: Path) -> None:
    """The worker's tool calls reach the lake first, its agent run and the planner's spans in
    later batches (an exporter sends a span when it ends); each scan equals a full one. The
    tool calls come four hours into the run: outside the hours around the run's own start."""
    otel = FIXTURES / "otel"
    export = json.loads((otel / "worker-tools-first.jsonl").read_text())
    for span in export["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("startTimeUnixNano", "endTimeUnixNano"):
            span[key] = int(span[key]) + 4 * 3600 * 10**9
    late_tools = tmp_path / "worker-tools.jsonl"
    late_tools.write_text(json.dumps(export) + "\n")
    lake = Lake(tmp_path / "lake")
    ingest([late_tools], lake)
    first = scan(lake)
    agentless = {c.detection_id: c.unverifiable for c in first.coverage}["JIT-012"]
    assert agentless == 1  # the denied tool call: its agent is not known yet
    ingest([otel / "worker-agent-last.jsonl"], lake)
    inc = _equal_to_full(lake)
    assert {c.detection_id: c.unverifiable for c in inc.coverage}["JIT-012"] == 0
    ingest([otel / "planner.jsonl"], lake)
    _equal_to_full(lake)


def test_a_credential_used_by_a_waiting_tool_call_is_rejudged_when_its_agent_arrives(
    tmp_path: Path,
) -> None:
    """The tool call carries a credential whose grant names another agent: until the agent run
    above the call arrives, the grant's agent is the best known; afterwards the run's agent
    is, and the grant's finding must say so in an incremental scan as in a full one."""
    otel = FIXTURES / "otel"
    export = json.loads((otel / "worker-tools-first.jsonl").read_text())
    scope = export["resourceSpans"][0]["scopeSpans"][0]
    (call,) = [s for s in scope["spans"] if s["spanId"] == "a1b2c3d4e5f60003"]
    call["status"] = {}  # a successful http_get, four hours into the run, with a credential
    call["attributes"] = [a for a in call["attributes"] if a["key"] != "error.type"]
    call["attributes"].append({"key": "credential.id", "value": {"stringValue": "cred-w"}})
    for key in ("startTimeUnixNano", "endTimeUnixNano"):
        call[key] = int(call[key]) + 4 * 3600 * 10**9
    scope["spans"] = [call]
    tools = tmp_path / "worker-tools.jsonl"
    tools.write_text(json.dumps(export) + "\n")
    lake = Lake(tmp_path / "lake")
    issued = datetime(2026, 11, 1, 13, 0, 0)
    # a grant for cred-w whose scope leaves http_get out: a JIT-001 finding on the grant
    _commit(
        lake, "grant", grants=[_grant(1, issued, "cred-w", hours=3, targets=["api.example.com"])]
    )
    ingest([tools], lake)
    first = [f for f in scan(lake).findings if f.detection_id == "JIT-001"]
    assert [(f.subject, f.agent_id) for f in first] == [("grant:g-cred-w", "a")]
    ingest([otel / "worker-agent-last.jsonl"], lake)
    inc = _equal_to_full(lake)
    now = [f for f in inc.findings if f.detection_id == "JIT-001" and f.status != "resolved"]
    assert [(f.subject, f.agent_id) for f in now] == [("grant:g-cred-w", "asst_worker")]


def test_a_loop_span_arriving_later_resolves_as_in_a_full_scan(tmp_path: Path) -> None:
    """Strands: the Orchestrator's run is in the lake, then the inner agent's spans, and last
    the Orchestrator's loop span between them, alone in its export (span links only, no use or
    task row). The link resolves research_assistant's agent: the grant finding of the
    credential that call used names the Orchestrator in the incremental scan as in a full one."""
    inner, outer = gzip.decompress(
        (FIXTURES / "otel" / "strands-agent-as-tool.jsonl.gz").read_bytes()
    ).splitlines()
    calls = json.loads(inner)
    for span in calls["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        if span["name"] == "execute_tool research_assistant":
            span["attributes"].append({"key": "credential.id", "value": {"stringValue": "cred-r"}})
    request = json.loads(outer)
    spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
    loop = [s for s in spans if s["name"] == "execute_event_loop_cycle"]

    def export(name: str, body: dict[str, Any]) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(body) + "\n")
        return path

    request["resourceSpans"][0]["scopeSpans"][0]["spans"] = [s for s in spans if s not in loop]
    orchestrator = export("orchestrator.jsonl", request)
    request["resourceSpans"][0]["scopeSpans"][0]["spans"] = loop
    loop_only = export("loop.jsonl", request)
    lake = Lake(tmp_path / "lake")
    # cred-r's grant (agent "a") does not cover the research_assistant call: a JIT-001 finding
    _commit(lake, "grant", grants=[_grant(1, datetime(2025, 12, 31, 23), "cred-r", hours=3)])
    ingest([orchestrator], lake)
    scan(lake)
    ingest([export("inner.jsonl", calls)], lake)
    before = _equal_to_full(lake)
    ingest([loop_only], lake)
    after = _equal_to_full(lake)

    def agents(result: ScanResult) -> list[str | None]:
        return [
            f.agent_id
            for f in result.findings
            if f.detection_id == "JIT-001" and f.status != "resolved"
        ]

    assert (agents(before), agents(after)) == (["a"], ["Orchestrator"])
