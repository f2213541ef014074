"""GCP Cloud Audit Logs ingester against native fixtures: a Cloud Storage sink's JSON-lines
file (its real path layout) and `gcloud logging read --format=json` output."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from jitaudit.ingest import ingest, registry
from jitaudit.ingest.files import open_input
from jitaudit.ingest.gcp import INGESTER as GCP
from jitaudit.ingest.kubernetes import INGESTER as K8S
from jitaudit.lake import Lake
from tests.conftest import FIXTURES, one_row, query_rows

FIX = FIXTURES / "gcp"
SINK = FIX / "cloudaudit.googleapis.com" / "data_access" / "2026" / "11" / "02"
SINK_FILE = SINK / "09:00:00_09:59:59_S0.json"
GCLOUD = FIX / "gcloud-logging-read.json"
AGENT = "billing-agent@acme-prod.iam.gserviceaccount.com"
CI = "ci-runner@acme-prod.iam.gserviceaccount.com"
GKE = "serviceAccount:acme-prod.svc.id.goog[agents/billing-agent]"
KEY = (
    "//iam.googleapis.com/projects/acme-prod/serviceAccounts/"
    "ci-runner@acme-prod.iam.gserviceaccount.com/keys/c71e040fb4b71d798ce4baca14e15ab62115aaef"
)

OTHER_FORMATS = [
    '{"Records":[{"eventVersion":"1.08","eventSource":"sts.amazonaws.com","eventName":"AssumeRole"}]}',
    '{"time":"2026-11-01T10:00:00Z","type":"response","auth":{"accessor":"a"},"request":{"id":"1"}}',
    '{"decision_id":"d1","msg":"Decision Log","path":"authz/allow","result":true}',
    '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"x"}',
    # an Azure Activity Log record is JSON with a "records" wrapper, not a LogEntry
    '{"records":[{"operationName":"MICROSOFT.STORAGE/STORAGEACCOUNTS/READ","resourceId":"/x"}]}',
    # a Cloud Logging entry that is not an audit log
    '{"insertId":"a","logName":"projects/p/logs/stdout","textPayload":"hello"}',
]


@pytest.fixture
def loaded(lake: Lake) -> Lake:
    report = ingest([FIX], lake)
    assert set(report.sources) == {"gcp"}
    return lake


def test_detects_sink_files_and_gcloud_output_and_claims_no_other_format() -> None:
    for path in (SINK_FILE, GCLOUD):
        assert registry.detect(open_input(path)) == "gcp"
        assert not K8S.sniff(open_input(path).head().decode())
    for head in OTHER_FORMATS:
        assert not GCP.sniff(head), head


def test_counts_reconcile_and_non_audit_or_broken_entries_are_quarantined(lake: Lake) -> None:
    s = ingest([FIX], lake).sources["gcp"]
    # 10 sink lines + 2 gcloud entries; the gcloud copy of an entry already in the sink file
    # (same insertId) is a duplicate
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (12, 9, 2, 1)
    q = query_rows(lake, "SELECT reason, source_offset FROM quarantine ORDER BY source_offset")
    assert q == [
        {"reason": "not valid JSON", "source_offset": 3},
        {"reason": "not a Cloud Audit Logs entry (no AuditLog protoPayload)", "source_offset": 9},
    ]


def test_generate_access_token_is_a_grant_without_a_credential_id(loaded: Lake) -> None:
    g = one_row(loaded, "grants", "1a2b3c4d5e6f")
    assert g["grant_id"] == "1a2b3c4d5e6f" and g["credential_id"] is None
    assert g["principal_id"] == g["agent_id"] == AGENT  # the impersonated service account
    assert (g["workload_identity"], g["attested"], g["auth_method"]) == (
        GKE,
        True,
        "gke_workload_identity",
    )
    assert g["issued_at"] == datetime(2026, 11, 2, 9, 0, 0, 118273)
    assert g["expires_at"] == datetime(2026, 11, 2, 9, 15, 0, 118273)  # lifetime "900s"
    assert g["logged_time"] == datetime(2026, 11, 2, 9, 0, 1, 402118)  # receiveTimestamp
    assert (g["task_id"], g["objective"]) == ("task-7781", "reconcile invoices")
    assert g["targets"] == ["projects/_/buckets/acme-invoices", "projects/_/buckets/acme-ledger"]
    assert g["scope"] is None


def test_a_static_key_caller_is_not_attested(loaded: Lake) -> None:
    g = one_row(loaded, "grants", "7h8i9j0k1l2m")
    assert (g["workload_identity"], g["attested"], g["auth_method"]) == (
        CI,
        False,
        "service_account_key",
    )
    assert g["expires_at"] == datetime(2026, 11, 2, 10, 10)  # response.expireTime


def test_federated_id_token_defaults_to_one_hour(loaded: Lake) -> None:
    g = one_row(loaded, "grants", "k1l2m3n4o5p6")
    assert g["auth_method"] == "workload_identity_federation" and g["attested"] is True
    assert g["workload_identity"].startswith("principal://iam.googleapis.com/")
    assert g["expires_at"] == datetime(2026, 11, 2, 10, 20)
    assert g["source_file"] == str(GCLOUD) and g["source_offset"] == 0


def test_denied_mint_is_a_denied_use_and_no_grant(loaded: Lake) -> None:
    assert query_rows(loaded, "SELECT * FROM grants WHERE event_id = '3n4o5p6q7r8s'") == []
    u = one_row(loaded, "uses", "3n4o5p6q7r8s")
    assert (u["outcome"], u["error_code"], u["action"]) == (
        "denied",
        "7",
        "iam.serviceAccounts.getAccessToken",
    )
    assert u["principal_id"] is None  # Google redacts the caller of a denied read


def test_uses_name_the_impersonator_and_the_outcome(loaded: Lake) -> None:
    u = one_row(loaded, "uses", "-x9k2ple1bq4")
    assert (u["principal_id"], u["agent_id"], u["on_behalf_of"]) == (AGENT, AGENT, GKE)
    assert u["credential_id"] is None  # joined to its grant on principal + time
    assert (u["action"], u["outcome"]) == ("storage.objects.get", "success")
    assert (
        u["resource"]
        == u["target"]
        == ("projects/_/buckets/acme-invoices/objects/2026/11/inv-0042.pdf")
    )
    assert u["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert u["logged_time"] == datetime(2026, 11, 2, 9, 1, 10, 912004)
    denied = one_row(loaded, "uses", "-x9k2ple1bq5")
    assert (denied["outcome"], denied["action"]) == ("denied", "storage.objects.delete")
    err = one_row(loaded, "uses", "5z6a7b8c9d0e")
    assert (err["outcome"], err["error_code"]) == ("error", "5")
    # 18 minutes between the call and Cloud Logging receiving it
    assert (err["logged_time"] - err["event_time"]).total_seconds() == 1110
    key = one_row(loaded, "uses", "9t0u1v2w3x4y")
    assert (key["credential_id"], key["principal_id"], key["action"]) == (
        KEY,
        CI,
        "redis.instances.create",
    )
    # a caller with no service account email is a principal, not an agent
    mint = one_row(loaded, "uses", "1a2b3c4d5e6f")
    assert (mint["principal_id"], mint["agent_id"], mint["task_id"]) == (GKE, None, "task-7781")


def test_reingest_adds_nothing_and_repeated_insert_ids_dedupe(tmp_path: Path, lake: Lake) -> None:
    ingest([SINK_FILE], lake)
    again = ingest([SINK_FILE], lake)
    assert again.sources["gcp"].skipped_files == 1 and again.commits == 0
    s = ingest([GCLOUD], lake).sources["gcp"]
    assert (s.read, s.duplicates, s.normalised) == (2, 1, 1)
    n = query_rows(lake, "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM uses")[0]
    assert n == {"n": 9, "d": 9}


def test_secrets_never_reach_the_lake(tmp_path: Path, lake: Lake) -> None:
    d = tmp_path / "logs"
    shutil.copytree(FIX, d)
    entry = json.loads(SINK_FILE.read_text().splitlines()[0])
    entry["insertId"] = "canary-quarantined"
    entry["timestamp"] = "not a time"
    entry["protoPayload"]["response"] = {"accessToken": "CANARY-gcp-q", "signedBlob": "CANARY-b"}
    truncated = '{"protoPayload":{"response":{"signedBlob":"CANARY-blob-7f3a9","keyId":"k'
    (d / "extra.json").write_text(json.dumps(entry) + "\n" + truncated + "\n")
    report = ingest([d], lake)
    assert report.sources["gcp"].quarantined == 4
    parquet = list(lake.root.rglob("*.parquet"))
    assert any("quarantine" in p.as_posix() for p in parquet)
    assert any("grants" in p.as_posix() for p in parquet)
    con = lake.connect()
    for p in parquet:
        text = repr(con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall())
        assert "CANARY" not in text, p
