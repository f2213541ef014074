"""OPA decision logs: console lines (compact and json-pretty), uploaded gzipped arrays, opa-envoy
and plain inputs, result shapes, bundle revisions, masking, undefined decisions, redaction.

Fixtures follow OPA's decision-log docs (EventV1 fields, the upload body OPA's chunk encoder
writes) and opa-envoy's published console output (``result.allowed``, protojson input)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from jitaudit.ingest import ingest, registry
from jitaudit.ingest.files import open_input
from jitaudit.ingest.opa import INGESTER
from jitaudit.lake import Lake
from tests.conftest import FIXTURES

OPA = FIXTURES / "opa"
CANARY = "CANARY-opa-5e1f"


def _decisions(lake: Lake) -> dict[str, dict[str, Any]]:
    cur = lake.connect().execute("SELECT * FROM decisions")
    cols = [d[0] for d in cur.description]
    return {r[cols.index("decision_id")]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


def _quarantine(lake: Lake) -> list[tuple[str, int, str, str]]:
    return (
        lake.connect()
        .execute("SELECT source_file, source_offset, reason, raw FROM quarantine ORDER BY 1, 2")
        .fetchall()
    )


@pytest.fixture
def all_opa(lake: Lake) -> Lake:
    ingest([OPA], lake, fmt="opa")
    return lake


@pytest.mark.parametrize(
    "name", ["console.log", "console-pretty.log", "upload-0001.json.gz", "upload-truncated.json.gz"]
)
def test_every_opa_fixture_is_detected_as_opa(name: str) -> None:
    # the head as detection sees it: first 64 KB, decompressed
    assert INGESTER.sniff(open_input(OPA / name).head().decode())
    assert "opa" in registry.MODULES


@pytest.mark.parametrize(
    "head",
    [
        # Vault audit: token metadata carries a decision_id key, but it is not an OPA event
        '{"time":"2026-11-01T10:00:00Z","type":"response","auth":{"accessor":"a",'
        '"metadata":{"decision_id":"d-1","task_id":"t"}},"request":{"id":"r","path":"auth/jwt/login"}}',
        '{"Records":[{"eventVersion":"1.08","eventSource":"sts.amazonaws.com","eventID":"e"}]}',
        '{"start_time":"2026-11-01T10:00:00.000Z","method":"GET","path":"/x","response_code":200,'
        '"request_id":"r","authority":"h"}',
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete"}',
        '{"level":"info","msg":"Starting decision logger.","plugin":"decision_logs"}',
    ],
)
def test_sniff_does_not_claim_other_json_lines(head: str) -> None:
    assert not INGESTER.sniff(head)


def test_opa_envoy_console_allow_maps_headers_method_path_host(all_opa: Lake) -> None:
    d = _decisions(all_opa)["0b0d2d4e-7a43-4ac1-9f0a-1d9e5f6c0a01"]
    assert d["allowed"] is True  # result.allowed, opa-envoy's object result
    assert (d["agent_id"], d["task_id"]) == ("invoice-agent", "task-7")
    assert d["request_id"] == "3a3ae89f-bc08-4216-a520-128c3cc0696d"
    assert (d["action"], d["resource"]) == ("GET /invoices/{id}", "/invoices/{id}")
    assert d["target"] == "billing.internal:8443"
    assert d["principal_id"] == "spiffe://cluster.local/ns/agents/sa/invoice-agent"
    assert d["policy_path"] == "envoy/authz/allow"
    assert d["policy_revision"] == "rev-2026-10-30"
    assert d["trace_id"] == "80f198ee56343ba864fe8b2a57d3eff7"
    assert d["event_id"] == d["decision_id"]
    # nanosecond timestamp truncated to µs; logrus print time (whole seconds, in the
    # decision's second) is logged_time no earlier than the decision
    assert str(d["event_time"]) == "2026-11-01 10:00:00.183258"
    assert str(d["logged_time"]) == "2026-11-01 10:00:00.183258"


def test_boolean_false_result_is_a_denial_and_offsets_convert_to_utc(all_opa: Lake) -> None:
    d = _decisions(all_opa)["0b0d2d4e-7a43-4ac1-9f0a-1d9e5f6c0a02"]
    assert d["allowed"] is False
    assert d["action"] == "DELETE /invoices/{id}"
    # "+01:00" console time → UTC (11:00:05+01:00, within the decision's second)
    assert str(d["logged_time"]) == "2026-11-01 10:00:05.000001"


def test_plain_input_result_allow_and_several_bundles(all_opa: Lake) -> None:
    d = _decisions(all_opa)["5a6f1c1e-0c35-4d5f-b8c4-1e2a3b4c5d03"]
    assert d["allowed"] is True  # result.allow
    assert (d["agent_id"], d["task_id"], d["request_id"]) == ("report-agent", "task-9", "req-9-1")
    assert (d["action"], d["resource"], d["target"]) == (
        "s3:GetObject",
        "arn:aws:s3:::reports/2026/10.csv",
        "arn:aws:s3:::reports",
    )
    assert d["policy_revision"] == "agents:a1b2c3,data:d9"
    assert d["reason"] == "task scope permits read"
    assert str(d["event_time"]) == "2026-11-01 10:00:00"  # 11:00+01:00


def test_legacy_revision_and_docs_http_input(all_opa: Lake) -> None:
    d = _decisions(all_opa)["5a6f1c1e-0c35-4d5f-b8c4-1e2a3b4c5d04"]
    assert d["policy_revision"] == "legacy-7"
    assert (d["action"], d["resource"]) == ("GET /salary/bob", "/salary/bob")
    assert d["agent_id"] is None and d["target"] is None


def test_masked_and_erased_fields_are_unknown_not_the_mask_value(all_opa: Lake) -> None:
    d = _decisions(all_opa)["5a6f1c1e-0c35-4d5f-b8c4-1e2a3b4c5d07"]
    assert d["agent_id"] is None  # x-agent-id is listed in `masked`: "**REDACTED**" is not an id
    assert d["task_id"] == "task-8" and d["allowed"] is False


def test_undefined_and_error_decisions_are_unknown_not_allow_or_deny(all_opa: Lake) -> None:
    decisions = _decisions(all_opa)
    undefined = decisions["5a6f1c1e-0c35-4d5f-b8c4-1e2a3b4c5d05"]
    assert undefined["allowed"] is None
    assert undefined["reason"] == "undefined decision: no result"
    failed = decisions["5a6f1c1e-0c35-4d5f-b8c4-1e2a3b4c5d06"]
    assert failed["allowed"] is None
    assert failed["reason"] == (
        "evaluation error (undefined decision): complete rules must not produce multiple outputs"
    )


def test_malformed_entries_are_quarantined_with_reasons(all_opa: Lake) -> None:
    q = {(Path(f).name, off): reason for f, off, reason, _ in _quarantine(all_opa)}
    assert q == {
        ("console.log", 6): "not valid JSON",
        ("console.log", 10): "not an OPA decision log entry",
        ("upload-truncated.json.gz", 1): "truncated or malformed document: unparseable from here",
    }
    # ingestion continued past each of them
    assert "5a6f1c1e-0c35-4d5f-b8c4-1e2a3b4c5d07" in _decisions(all_opa)


def test_upload_array_offsets_are_record_indexes_and_truncated_upload_is_salvaged(
    all_opa: Lake,
) -> None:
    d = _decisions(all_opa)
    up = {k: v for k, v in d.items() if v["source_file"].endswith("upload-0001.json.gz")}
    assert sorted(v["source_offset"] for v in up.values()) == [0, 2]  # [1] repeats console e1
    assert d["9c0e8d7f-1111-4a2b-8c3d-4e5f6a7b8c09"]["allowed"] is False
    assert d["9c0e8d7f-1111-4a2b-8c3d-4e5f6a7b8c08"]["resource"] == "/customers/{id}/orders"
    assert d["9c0e8d7f-1111-4a2b-8c3d-4e5f6a7b8c08"]["logged_time"] is None
    salvaged = d["9c0e8d7f-1111-4a2b-8c3d-4e5f6a7b8c10"]
    assert salvaged["source_file"].endswith("upload-truncated.json.gz")
    assert salvaged["source_offset"] == 0


def test_json_pretty_console_output_is_grouped_into_entries(all_opa: Lake) -> None:
    d = _decisions(all_opa)["9c0e8d7f-1111-4a2b-8c3d-4e5f6a7b8c12"]
    assert d["source_file"].endswith("console-pretty.log")
    assert d["source_offset"] == 6  # first line of the entry; lines 0-5 are an operational log
    assert d["allowed"] is False and str(d["event_time"]) == "2026-11-01 10:14:00.500000"


def test_counts_reconcile_and_operational_log_lines_are_not_records(lake: Lake) -> None:
    s = ingest([OPA], lake, fmt="opa").sources["opa"]
    # 11 console lines - 2 operational + 3 uploaded + 2 truncated (1 salvaged) + 1 pretty entry
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (15, 11, 3, 1)
    assert lake.connect().execute("SELECT count(*) FROM decisions").fetchall() == [(11,)]


def test_reingest_adds_nothing_and_repeats_across_files_dedupe_by_decision_id(
    tmp_path: Path, lake: Lake
) -> None:
    ingest([OPA / "console.log"], lake, fmt="opa")
    again = ingest([OPA / "console.log"], lake, fmt="opa")
    assert again.sources["opa"].skipped_files == 1 and again.commits == 0
    # OPA re-POSTs a chunk whose upload failed: same events, a new gzip body (new bytes)
    copy = tmp_path / "retry.json.gz"
    body = gzip.decompress((OPA / "upload-0001.json.gz").read_bytes())
    copy.write_bytes(gzip.compress(body, mtime=1))
    first = ingest([OPA / "upload-0001.json.gz"], lake, fmt="opa").sources["opa"]
    assert first.duplicates == 1  # 0b0d…0a01 was already in the lake from the console
    second = ingest([copy], lake, fmt="opa").sources["opa"]
    assert (second.read, second.duplicates) == (3, 3)
    n = lake.connect().execute("SELECT count(*), count(DISTINCT decision_id) FROM decisions")
    assert n.fetchall() == [(9, 9)]  # 7 console decisions (2 undefined) + 2 new uploaded ones


def test_canary_secrets_never_reach_the_lake(tmp_path: Path, lake: Lake) -> None:
    raw = gzip.decompress((OPA / "upload-0001.json.gz").read_bytes()).decode()
    assert raw.count(CANARY) > 0 and CANARY in (OPA / "console.log").read_text()
    # a malformed copy of a secret-bearing entry, so the quarantine path sees every header
    event = json.loads(raw.replace("\n,", ",").strip())[0]
    bad = tmp_path / "bad.log"
    bad.write_text(json.dumps(dict(event, msg="Decision Log"))[:-40] + "\n")
    ingest([OPA, bad], lake, fmt="opa")
    assert any(Path(f).name == "bad.log" for f, *_ in _quarantine(lake))
    files = list(lake.root.rglob("*.parquet"))
    assert any("decisions" in p.as_posix() for p in files)
    assert any("quarantine" in p.as_posix() for p in files)
    con = lake.connect()
    for p in files:
        assert CANARY not in repr(con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall()), p


@pytest.mark.parametrize("wrapper", ["cri", "docker"])
def test_console_lines_from_a_container_log_on_its_node(
    tmp_path: Path, lake: Lake, wrapper: str
) -> None:
    # OPA prints decision logs to stdout; on the node kubelet keeps them with the CRI prefix,
    # Docker's json-file driver as {"log": …} objects
    lines = (OPA / "console.log").read_text().splitlines()
    wrapped = [
        f"2026-11-01T10:00:0{i % 10}.123456789Z stdout F {line}"
        if wrapper == "cri"
        else json.dumps(
            {"log": line + "\n", "stream": "stderr", "time": "2026-11-01T10:00:00Z"},
            separators=(",", ":"),
        )
        for i, line in enumerate(lines)
    ]
    f = tmp_path / "0.log"
    f.write_text("\n".join(wrapped) + "\n")
    got = ingest([f], lake).sources["opa"]  # detected through the wrapper
    plain = Lake(tmp_path / "plain")
    want = ingest([OPA / "console.log"], plain).sources["opa"]
    assert (got.read, got.normalised, got.quarantined) == (
        want.read,
        want.normalised,
        want.quarantined,
    )
    sql = "SELECT decision_id, allowed, event_time, source_offset FROM decisions ORDER BY 1"
    assert lake.connect().execute(sql).fetchall() == plain.connect().execute(sql).fetchall()
