"""Incremental scans equal full scans — with late-arriving data — and ingestion order does not
change the findings."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from jitaudit.ingest import ingest
from jitaudit.lake import Lake
from jitaudit.scan import ScanResult, scan
from tests.e2e.conftest import SAMPLE, log_files

pytestmark = pytest.mark.slow


def _key(result: ScanResult) -> list[tuple[Any, ...]]:
    """What a reviewer sees of a finding, minus lineage of which duplicate copy was kept."""
    return sorted(
        (
            f.finding_id,
            f.detection_id,
            f.severity,
            f.agent_id,
            f.credential_id,
            f.task_id,
            f.events,
            f.first_seen,
            f.last_seen,
            f.summary,
            tuple(e["event_id"] for e in f.evidence),
        )
        for f in result.findings
        if f.status != "resolved"
    )


@pytest.fixture(scope="module")
def full(sample_lake: Lake) -> ScanResult:
    return scan(sample_lake, full=True, persist=False)


def test_incremental_scan_over_three_batches_with_late_data_equals_a_full_scan(
    tmp_path: Path, full: ScanResult
) -> None:
    files = log_files(SAMPLE)
    # batches by delivery: the first and last thirds of each source's files arrive, then the
    # middle third arrives late (events hours older than data already scanned)
    early = [f for i, f in enumerate(files) if i % 3 == 0]
    later = [f for i, f in enumerate(files) if i % 3 == 2]
    late = [f for i, f in enumerate(files) if i % 3 == 1]
    lake = Lake(tmp_path / "lake")
    modes = []
    for batch in (early, later, late):
        ingest(batch, lake)
        result = scan(lake)
        modes.append(result.mode)
    assert modes == ["full", "incremental", "incremental"]
    assert _key(result) == _key(full)
    # coverage figures move by the slice's difference and land where a full scan counts them
    assert [c.to_json() for c in result.coverage] == [c.to_json() for c in full.coverage]
    # a rescan without new data changes nothing and reports everything as open
    again = scan(lake)
    assert again.mode == "unchanged"
    assert _key(again) == _key(full)
    assert {f.status for f in again.findings} == {"open"}
    # every persisted scan appended its findings to the lake's findings table (the history)
    history = (
        lake.connect()
        .execute(
            "SELECT scan_id, count(*), count(DISTINCT finding_id) FROM findings GROUP BY scan_id"
        )
        .fetchall()
    )
    assert len(history) == 4
    assert sorted(n for _, n, _ in history)[-1] >= len(_key(full))
    assert lake.verify().ok


def test_findings_do_not_depend_on_ingestion_order(tmp_path: Path, full: ScanResult) -> None:
    files = log_files(SAMPLE)
    random.Random(20261128).shuffle(files)
    lake = Lake(tmp_path / "lake")
    for i in range(0, len(files), max(1, len(files) // 5)):
        ingest(files[i : i + max(1, len(files) // 5)], lake)
    assert _key(scan(lake, full=True, persist=False)) == _key(full)
