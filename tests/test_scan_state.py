"""The state a scan leaves for the next one, and the findings history it appends to the lake:
what is saved comes back unchanged, resolved findings leave the state but stay in the history,
a crash while saving leaves the previous state whole, and an older state means a full scan."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from jitaudit import scan_state
from jitaudit.detections.evidence import STRUCTURE, Evidence
from jitaudit.detections.runner import Coverage, Finding
from jitaudit.lake import Lake
from jitaudit.scan import ScanResult, scan
from jitaudit.schema import EVIDENCE
from tests.test_incremental_slices import T0, _commit, _grant, _use

AT = datetime(2026, 3, 2, 8, 0, 0)


def _evidence(n: int) -> list[dict[str, object]]:
    return [
        {
            "table": "uses",
            "event_id": f"u-{i}",
            "source": "envoy",
            "source_file": f'/logs/é "quoted" {i}.log',
            "source_offset": i * 1000,
        }
        for i in range(n)
    ]


def _finding(n: int, status: str) -> Finding:
    return Finding(
        finding_id=f"jit-{n:024d}",
        detection_id="JIT-003",
        title="Credential used after expiry",
        severity="high",
        subject=f"grant:g-{n}",
        agent_id=f"agent-{n}",
        principal_id=None,
        credential_id=f"cred-{n}",
        task_id=None,
        first_seen=T0 + timedelta(minutes=n),
        last_seen=T0 + timedelta(minutes=n + 5),
        summary=f"summary {n}",
        events=n + 1,
        evidence=_evidence(n + 1),
        status=status,
    )


def _result(findings: list[Finding], scan_id: str = "scan-1") -> ScanResult:
    return ScanResult(
        scan_id=scan_id,
        scanned_at=AT,
        mode="full",
        watermark=3,
        detections=["JIT-003"],
        findings=findings,
        coverage=[Coverage("JIT-003", 10, 2)],
    )


def test_evidence_is_the_same_rows_as_text_or_as_dicts() -> None:
    rows = _evidence(3)
    as_rows, as_text = Evidence(rows), Evidence(text=Evidence(rows).text)
    assert as_rows == as_text == rows
    assert list(as_text) == rows and len(as_text) == 3 and as_text[1] == rows[1]
    assert as_text[:2] == rows[:2]
    assert Evidence.of(None) == [] and Evidence.of(as_text) is as_text
    assert Evidence.of(as_text.text) == rows
    with pytest.raises(ValueError):
        Evidence(rows, text="[]")


def test_evidence_structure_is_the_schema_of_the_findings_table() -> None:
    con = duckdb.connect()
    got = con.sql(f"SELECT from_json('[]', '{STRUCTURE}') AS e").to_arrow_table()
    assert got.schema.field("e").type.value_type == EVIDENCE


def test_saved_state_brings_back_the_open_findings_and_the_history_keeps_all(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path / "lake")
    findings = [
        _finding(0, "new"),
        _finding(1, "open"),
        _finding(2, "resolved"),
        _finding(3, "suppressed"),
    ]
    scan_state.attach_controls(findings)
    scan_state.save(lake, _result(findings), digest="d1")

    saved = scan_state.load(lake)
    assert saved is not None
    assert (saved.scan_id, saved.scanned_at, saved.watermark, saved.digest) == (
        "scan-1",
        AT,
        3,
        "d1",
    )
    assert saved.coverage == [Coverage("JIT-003", 10, 2)]
    open_ = [f for f in findings if f.status != "resolved"]
    assert [f.to_json() for f in saved.findings] == [f.to_json() for f in open_]
    assert [f.subject for f in saved.findings] == [f.subject for f in open_]

    con = duckdb.connect()
    lake.connect(con)
    history = con.execute(
        "SELECT finding_id, status, evidence, controls, first_seen FROM findings ORDER BY 1"
    ).fetchall()
    assert [(h[0], h[1]) for h in history] == [(f.finding_id, f.status) for f in findings]
    assert [h[2] for h in history] == [list(f.evidence) for f in findings]
    assert [h[3] for h in history] == [f.controls for f in findings]
    assert all(h[3] for h in history)  # the catalogue's controls, not an empty list
    assert [h[4] for h in history] == [f.first_seen for f in findings]


def test_a_crash_while_saving_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(tmp_path / "lake")
    scan_state.save(lake, _result([_finding(0, "new")], "scan-1"), digest="d1")

    real = orjson.dumps

    def fail_on_the_state(doc: object, *a: object, **k: object) -> bytes:
        if isinstance(doc, dict) and doc.get("scan_id") == "scan-2":
            raise OSError("disk full")
        return real(doc, *a, **k)

    monkeypatch.setattr(scan_state.orjson, "dumps", fail_on_the_state)
    with pytest.raises(OSError):
        scan_state.save(lake, _result([_finding(1, "new")], "scan-2"), digest="d2")
    monkeypatch.undo()

    saved = scan_state.load(lake)
    assert saved is not None and saved.scan_id == "scan-1"
    assert [f.finding_id for f in saved.findings] == [_finding(0, "new").finding_id]
    # the next save that completes leaves only its own findings file
    scan_state.save(lake, _result([_finding(2, "new")], "scan-3"), digest="d3")
    assert sorted(p.name for p in (lake.root / "_meta").glob("scan_state-*")) == [
        "scan_state-scan-3.parquet"
    ]


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_state_whose_findings_file_is_damaged_is_no_state(tmp_path: Path, damage: str) -> None:
    lake = Lake(tmp_path / "lake")
    scan_state.save(lake, _result([_finding(0, "new")]), digest="d1")
    (parquet,) = (lake.root / "_meta").glob("scan_state-*.parquet")
    if damage == "deleted":
        parquet.unlink()
    else:
        parquet.write_bytes(parquet.read_bytes()[:100])
    assert scan_state.load(lake) is None


def test_a_state_of_an_older_version_makes_the_next_scan_full(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    g = T0
    _commit(lake, "b1", grants=[_grant(0, g, "c1")], uses=[_use(0, g + timedelta(hours=2), "c1")])
    first = scan(lake)
    assert first.mode == "full" and first.findings
    assert scan(lake).mode == "unchanged"
    path = lake.root / "_meta" / scan_state.STATE_FILE
    doc = orjson.loads(path.read_bytes())
    path.write_bytes(orjson.dumps({**doc, "version": scan_state.STATE_VERSION - 1}))
    again = scan(lake)
    assert again.mode == "full"
    assert {f.finding_id for f in again.findings} == {f.finding_id for f in first.findings}
    assert {f.status for f in again.findings} == {"new"}  # nothing carried over
