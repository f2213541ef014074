"""The committed sample data: every record normalises, counts match the simulator's, and the
detections find exactly the injected failures (recall and precision 100 %, at two seeds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jitaudit.lake import Lake
from jitaudit.scan import scan
from tests.e2e.conftest import SAMPLE, Key, expected, finding_key

pytestmark = pytest.mark.slow


def _counts(lake: Lake) -> dict[str, dict[str, int]]:
    con = lake.connect()
    out: dict[str, dict[str, int]] = {}
    for table in ("grants", "grant_events", "uses", "decisions", "tasks"):
        rows = con.execute(f"SELECT source, count(*) FROM {table} GROUP BY source").fetchall()
        if rows:
            out[table] = {s: int(n) for s, n in rows}
    return out


def test_every_sample_record_normalises_and_counts_match(sample_lake: Lake) -> None:
    con = sample_lake.connect()
    assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(0,)]
    want = json.loads((SAMPLE / "expected_counts.json").read_text())
    assert _counts(sample_lake) == want
    for commit in sample_lake.commits():
        for stats in commit.stats.values():
            assert stats["read"] == stats["normalised"] + stats["quarantined"] + stats["duplicates"]


def _found(lake: Lake) -> set[Key]:
    result = scan(lake, full=True, persist=False)
    keys = [finding_key(f) for f in result.findings]
    assert len(keys) == len(set(keys)), "two findings for one expected subject"
    return set(keys)


def test_detections_find_exactly_the_injected_failures(sample_lake: Lake) -> None:
    want, got = expected(SAMPLE), _found(sample_lake)
    assert want - got == set(), "missed (recall < 100 %)"
    assert got - want == set(), "unexpected (precision < 100 %)"
    assert {w[0] for w in want} == {f"JIT-{i:03d}" for i in range(1, 17)}


def test_detections_find_exactly_the_injected_failures_at_another_seed(
    second_seed: tuple[Path, Lake],
) -> None:
    root, lake = second_seed
    want, got = expected(root), _found(lake)
    assert want - got == set(), "missed (recall < 100 %)"
    assert got - want == set(), "unexpected (precision < 100 %)"


def test_well_behaved_agents_have_no_findings(sample_lake: Lake) -> None:
    injected = {w[1] for w in expected(SAMPLE) if w[1]}
    result = scan(sample_lake, full=True, persist=False)
    agents = {f.agent_id for f in result.findings if f.agent_id}
    assert agents <= injected
    # the background is most of the organisation: its agents are all clean
    con = sample_lake.connect()
    background = {
        a
        for (a,) in con.execute(
            "SELECT DISTINCT agent_id FROM grants WHERE agent_id IS NOT NULL"
        ).fetchall()
    } - injected
    assert len(background) >= 5
    assert not background & agents
