"""Every file the simulator writes parses as its real format, with the documented fields."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

KEY = re.compile(
    r"cloudtrail/AWSLogs/(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d\d)/(\d\d)/"
    r"\1_CloudTrail_\2_(\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$"
)
EXPIRY = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d:\d\d [AP]M$")
HEX = re.compile(r"^[0-9a-f]+$")


def lines(root: Path, pattern: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(root.glob(pattern)):
        with path.open() as fh:
            out.extend(json.loads(line) for line in fh)
    assert out, pattern
    return out


def test_cloudtrail_files_are_gzip_records_with_documented_fields(sample: Path) -> None:
    files = sorted(sample.glob("cloudtrail/**/*.json.gz"))
    assert files
    records = []
    for path in files:
        match = KEY.search(path.as_posix())
        assert match, path
        doc = json.loads(gzip.decompress(path.read_bytes()))
        assert set(doc) == {"Records"} and doc["Records"]
        for record in doc["Records"]:
            assert record["eventTime"] <= (
                f"{match[6][:4]}-{match[6][4:6]}-{match[6][6:8]}T{match[6][9:11]}:{match[6][11:13]}:59Z"
            )
            records.append(record)
    required = {
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "requestID",
        "eventID",
        "readOnly",
        "eventType",
        "managementEvent",
        "recipientAccountId",
        "eventCategory",
        "tlsDetails",
    }
    for record in records:
        assert required <= set(record), record["eventName"]
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", record["eventTime"])
        if record["eventName"].startswith("AssumeRole"):
            creds = record["responseElements"]["credentials"]
            assert EXPIRY.match(creds["expiration"]), creds["expiration"]
            assert creds["accessKeyId"].startswith("ASIA")
        if record["eventName"] == "AssumeRole":
            assert isinstance(record["requestParameters"]["policy"], str)
            json.loads(record["requestParameters"]["policy"])
            assert {t["key"] for t in record["requestParameters"]["tags"]} >= {
                "agent_id",
                "task_id",
                "decision_id",
            }
        if record["userIdentity"]["type"] == "AssumedRole":
            context = record["userIdentity"]["sessionContext"]
            assert set(context["attributes"]) == {"creationDate", "mfaAuthenticated"}
            assert context["sessionIssuer"]["type"] == "Role"
    names = Counter(r["eventName"] for r in records)
    assert names["AssumeRoleWithWebIdentity"] and names["AssumeRole"] and names["GetObject"]
    assert any("sharedEventID" in r for r in records), "cross-account copies"
    assert any("errorCode" not in r for r in records)
    ids = Counter(r["eventID"] for r in records)
    assert any(n == 2 for n in ids.values()), "some records are delivered twice"


def test_vault_requests_pair_with_responses_and_tokens_are_hmaced(sample: Path) -> None:
    entries = lines(sample, "vault/audit/*.log")
    by_id: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        assert set(entry) <= {"time", "type", "auth", "request", "response", "error"}
        by_id[entry["request"]["id"]].append(entry["type"])
        token = entry["request"].get("client_token") or entry["auth"].get("client_token")
        if token:
            assert token.startswith("hmac-sha256:") and len(token) == 12 + 64
        if entry["type"] == "response" and "auth" in entry.get("response", {}):
            auth = entry["response"]["auth"]
            assert auth["client_token"].startswith("hmac-sha256:")
            assert len(auth["accessor"]) == 24 and ":" not in auth["accessor"]
            assert auth["token_ttl"] > 0
    assert all(sorted(kinds) == ["request", "response"] for kinds in by_id.values())
    paths = Counter(e["request"]["path"].split("/")[0] for e in entries)
    assert paths["auth"] and paths["database"] and paths["sys"]
    created = [
        e
        for e in entries
        if e["type"] == "response" and e["request"]["path"] == "auth/token/create"
    ]
    meta = created[0]["response"]["auth"]["metadata"]
    assert {"task_id", "objective", "targets", "decision_id", "agent_id"} <= set(meta)
    assert all("policy_results" in e["auth"] for e in entries if e["type"] == "request")
    text = "".join(p.read_text() for p in sample.glob("vault/**/*.log"))
    assert "hvs." not in text, "Vault never logs a token in plaintext"


def test_opa_console_lines_and_uploads(sample: Path) -> None:
    console = lines(sample, "opa/envoy-sidecar/*.jsonl")
    for entry in console:
        assert entry["msg"] == "Decision Log" and entry["level"] == "info"
        http = entry["input"]["attributes"]["request"]["http"]
        assert {"x-request-id", "x-agent-id", "x-task-id"} <= set(http["headers"])
        assert "authorization" not in http["headers"]
        assert isinstance(entry["result"], bool)
    uploads = sorted(sample.glob("opa/grant-approvals/uploads/**/*.json.gz"))
    decisions = [d for p in uploads for d in json.loads(gzip.decompress(p.read_bytes()))]
    assert all(
        {"decision_id", "bundles", "path", "input", "result", "timestamp"} <= set(d)
        for d in decisions
    )
    revisions = {r["revision"] for d in console + decisions for r in d["bundles"].values()}
    assert len(revisions) == 2, "the bundle revision changes once"
    dup = Counter(d["decision_id"] for d in decisions)
    assert max(dup.values()) == 2, "a retried upload delivers a batch twice"


def test_envoy_lines_have_istio_keys_and_a_bearer(sample: Path) -> None:
    istio = {
        "start_time",
        "method",
        "path",
        "protocol",
        "response_code",
        "response_flags",
        "bytes_received",
        "bytes_sent",
        "duration",
        "upstream_host",
        "x_forwarded_for",
        "user_agent",
        "request_id",
        "authority",
        "downstream_remote_address",
    }
    for entry in lines(sample, "envoy/*.log"):
        assert istio | {"agent_id", "task_id", "credential_id", "authorization"} <= set(entry)
        assert entry["authorization"].startswith("Bearer hvs.")


def test_otlp_lines_parse_with_genai_spans(sample: Path) -> None:
    names = Counter()
    for request in lines(sample, "otel/*.jsonl"):
        for resource in request["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    assert len(span["traceId"]) == 32 and HEX.match(span["traceId"])
                    assert len(span["spanId"]) == 16 and HEX.match(span["spanId"])
                    assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
                    attrs = {a["key"]: a["value"] for a in span["attributes"]}
                    op = attrs["gen_ai.operation.name"]["stringValue"]
                    names[op] += 1
                    assert span["name"].startswith(op)
                    if op in ("invoke_agent", "execute_tool"):
                        assert "gen_ai.agent.id" in attrs and "gen_ai.conversation.id" in attrs
    assert names["invoke_agent"] and names["execute_tool"] and names["chat"]


def test_kubernetes_events_have_both_stages(sample: Path) -> None:
    events = lines(sample, "kubernetes/*.log")
    stages: dict[str, list[str]] = defaultdict(list)
    for event in events:
        assert event["apiVersion"] == "audit.k8s.io/v1" and event["kind"] == "Event"
        stages[event["auditID"]].append(event["stage"])
        if event["stage"] == "ResponseComplete":
            assert event["annotations"]["authorization.k8s.io/decision"] in ("allow", "forbid")
            if event["objectRef"].get("subresource") == "token":
                jti = event["annotations"]["authentication.kubernetes.io/issued-credential-id"]
                assert jti.startswith("JTI=")
    assert all({"RequestReceived", "ResponseComplete"} <= set(s) for s in stages.values())


def test_gcp_entries_are_audit_logs(sample: Path) -> None:
    files = sorted(sample.glob("gcp/cloudaudit.googleapis.com/data_access/*/*/*/*_S0.json"))
    assert files
    for entry in lines(sample, "gcp/**/*.json"):
        payload = entry["protoPayload"]
        assert payload["@type"] == "type.googleapis.com/google.cloud.audit.AuditLog"
        assert {"insertId", "timestamp", "receiveTimestamp", "logName", "resource"} <= set(entry)
        assert entry["receiveTimestamp"] >= entry["timestamp"]
        assert payload["authorizationInfo"][0]["permission"]
