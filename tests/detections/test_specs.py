"""Every detection against its YAML specification: given these rows, expect these findings."""

from __future__ import annotations

import pytest

from tests.detections.harness import Case, all_cases, run, unmatched

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_detection_meets_its_specification(case: Case) -> None:
    findings, coverage = run(case)
    missing, extra = unmatched(findings, case.expect)
    assert not missing and not extra, (
        f"{case.id}\n  expected but not found: {missing}\n  found but not expected: {extra}"
    )
    if case.coverage is not None:
        assert coverage is not None, f"{case.detection_id} declares no coverage query"
        got = {"verifiable": coverage.verifiable, "unverifiable": coverage.unverifiable}
        assert got == case.coverage, f"{case.id}: coverage {got}"
