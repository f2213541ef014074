"""CloudTrail ingester against native fixtures (tests/fixtures/cloudtrail, see build.py there)."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from jitaudit.ingest import ingest
from jitaudit.ingest.cloudtrail import INGESTER
from jitaudit.lake import Lake
from tests.conftest import FIXTURES, one_row, query_rows

CT = FIXTURES / "cloudtrail"
LOG = next((CT / "AWSLogs").rglob("*.json.gz"))
CANARY = "CANARY-ct-7f3a"


# ------------------------------------------------------------------------- detection
@pytest.mark.parametrize(
    "path",
    [
        LOG,
        CT / "ndjson/records.jsonl",
        CT / "eventbridge/events.jsonl",
        CT / "lookup/lookup-events.json",
    ],
)
def test_sniff_recognises_every_container(path: Path) -> None:
    data = path.read_bytes()
    head = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)[:65536].decode()
    assert INGESTER.sniff(head)


@pytest.mark.parametrize(
    "head",
    [
        # S3 event notification: also {"Records":[{"eventVersion","eventSource",...}]}
        '{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put"}]}',
        '{"records":[{"operationName":"Microsoft.Storage/storageAccounts/read"}]}',
        '{"protoPayload":{"serviceName":"storage.googleapis.com"},"insertId":"x"}',
        '{"type":"request","auth":{"accessor":"hmac-sha256:1"},"request":{"id":"1"}}',
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete"}',
    ],
)
def test_sniff_does_not_claim_other_formats(head: str) -> None:
    assert not INGESTER.sniff(head)


# ----------------------------------------------------------------- log file (gzip)
def test_assume_role_with_tags_and_session_policy_is_a_grant(lake: Lake) -> None:
    report = ingest([LOG], lake)
    s = report.sources["cloudtrail"]
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (11, 10, 1, 0)
    g = one_row(lake, "grants", "6a1f0c1e-0001-4c55-9c1a-000000000001")
    assert g["grant_id"] == g["credential_id"] == "ASIAEXAMPLESESSION01"
    assert g["parent_grant_id"] == "ASIAEXAMPLERUNNER01"
    assert g["principal_id"] == "arn:aws:sts::111122223333:assumed-role/agent-billing/task-42"
    assert (g["agent_id"], g["task_id"], g["decision_id"]) == (
        "billing-agent",
        "task-42",
        "dec-9001",
    )
    assert g["objective"] == "monthly invoice export"  # tag key "Objective": case-insensitive
    assert g["targets"] == [
        "arn:aws:s3:::billing-reports",
        "arn:aws:dynamodb:us-east-1:111122223333:table/invoices",
    ]
    # Statement list; Action string or list; Resource list or "*"; Deny statements add nothing
    assert g["scope"] == [
        "dynamodb:GetItem",
        "dynamodb:Query",
        "s3:GetObject:arn:aws:s3:::billing-archive/2024/*",
        "s3:GetObject:arn:aws:s3:::billing-reports/*",
    ]
    # "Jun 2, 2024, 10:37:12 PM" (non-ISO)
    assert (g["issued_at"], g["expires_at"]) == (
        datetime(2024, 6, 2, 21, 37, 12),
        datetime(2024, 6, 2, 22, 37, 12),
    )
    assert g["attested"] is None and g["renewable"] is False
    # delivery time from the S3 key name
    assert g["logged_time"] == datetime(2024, 6, 2, 21, 55)


def test_uses_actions_resources_and_denials(lake: Lake) -> None:
    ingest([LOG], lake)
    uses = {
        r["source_offset"]: r
        for r in query_rows(lake, "SELECT * FROM uses WHERE credential_id = 'ASIAEXAMPLESESSION01'")
    }
    assert uses[1]["action"] == "s3:GetObject" and uses[1]["outcome"] == "success"
    assert (
        uses[1]["resource"]
        == uses[1]["target"]
        == "arn:aws:s3:::billing-reports/2024/05/invoices.csv"
    )
    assert (uses[2]["outcome"], uses[2]["error_code"]) == ("denied", "AccessDenied")
    assert (uses[4]["action"], uses[4]["outcome"]) == ("ec2:DescribeInstances", "denied")
    # no resources: ARN derived from request parameters
    assert uses[5]["resource"] == "arn:aws:dynamodb:us-east-1:111122223333:table/invoices"
    # Lambda's versioned event name → IAM action
    assert uses[6]["action"] == "lambda:GetFunction"
    assert uses[6]["resource"] == "arn:aws:lambda:us-east-1:111122223333:function:invoice-render"
    # eventVersion 1.02: no resources, no recipientAccountId, responseElements null
    assert uses[9]["resource"] == "arn:aws:secretsmanager:us-east-1:111122223333:secret:billing/db"
    assert uses[1]["agent_id"] == "billing-agent" and uses[9]["agent_id"] == "task-42"
    # an AWS service call without userIdentity.accessKeyId is not a use
    assert query_rows(lake, "SELECT * FROM uses WHERE source_offset = 3") == []


def test_revoke_older_sessions_is_a_role_wide_revocation(lake: Lake) -> None:
    ingest([LOG], lake)
    e = one_row(lake, "grant_events", "6a1f0c1e-0008-4c55-9c1a-000000000008")
    assert (e["kind"], e["outcome"], e["grant_id"]) == ("revoke", "success", None)
    assert e["principal_id"] == "arn:aws:iam::111122223333:role/agent-billing"
    assert e["revokes_issued_before"] == datetime(2024, 6, 2, 21, 50, 0, 511000)
    assert e["actor"] == "arn:aws:iam::111122223333:user/secops"


def test_record_without_event_time_is_quarantined_and_ingestion_continues(lake: Lake) -> None:
    ingest([LOG], lake)
    q = query_rows(lake, "SELECT * FROM quarantine")
    assert [(r["source_offset"], r["reason"]) for r in q] == [(10, "missing eventTime")]
    assert q[0]["source_file"] == str(LOG) and "GetCallerIdentity" in q[0]["raw"]
    assert query_rows(lake, "SELECT count(*) AS n FROM uses")[0]["n"] == 9


# -------------------------------------------------------------- NDJSON / EventBridge
def test_ndjson_web_identity_session_token_and_key_revocations(lake: Lake) -> None:
    report = ingest([CT / "ndjson"], lake)
    s = report.sources["cloudtrail"]
    assert (s.read, s.quarantined) == (7, 1)
    wi = one_row(lake, "grants", "7b2e0d2f-0001-4d66-8d2b-000000000001")
    assert (wi["attested"], wi["auth_method"]) == (True, "web_identity")
    assert (wi["agent_id"], wi["task_id"]) == ("triage-agent", "task-77")  # principalTags
    assert wi["workload_identity"] == "system:serviceaccount:agents:triage"
    assert wi["scope"] is None  # no session policy: unknown, not empty
    assert wi["expires_at"] == datetime(2024, 6, 3, 9, 0)  # "Jun 3, 2024 9:00:00 AM"
    gst = one_row(lake, "grants", "7b2e0d2f-0003-4d66-8d2b-000000000003")
    assert (gst["attested"], gst["parent_grant_id"]) == (False, "AKIAEXAMPLELEGACY01")
    assert gst["expires_at"] == datetime(2024, 6, 3, 8, 21)  # ISO expiration too
    use = one_row(lake, "uses", "7b2e0d2f-0002-4d66-8d2b-000000000002")
    assert use["resource"] == "arn:aws:sqs:us-east-1:111122223333:triage-inbox"
    revokes = query_rows(lake, "SELECT event_id, credential_id FROM grant_events ORDER BY event_id")
    # UpdateAccessKey to Inactive and DeleteAccessKey revoke; to Active does not
    assert revokes == [
        {
            "event_id": "7b2e0d2f-0004-4d66-8d2b-000000000004",
            "credential_id": "AKIAEXAMPLELEGACY01",
        },
        {
            "event_id": "7b2e0d2f-0006-4d66-8d2b-000000000006",
            "credential_id": "AKIAEXAMPLELEGACY01",
        },
    ]
    # deleting its own key is a grant event, not a use of that key
    assert query_rows(lake, "SELECT * FROM uses WHERE event_id LIKE '7b2e0d2f-0006%'") == []
    q = one_row(
        lake, "quarantine", query_rows(lake, "SELECT event_id FROM quarantine")[0]["event_id"]
    )
    assert (q["source_offset"], q["reason"]) == (3, "malformed JSON line")


def test_eventbridge_envelopes_lines_and_firehose_concatenation(lake: Lake) -> None:
    report = ingest([CT / "eventbridge"], lake)
    assert report.sources["cloudtrail"].read == 3
    g = one_row(lake, "grants", "8c3f0e30-0001-4e77-9e3c-000000000001")
    assert g["task_id"] == "task-43"  # from incomingTransitiveTags of a chained session
    assert g["scope"] is None and g["expires_at"] == datetime(2024, 6, 4, 11, 0)
    uses = query_rows(
        lake,
        "SELECT source_offset, action FROM uses WHERE credential_id = 'ASIAEXAMPLECHAIN001' ORDER BY 1",
    )
    assert uses == [
        {"source_offset": 0, "action": "s3:GetObject"},  # HeadObject is authorised as GetObject
        {"source_offset": 1, "action": "bedrock:InvokeModel"},
    ]


def test_lookup_events_output_and_a_cut_cloudtrail_event_string(lake: Lake) -> None:
    report = ingest([CT / "lookup"], lake)
    s = report.sources["cloudtrail"]
    assert (s.read, s.normalised, s.quarantined) == (3, 2, 1)
    assert one_row(lake, "grants", "9d4a1f41-0002-4f88-8f4d-000000000002")[
        "expires_at"
    ] == datetime(2024, 6, 5, 12, 59)
    assert one_row(lake, "uses", "9d4a1f41-0001-4f88-8f4d-000000000001")["action"] == "s3:GetObject"
    q = query_rows(lake, "SELECT source_offset, reason FROM quarantine")
    assert q == [{"source_offset": 2, "reason": "malformed CloudTrailEvent JSON string"}]


# ---------------------------------------------------------------- duplicates, replays
def test_shared_event_copies_are_one_event(lake: Lake) -> None:
    report = ingest([CT / "shared"], lake)
    s = report.sources["cloudtrail"]
    assert (s.read, s.normalised, s.duplicates) == (2, 1, 1)
    grants = query_rows(lake, "SELECT event_id, parent_grant_id, source_file FROM grants")
    # the copy naming the caller's key is kept; both copies share one event id
    assert [(g["event_id"], g["parent_grant_id"]) for g in grants] == [
        ("shared:5e5e5e5e-0001-4000-8000-000000000001:AssumeRole", "AKIAEXAMPLEPARTNER1")
    ]


def test_shared_event_copies_in_different_batches_are_one_event(lake: Lake) -> None:
    first, second = sorted((CT / "shared").rglob("*.json*"))
    ingest([second], lake)
    ingest([first], lake)
    n = query_rows(lake, "SELECT count(*) AS n FROM grants")
    assert n == [{"n": 1}]


def test_reingest_adds_nothing_and_redelivered_records_dedupe_by_event_id(lake: Lake) -> None:
    ingest([LOG], lake)
    again = ingest([LOG], lake)
    assert again.sources["cloudtrail"].skipped_files == 1 and again.commits == 0
    report = ingest([CT / "redelivered"], lake)
    assert report.sources["cloudtrail"].duplicates == 1
    n = query_rows(
        lake,
        "SELECT count(*) AS n FROM uses WHERE event_id = '6a1f0c1e-0002-4c55-9c1a-000000000002'",
    )
    assert n == [{"n": 1}]
    assert query_rows(lake, "SELECT count(*) AS n FROM uses")[0]["n"] == 10


def test_truncated_gzip_is_quarantined_whole(lake: Lake, tmp_path: Path) -> None:
    # and a good file in the same batch still loads
    shutil.copy(LOG, tmp_path / LOG.name)
    shutil.copytree(CT / "truncated", tmp_path / "t")
    report = ingest([tmp_path], lake)
    assert report.sources["cloudtrail"].read == 12
    q = query_rows(lake, "SELECT reason, source_offset FROM quarantine ORDER BY reason")
    assert q == [
        {"reason": "malformed JSON document", "source_offset": 0},
        {"reason": "missing eventTime", "source_offset": 10},
    ]


# --------------------------------------------------------------------------- secrets
def test_canary_secrets_never_reach_the_lake(lake: Lake, tmp_path: Path) -> None:
    # also a whole LookupEvents document that is not JSON: its records are escaped strings
    inner = {
        "eventName": "AssumeRole",
        "responseElements": {
            "credentials": {
                "sessionToken": CANARY + "-escaped",
                "secretAccessKey": CANARY + "-escaped-key",
            }
        },
    }
    events = {"Events": [{"EventId": "x", "CloudTrailEvent": json.dumps(inner)}] * 2}
    broken = tmp_path / "broken-lookup.json"
    broken.write_text(json.dumps(events, indent=2)[:-40])
    paths = [
        LOG,
        CT / "ndjson",
        CT / "eventbridge",
        CT / "lookup",
        CT / "shared",
        CT / "truncated",
        broken,
    ]
    ingest(paths, lake)
    parquet = sorted(lake.root.rglob("*.parquet"))
    assert any("quarantine" in p.as_posix() for p in parquet)
    assert any("grants" in p.as_posix() for p in parquet)
    con = lake.connect()
    reasons = con.execute("SELECT reason FROM quarantine WHERE source_file LIKE '%broken-lookup%'")
    assert reasons.fetchall() == [("malformed JSON document",)]
    for p in parquet:
        text = repr(con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall())
        assert CANARY not in text, p


def test_s3_names_its_calls_by_their_iam_actions(lake: Lake) -> None:
    # the S3 user guide's CloudTrail examples: ListBuckets is authorised by
    # s3:ListAllMyBuckets; PutBucketAcl logs an empty bucketName (no bucket, so no ARN)
    report = ingest([CT / "s3-userguide"], lake)
    assert report.sources["cloudtrail"].quarantined == 0
    uses = {
        r["event_name"]: r
        for r in query_rows(
            lake, "SELECT split_part(action, ':', 2) AS event_name, action, resource FROM uses"
        )
    }
    assert uses["ListAllMyBuckets"]["action"] == "s3:ListAllMyBuckets"
    assert uses["PutBucketAcl"]["resource"] is None
    assert uses["GetBucketVersioning"]["resource"] == "arn:aws:s3:::DOC-EXAMPLE-BUCKET1"


def test_insights_events_are_read_and_passed_over(lake: Lake) -> None:
    # a CloudTrail-Insight/ file holds unusual-activity summaries, not calls
    s = ingest([CT / "insight"], lake).sources["cloudtrail"]
    assert (s.read, s.normalised, s.quarantined) == (1, 1, 0)
    assert sum(s.rows.values()) == 0
