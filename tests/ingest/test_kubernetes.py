"""Kubernetes audit ingester against native fixtures: the log backend's Event lines (plain and
rotated/compressed) and the webhook backend's EventList document."""

from __future__ import annotations

import gzip
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

FIX = FIXTURES / "kubernetes"
AUDIT_LOG = FIX / "audit.log"
ROTATED = FIX / "kube-apiserver-audit-2026-11-02T11-00-00.000.log.gz"
WEBHOOK = FIX / "webhook-batch.json"
JTI = "JTI=3f2b6c1e-9a4d-4e7b-8f21-6c0d5a9e1b47"
JTI2 = "JTI=a8c4e2d0-7b1f-4c3a-9e65-0f2d8b7a4c19"
AGENT = "system:serviceaccount:billing:billing-agent"
SECRET_B64 = "Q0FOQVJZLWs4cy1zZWNyZXQtN2YzYTk="

OTHER_FORMATS = [
    '{"Records":[{"eventVersion":"1.08","eventSource":"sts.amazonaws.com","eventName":"AssumeRole"}]}',
    '{"time":"2026-11-01T10:00:00Z","type":"request","auth":{"accessor":"hmac-sha256:ab"},'
    '"request":{"id":"1","operation":"read","path":"secret/x"}}',
    '{"decision_id":"d1","msg":"Decision Log","path":"authz/allow","result":true}',
    '{"start_time":"2026-11-01T10:00:00.000Z","method":"GET","path":"/x","response_code":200}',
    '{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[]}]}',
    '{"insertId":"a1","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity",'
    '"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog",'
    '"serviceName":"k8s.io","methodName":"io.k8s.core.v1.pods.get"}}',
]


@pytest.fixture
def loaded(lake: Lake) -> Lake:
    report = ingest([FIX], lake)
    assert set(report.sources) == {"kubernetes"}
    return lake


def test_detects_every_transport_and_claims_no_other_format() -> None:
    for path in (AUDIT_LOG, ROTATED, WEBHOOK):
        assert registry.detect(open_input(path)) == "kubernetes"
        assert not GCP.sniff(open_input(path).head().decode())
    for head in OTHER_FORMATS:
        assert not K8S.sniff(head), head
    # Azure/Falco wrap the event as an escaped string: that is not this format
    wrapped = json.dumps(
        {"records": [{"properties": {"log": AUDIT_LOG.read_text().split("\n")[0]}}]}
    )
    assert not K8S.sniff(wrapped)


def test_counts_reconcile_with_folded_stages_duplicates_and_quarantine(lake: Lake) -> None:
    s = ingest([FIX], lake).sources["kubernetes"]
    # 16 + 6 lines + 2 webhook items; an exact (auditID, stage) repeat in audit.log and the
    # webhook's repeat of a logged event are duplicates; folded stages count as normalised
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (24, 19, 3, 2)
    q = query_rows(lake, "SELECT reason, source_offset FROM quarantine ORDER BY source_offset")
    assert q == [
        {"reason": "not valid JSON", "source_offset": 8},
        {"reason": "missing auditID", "source_offset": 14},
        {
            "reason": "only the RequestReceived stage was seen: no response stage in this batch",
            "source_offset": 15,
        },
    ]
    assert query_rows(lake, "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM uses") == [
        {"n": 11, "d": 11}
    ]


def test_webhook_batches_on_one_line_give_each_event_its_own_offset(
    tmp_path: Path, lake: Lake
) -> None:
    # a webhook receiver that appends each POSTed EventList as one line; the second file holds
    # the first batch again (a retried POST) and a new one
    batch = json.loads(WEBHOOK.read_text())
    later = {**batch, "items": [{**e, "auditID": e["auditID"][:-1] + "f"} for e in batch["items"]]}
    first, retried = tmp_path / "batches-0001.log", tmp_path / "batches-0002.log"
    first.write_text(json.dumps(batch) + "\n")
    retried.write_text(json.dumps(batch) + "\n" + json.dumps(later) + "\n")
    s = ingest([first], lake).sources["kubernetes"]
    assert (s.read, s.normalised, s.duplicates) == (2, 2, 0)
    offsets = query_rows(lake, "SELECT source_offset FROM uses ORDER BY 1")
    assert [r["source_offset"] for r in offsets] == [0, 1]  # records, not the one line
    s = ingest([retried], lake).sources["kubernetes"]
    assert (s.read, s.normalised, s.duplicates) == (4, 2, 2)
    assert query_rows(lake, "SELECT count(*) AS n FROM uses") == [{"n": 4}]
    later_offsets = query_rows(
        lake,
        f"SELECT source_offset FROM uses WHERE source_file = '{retried.as_posix()}' ORDER BY 1",
    )
    assert [r["source_offset"] for r in later_offsets] == [2, 3]


def test_token_request_is_a_grant_keyed_by_its_jti(loaded: Lake) -> None:
    g = one_row(loaded, "grants", "7c3e9a12-4f5b-4d8e-9a1c-2b3d4e5f6a70")
    assert g["grant_id"] == g["credential_id"] == JTI
    assert g["principal_id"] == g["agent_id"] == AGENT
    assert g["workload_identity"] == "namespaces/billing/pods/billing-agent-7f9c"
    assert g["attested"] is True and g["auth_method"] == "kubernetes"
    assert g["issued_at"] == datetime(2026, 11, 2, 9, 0, 0, 118273)
    # the response's status.expirationTimestamp wins over the requested 3607 s
    assert g["expires_at"] == datetime(2026, 11, 2, 10, 0, 7)
    assert g["issuer"] == "system:node:node-1"
    assert g["parent_grant_id"].startswith("X509SHA256=9c1e4b7f")
    assert g["scope"] is None and g["renewable"] is False
    # at Request level there is no response object: expiry from spec.expirationSeconds
    g2 = one_row(loaded, "grants", "2b7e1516-28ae-42d2-a6ab-f7158809cf4f")
    assert g2["credential_id"] == JTI2
    assert g2["expires_at"] == datetime(2026, 11, 2, 10, 40)
    assert g2["workload_identity"] is None


def test_uses_carry_the_jti_and_outcomes(loaded: Lake) -> None:
    ok = one_row(loaded, "uses", "0e6f1b2c-3d4a-4b5c-8d6e-7f8091a2b3c4")
    assert (ok["credential_id"], ok["agent_id"], ok["outcome"]) == (JTI, AGENT, "success")
    assert (ok["action"], ok["resource"], ok["target"]) == (
        "get",
        "namespaces/billing/secrets/db-creds",
        "namespaces/billing/secrets/db-creds",
    )
    assert ok["request_id"] == ok["event_id"] and ok["src_ip"] == "10.244.1.17"
    assert ok["workload_identity"] == "namespaces/billing/pods/billing-agent-7f9c"
    denied = one_row(loaded, "uses", "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d")
    assert (denied["outcome"], denied["error_code"]) == ("denied", "Forbidden")
    assert denied["resource"] == "namespaces/kube-system/secrets"
    panic = one_row(loaded, "uses", "4d5e6f70-8192-4a3b-9c4d-5e6f7a8b9c0d")
    assert (panic["outcome"], panic["credential_id"], panic["resource"]) == (
        "error",
        JTI2,
        "ledgers",
    )
    probe = one_row(loaded, "uses", "a5c8369c-6583-408b-aa2a-777cc70a6319")
    assert (probe["resource"], probe["agent_id"], probe["credential_id"]) == ("/readyz", None, None)
    imp = one_row(loaded, "uses", "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f")
    assert (imp["principal_id"], imp["on_behalf_of"]) == ("kubernetes-admin", AGENT)
    assert imp["resource"] == "namespaces/billing/deployments/ledger/scale"
    # a token mint is also the requester's use of its own credential
    mint = one_row(loaded, "uses", "7c3e9a12-4f5b-4d8e-9a1c-2b3d4e5f6a70")
    assert mint["resource"] == "namespaces/billing/serviceaccounts/billing-agent/token"


def test_watch_stages_fold_into_one_row_stamped_by_the_last_stage(loaded: Lake) -> None:
    w = one_row(loaded, "uses", "9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a")
    assert w["event_time"] == datetime(2026, 11, 2, 9, 7, 0, 100)
    assert w["logged_time"] == datetime(2026, 11, 2, 9, 14, 26, 4512)
    assert w["source_offset"] == 9  # the ResponseComplete line
    assert w["resource"] == "namespaces/billing/configmaps"  # query string dropped


def test_authorization_annotations_are_decisions(loaded: Lake) -> None:
    d = one_row(loaded, "decisions", "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d")
    assert (d["allowed"], d["reason"], d["request_id"]) == (
        False,
        None,
        "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
    )
    a = one_row(loaded, "decisions", "0e6f1b2c-3d4a-4b5c-8d6e-7f8091a2b3c4")
    assert a["allowed"] is True and a["reason"].startswith("RBAC: allowed by RoleBinding")
    assert a["agent_id"] == AGENT and a["action"] == "get"
    # the Panic event carries no decision annotation
    assert query_rows(loaded, "SELECT * FROM decisions WHERE event_id LIKE '4d5e6f70%'") == []


def test_deleting_the_service_account_revokes_its_tokens(loaded: Lake) -> None:
    r = one_row(loaded, "grant_events", "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9")
    assert (r["kind"], r["principal_id"], r["actor"]) == ("revoke", AGENT, "kubernetes-admin")
    assert r["revokes_issued_before"] == datetime(2026, 11, 2, 11, 0)


def test_reingest_adds_nothing_and_repeats_across_files_dedupe(tmp_path: Path, lake: Lake) -> None:
    ingest([AUDIT_LOG], lake)
    again = ingest([AUDIT_LOG], lake)
    assert again.sources["kubernetes"].skipped_files == 1 and again.commits == 0
    # a second log (another API server replica's copy) repeating two events plus one new one
    lines = AUDIT_LOG.read_text().splitlines()
    new = json.loads(lines[3])
    new["auditID"] = "11111111-2222-4333-8444-555555555555"
    copy = tmp_path / "replica.log"
    copy.write_text("\n".join([lines[2], lines[3], json.dumps(new)]) + "\n")
    s = ingest([copy], lake).sources["kubernetes"]
    assert (s.read, s.duplicates) == (3, 1)  # the folded RequestReceived counts as normalised
    n = query_rows(lake, "SELECT count(*) AS n FROM uses")[0]["n"]
    assert n == 7  # 6 complete requests in audit.log + the new one


def test_secrets_never_reach_the_lake(tmp_path: Path, lake: Lake) -> None:
    canary = "CANARY-k8s-7f3a9"
    d = tmp_path / "logs"
    shutil.copytree(FIX, d)
    broken = [
        # truncated TokenRequest response and Secret body: quarantined as not JSON
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x1","stage":"ResponseComplete",'
        f'"responseObject":{{"status":{{"token":"{canary}.jwt',
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x2","stage":"ResponseComplete",'
        f'"requestObject":{{"kind":"Secret","data":{{"db-pass":"{canary}"}}',
        # valid JSON but quarantined (no stage): bodies are dropped from raw
        json.dumps(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "auditID": "x3",
                "requestObject": {"kind": "Secret", "data": {"db-pass": canary}},
                "responseObject": {"status": {"token": canary}},
            }
        ),
    ]
    (d / "broken.log.gz").write_bytes(gzip.compress(("\n".join(broken) + "\n").encode()))
    report = ingest([d], lake)
    assert report.sources["kubernetes"].quarantined == 6
    parquet = list(lake.root.rglob("*.parquet"))
    assert any("quarantine" in p.as_posix() for p in parquet)
    assert any("grants" in p.as_posix() for p in parquet)
    con = lake.connect()
    for p in parquet:
        text = repr(con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall())
        for needle in ("CANARY", SECRET_B64, "eyJhbGciOiJSUzI1NiIsImtpZCI6IkNBTkFSWSJ9"):
            assert needle not in text, (p, needle)


def test_aks_diagnostic_records_carry_the_event_as_a_string(tmp_path: Path, lake: Lake) -> None:
    # AKS exports the audit log through Azure diagnostic settings: one record per line in the
    # storage account's PT1H.json, category kube-audit, the Event as a JSON string in
    # properties.log (the first line is a genuine AKS record; the others wrap events of
    # audit.log the same way). Event Hubs delivers the same records under "records".
    aks = FIXTURES / "aks" / "insights-logs-kube-audit" / "PT1H.json"
    assert registry.detect(open_input(aks)) == "kubernetes"
    s = ingest([aks], lake).sources["kubernetes"]
    assert (s.read, s.quarantined) == (6, 0)
    plain = Lake(tmp_path / "plain")
    plain_log = tmp_path / "audit.log"
    plain_log.write_text("\n".join(AUDIT_LOG.read_text().splitlines()[:5]) + "\n")
    ingest([plain_log], plain)
    columns = "event_id, event_time, principal_id, action, resource, outcome"
    for table in ("uses", "grants"):
        sql = f"SELECT {columns if table == 'uses' else '*'} FROM {table} ORDER BY event_id"
        wrapped, direct = query_rows(lake, sql), query_rows(plain, sql)
        if table == "grants":
            wrapped = [{k: v for k, v in r.items() if k not in _LINEAGE} for r in wrapped]
            direct = [{k: v for k, v in r.items() if k not in _LINEAGE} for r in direct]
        assert [r for r in wrapped if r.get("principal_id") != "aksService"] == direct, table
    hub = tmp_path / "eventhub.json"
    records = [json.loads(line) for line in aks.read_text().splitlines()]
    other = {"category": "kube-apiserver", "properties": {"log": "I1007 16:19:19 started"}}
    hub.write_text(json.dumps({"records": [*records, other]}))
    again = Lake(tmp_path / "hub")
    assert ingest([hub], again).sources["kubernetes"].quarantined == 0
    assert query_rows(again, "SELECT count(*) AS n FROM uses") == query_rows(
        lake, "SELECT count(*) AS n FROM uses"
    )


_LINEAGE = {"source_file", "source_offset", "ingested_at"}
