"""The report model: control states from findings and coverage, exposure, completeness."""

from __future__ import annotations

from pathlib import Path

from jitaudit import catalog
from jitaudit.lake import Lake
from jitaudit.report import model
from jitaudit.report.model import GAP, NO_GAP, NOT_ASSESSABLE, DetectionState

#: stale-grant needs task windows, which only the otel (and gcp-less) sample sources carry
TASK_DETECTION = "JIT-004"


def _det(did: str, state: str, active: int = 0, verifiable: int | None = 1) -> DetectionState:
    return DetectionState(did, did, did, "high", state, active, 0, verifiable, 0, "")


def _control(*detections: str) -> catalog.Control:
    return catalog.Control("X1", "Example", "https://example.org/x1", tuple(detections))


def test_control_state_rules() -> None:
    dets = {
        "JIT-001": _det("JIT-001", GAP, active=2),
        "JIT-002": _det("JIT-002", NO_GAP),
        "JIT-004": _det("JIT-004", NOT_ASSESSABLE, verifiable=0),
    }
    assert model.control_state("f", _control("JIT-001", "JIT-002"), dets).state == GAP
    no_gap = model.control_state("f", _control("JIT-002", "JIT-004"), dets)
    assert no_gap.state == NO_GAP and "JIT-004" in no_gap.reason  # the blind one is named
    assert model.control_state("f", _control("JIT-004"), dets).state == NOT_ASSESSABLE
    assert model.control_state("f", _control(), dets).state == NOT_ASSESSABLE


def test_missing_sources_make_their_detections_not_assessable(
    full_report: model.Report, partial_report: model.Report
) -> None:
    full = {d.detection_id: d for d in full_report.detections}
    partial = {d.detection_id: d for d in partial_report.detections}
    # with every source, the detection verified subjects (and evidences a gap on sample data)
    assert full[TASK_DETECTION].state in (GAP, NO_GAP)
    assert (full[TASK_DETECTION].verifiable or 0) > 0
    # without the sources that carry task windows it verified nothing: not "no gap found"
    assert partial[TASK_DETECTION].state == NOT_ASSESSABLE
    assert partial[TASK_DETECTION].verifiable == 0
    # a control that depends only on it is not assessable on the partial lake
    only = _control(TASK_DETECTION)
    assert model.control_state("f", only, partial).state == NOT_ASSESSABLE
    assert model.control_state("f", only, full).state in (GAP, NO_GAP)


def test_every_control_state_follows_its_detections(partial_report: model.Report) -> None:
    dets = {d.detection_id: d for d in partial_report.detections}
    for sec in partial_report.frameworks:
        for c in sec.controls:
            states = {dets[d].state for d in c.detections}
            if GAP in states:
                assert c.state == GAP
            elif NO_GAP in states:
                assert c.state == NO_GAP
            else:
                assert c.state == NOT_ASSESSABLE, (sec.framework.id, c.control_id)


def test_sections_scope_and_stamp(full_report: model.Report, full_lake: Lake) -> None:
    r = full_report
    assert [s.framework.id for s in r.frameworks] == [f.id for f in catalog.frameworks()]
    assert set(r.scope.sources) == {
        "cloudtrail",
        "envoy",
        "gcp",
        "kubernetes",
        "opa",
        "otel",
        "vault",
    }
    assert r.scope.start is not None and r.scope.end is not None and r.scope.start < r.scope.end
    assert r.scope.agents and r.summary
    assert r.stamp.lake_digest == full_lake.digest()
    assert len(r.stamp.detections) == 16
    # findings evidence gaps; the wording never claims a control is met
    text = " ".join(r.summary).lower()
    assert "satisfied" not in text and "compliant" not in text


def test_exposure_counts_unknowns_instead_of_guessing(full_report: model.Report) -> None:
    e = full_report.exposure
    assert e.grants == sum(a.grants for a in e.per_agent)
    assert e.measured_grants + (e.grants - e.measured_grants) == e.grants
    assert e.unknown_scope > 0  # the sample's Vault and STS grants lack scope or expiry
    assert e.total_hours > 0
    assert abs(sum(h for _, h in e.per_day) - e.total_hours) < 0.01 * e.total_hours + 0.01


def test_completeness_per_source(full_report: model.Report) -> None:
    c = full_report.completeness
    by_source = {s.source: s for s in c.sources}
    assert set(by_source) >= set(full_report.scope.sources)
    assert all(s.records > 0 for s in c.sources if s.source in full_report.scope.sources)
    # JIT-014's late or silent windows land on the source they name
    delay = [f for f in full_report.findings if f.detection_id == "JIT-014"]
    assert sum(len(s.delay_findings) for s in c.sources) == len(delay)
    assert any(s.p95_delay_seconds is not None for s in c.sources)


def test_framework_filter(full_lake: Lake) -> None:
    r = model.build(full_lake, framework="owasp-asi-2026")
    assert [s.framework.id for s in r.frameworks] == ["owasp-asi-2026"]
    wanted = r.frameworks[0].framework.detection_ids
    assert all(f.detection_id in wanted for f in r.findings)


def test_empty_lake_is_never_no_gap_found(tmp_path: Path) -> None:
    r = model.build(Lake(tmp_path / "lake"))
    states = {c.state for s in r.frameworks for c in s.controls}
    assert states == {NOT_ASSESSABLE}
    assert r.exposure.grants == 0 and r.scope.start is None
