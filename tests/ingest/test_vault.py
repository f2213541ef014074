"""Vault / OpenBao file audit device ingester, against fixtures shaped as Vault writes them
(hashicorp/vault audit/types.go, entry_formatter.go, hashstructure.go; the audit docs)."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from jitaudit.ingest import ingest, registry
from jitaudit.ingest.files import InputError, open_input
from jitaudit.ingest.vault import INGESTER
from jitaudit.ingest.vault_enrich import load, parse_hcl_policy, ttl_seconds
from jitaudit.lake import Lake

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "vault"
AUDIT = FIX / "audit.log"
ENRICH = [FIX / "role_ttls.yaml", FIX / "billing-read.hcl", FIX / "token-creator.json"]

K8S_LOGIN = "Hq3kXv0mJ6gU2cN8tZr4Wb1y"
APPROLE = "Rk7pLq2sWv9xY3zA5bC8dE1f"
CHILD = "Ct4mNq8rSx2vZ6bD9fH3jK5l"
LEASE = "database/creds/billing-ro/Xy7Qw3Ez5Rt9Ui1Op4As6Df8"
RID = "a1f0c6d2-00{:02d}-4c1e-9a55-3b1e2d4c6f{:02d}"


def rid(n: int) -> str:
    return RID.format(n, n)


def q(lake: Lake, sql: str) -> list[tuple[Any, ...]]:
    return lake.connect().execute(sql).fetchall()


def one(lake: Lake, sql: str) -> dict[str, Any]:
    cur = lake.connect().execute(sql)
    rows = cur.fetchall()
    assert len(rows) == 1, rows
    return dict(zip([d[0] for d in cur.description], rows[0], strict=True))


# --- detection -------------------------------------------------------------------------

OTHER_FORMATS = [
    '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"4f1c",'
    '"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/a/pods","verb":"list",'
    '"user":{"username":"system:serviceaccount:a:b"}}',
    '{"Records":[{"eventVersion":"1.08","eventSource":"sts.amazonaws.com",'
    '"eventName":"AssumeRole","requestParameters":{"roleArn":"arn:aws:iam::1:role/x"}}]}',
    '{"decision_id":"4ca636c1","input":{"attributes":{"request":{"http":{"method":"GET",'
    '"path":"/x"}}}},"msg":"Decision Log","path":"envoy/authz/allow","result":true,'
    '"type":"openpolicyagent.org/decision_logs"}',
    '{"start_time":"2026-11-02T10:00:00.000Z","method":"GET","path":"/orders/1",'
    '"response_code":200,"request_id":"r1","authority":"orders.internal"}',
    '{"event":"access_request.create","uid":"u1","time":"2026-11-02T10:00:00Z",'
    '"user":"bot-billing","id":"req-1"}',
    '{"insertId":"x1","protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog",'
    '"methodName":"GenerateAccessToken","request":{"name":"projects/-/serviceAccounts/a"}}}',
]


@pytest.mark.parametrize("name", ["audit.log", "audit_hmac_prefix.log", "old_version.log"])
def test_sniff_recognises_vault_audit_files(name: str) -> None:
    assert registry.detect(open_input(FIX / name)) == "vault"
    assert INGESTER.sniff((FIX / name).read_text()[:65536])


def test_sniff_recognises_a_gzipped_file(tmp_path: Path) -> None:
    assert registry.detect(open_input(FIX / "audit.log.1.gz")) == "vault"


@pytest.mark.parametrize("head", OTHER_FORMATS)
def test_sniff_does_not_claim_other_formats(head: str) -> None:
    assert not INGESTER.sniff(head + "\n")


# --- grants ------------------------------------------------------------------------------


def test_logins_and_child_tokens_are_grants(lake: Lake) -> None:
    report = ingest([AUDIT], lake)
    s = report.sources["vault"]
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (27, 27, 0, 0)
    k8s = one(lake, f"SELECT * FROM grants WHERE grant_id = '{K8S_LOGIN}'")
    assert k8s["credential_id"] == K8S_LOGIN
    assert k8s["auth_method"] == "kubernetes" and k8s["attested"] is True
    assert k8s["agent_id"] == "billing-agent"  # service_account_name fallback
    assert k8s["workload_identity"] == "system:serviceaccount:agents:billing-agent"
    assert k8s["parent_grant_id"] is None
    assert k8s["issued_at"] == datetime(2026, 11, 2, 9, 0)
    assert k8s["expires_at"] == datetime(2026, 11, 2, 10, 0)  # token_ttl 3600
    assert k8s["scope"] is None  # no policy files: unknown, not empty
    assert k8s["policies"] == ["default", "token-creator"]

    approle = one(lake, f"SELECT * FROM grants WHERE grant_id = '{APPROLE}'")
    assert approle["attested"] is False and approle["auth_method"] == "approle"
    assert approle["agent_id"] == "reports-agent"  # metadata agent_id wins over role_name

    child = one(lake, f"SELECT * FROM grants WHERE grant_id = '{CHILD}'")
    assert child["parent_grant_id"] == K8S_LOGIN  # the creating request's accessor
    assert child["attested"] is None and child["auth_method"] == "token"
    assert child["task_id"] == "task-7781"
    assert child["objective"] == "reconcile November invoices"
    assert child["targets"] == ["secret/data/billing/*", "database/creds/billing-*"]
    assert child["decision_id"] == "opa-dec-5521" and child["approval"] == "policy"
    assert child["expires_at"] == datetime(2026, 11, 2, 9, 17)
    # the task metadata rides on the grant; Vault writes no task rows of its own
    assert (child["task_id"], child["parent_task_id"], child["agent_id"]) == (
        "task-7781",
        "task-7700",
        "billing-agent",
    )
    assert one(lake, "SELECT count(*) AS n FROM tasks")["n"] == 0


def test_dynamic_secret_read_is_a_lease_grant_with_unknown_expiry_and_a_use(lake: Lake) -> None:
    ingest([AUDIT], lake)
    lease = one(lake, f"SELECT * FROM grants WHERE grant_id = '{LEASE}'")
    assert lease["credential_id"] == LEASE and lease["parent_grant_id"] == CHILD
    assert lease["expires_at"] is None  # Vault never audits a lease's TTL
    assert lease["task_id"] == "task-7781" and lease["agent_id"] == "billing-agent"
    assert lease["issuer"] == "database/"
    use = one(lake, f"SELECT * FROM uses WHERE event_id = '{rid(5)}'")
    assert (use["credential_id"], use["action"], use["target"]) == (
        CHILD,
        "read",
        "database/creds/billing-ro",
    )


def test_enrichment_gives_lease_expiry_and_policy_scope(lake: Lake) -> None:
    ingest([AUDIT], lake, enrichment=ENRICH)
    lease = one(lake, f"SELECT expires_at FROM grants WHERE grant_id = '{LEASE}'")
    assert lease["expires_at"] == datetime(2026, 11, 2, 10, 2, 10, 250000)  # billing-* = 1h
    renew = one(lake, f"SELECT new_expires_at FROM grant_events WHERE event_id = '{rid(7)}'")
    assert renew["new_expires_at"] == datetime(2026, 11, 2, 9, 20, 0, 30000)  # increment 600
    child = one(lake, f"SELECT scope FROM grants WHERE grant_id = '{CHILD}'")
    assert "read:secret/data/billing/*" in child["scope"]
    assert "read:database/creds/billing-*" in child["scope"]  # `+` widened to `*`
    assert "read:auth/token/lookup-self" in child["scope"]  # built-in default policy
    assert not any(i.startswith("deny") or "admin" in i for i in child["scope"])
    # reports-read has no policy file: the approle token's scope stays unknown
    assert one(lake, f"SELECT scope FROM grants WHERE grant_id = '{APPROLE}'")["scope"] is None
    k8s = one(lake, f"SELECT scope FROM grants WHERE grant_id = '{K8S_LOGIN}'")
    assert "update:auth/token/create" in k8s["scope"]  # from the JSON policy form


# --- grant events, uses, denials, decisions ----------------------------------------------


def test_renewals_and_revocations_are_grant_events(lake: Lake) -> None:
    ingest([AUDIT], lake)
    rows = q(
        lake,
        "SELECT event_id, grant_id, kind, actor, new_expires_at, outcome FROM grant_events "
        "ORDER BY event_id",
    )
    assert rows == [
        (rid(7), LEASE, "renew", CHILD, None, "success"),
        (rid(8), CHILD, "renew", CHILD, datetime(2026, 11, 2, 9, 26, 0, 12000), "success"),
        (rid(10), LEASE, "revoke", CHILD, None, "success"),
        (rid(12), CHILD, "revoke", CHILD, None, "success"),
        (rid(14), K8S_LOGIN, "revoke", APPROLE, None, "success"),
    ]


def test_managing_its_own_token_or_lease_is_not_a_use(lake: Lake) -> None:
    ingest([AUDIT], lake)
    uses = {r[0] for r in q(lake, "SELECT event_id FROM uses")}
    for own in (7, 8, 9, 10, 12):  # lease renew, renew-self, lookup-self, lease revoke, revoke-self
        assert rid(own) not in uses
    # revoking another agent's token is an operation of the caller: a use as well
    use = one(lake, f"SELECT * FROM uses WHERE event_id = '{rid(14)}'")
    assert use["credential_id"] == APPROLE and use["agent_id"] == "reports-agent"
    assert uses == {rid(n) for n in (3, 4, 5, 6, 11, 13, 14)}
    # the token create is a use of the parent token
    assert one(lake, f"SELECT credential_id FROM uses WHERE event_id = '{rid(3)}'") == {
        "credential_id": K8S_LOGIN
    }


def test_uses_pair_request_and_response(lake: Lake) -> None:
    ingest([AUDIT], lake)
    use = one(lake, f"SELECT * FROM uses WHERE event_id = '{rid(4)}'")
    assert use["event_time"] == datetime(2026, 11, 2, 9, 2, 5, 100000)  # the request entry
    assert use["logged_time"] == datetime(2026, 11, 2, 9, 2, 5, 109000)  # the response entry
    assert use["source_offset"] == 7  # the response line is the one normalised
    assert (use["principal_id"], use["task_id"]) == (
        "2b8e5f4a-1c3d-4e6f-8a9b-0c1d2e3f4a5b",
        "task-7781",
    )
    assert use["src_ip"] == "10.0.4.17" and use["user_agent"] == "billing-agent/1.4 vault-client-go"
    assert use["outcome"] == "success" and use["error_code"] is None
    # a request entry with no response is normalised on its own
    alone = one(lake, f"SELECT * FROM uses WHERE event_id = '{rid(11)}'")
    assert alone["action"] == "list" and alone["logged_time"] == alone["event_time"]


def test_permission_denied_is_a_denial_and_policy_results_a_decision(lake: Lake) -> None:
    ingest([AUDIT], lake)
    denied = one(lake, f"SELECT * FROM uses WHERE event_id = '{rid(6)}'")
    assert denied["outcome"] == "denied" and "permission denied" in denied["error_code"]
    dec = one(lake, f"SELECT * FROM decisions WHERE decision_id = '{rid(6)}'")
    assert dec["allowed"] is False and dec["resource"] == "secret/data/payroll/salaries"
    ok = one(lake, f"SELECT * FROM decisions WHERE decision_id = '{rid(4)}'")
    assert ok["allowed"] is True and ok["policy_path"] == "billing-read"
    assert ok["agent_id"] == "billing-agent" and ok["request_id"] == rid(4)
    # a revoked token is logged without its accessor: the HMAC'd token still finds it
    after = one(lake, f"SELECT * FROM uses WHERE event_id = '{rid(13)}'")
    assert after["credential_id"] == CHILD and after["outcome"] == "denied"


# --- quirks -----------------------------------------------------------------------------


def test_hmac_accessors_and_prefix(lake: Lake) -> None:
    report = ingest([FIX / "audit_hmac_prefix.log"], lake)
    s = report.sources["vault"]
    assert (s.read, s.normalised, s.quarantined) == (27, 27, 0)
    counts = q(
        lake,
        "SELECT (SELECT count(*) FROM grants), (SELECT count(*) FROM grant_events), "
        "(SELECT count(*) FROM uses), (SELECT count(*) FROM decisions)",
    )
    assert counts == [(4, 5, 7, 13)]
    child = one(
        lake,
        "SELECT grant_id, parent_grant_id FROM grants WHERE task_id = 'task-7781' "
        "AND auth_method = 'token'",
    )
    assert child["grant_id"].startswith("hmac-sha256:")
    assert child["parent_grant_id"].startswith("hmac-sha256:")
    # uses join their grant on the HMAC'd accessor; revoke-accessor's HMAC'd body joins too
    assert q(
        lake,
        "SELECT count(*) FROM uses u JOIN grants g ON u.credential_id = g.credential_id "
        "WHERE u.event_id = '" + rid(4) + "' AND g.task_id = 'task-7781'",
    ) == [(1,)]
    revoked = one(lake, f"SELECT grant_id FROM grant_events WHERE event_id = '{rid(14)}'")
    login = one(lake, "SELECT grant_id FROM grants WHERE auth_method = 'kubernetes'")
    assert revoked["grant_id"] == login["grant_id"]


def test_old_versions_empty_fields_are_unknown(lake: Lake) -> None:
    ingest([FIX / "old_version.log"], lake)
    g = one(lake, "SELECT * FROM grants")
    assert g["grant_id"] == "9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f"
    assert g["auth_method"] == "approle"  # no mount_type: taken from the path
    assert g["agent_id"] == "legacy-batch" and g["expires_at"] is None
    u = one(lake, "SELECT * FROM uses")
    assert u["src_ip"] is None and u["error_code"] is None and u["task_id"] is None
    assert q(lake, "SELECT count(*) FROM decisions") == [(0,)]  # no policy_results then
    for table in ("grants", "uses"):
        for row in q(lake, f"SELECT * FROM {table}"):
            assert "" not in row


def test_malformed_records_are_quarantined_and_ingestion_continues(lake: Lake) -> None:
    report = ingest([FIX / "malformed.log"], lake)
    s = report.sources["vault"]
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (6, 3, 3, 0)
    rows = q(lake, "SELECT source_offset, reason, source_file FROM quarantine ORDER BY 1")
    assert [(r[0], r[1]) for r in rows] == [
        (1, "not valid JSON (truncated or corrupt line)"),
        (2, "not a JSON object"),
        (3, "not a Vault audit entry: type is not request or response"),
    ]
    assert all(r[2] == str(FIX / "malformed.log") for r in rows)
    # an entry without request.id is named by its request object (h: + hash)
    assert {r[0] for r in q(lake, "SELECT resource FROM uses")} == {
        "secret/data/ok/one",
        "secret/data/ok/four",
        "secret/data/ok/five",
    }


def test_reingest_adds_nothing_and_repeats_across_files_dedupe(tmp_path: Path, lake: Lake) -> None:
    ingest([AUDIT], lake)
    before = q(lake, "SELECT (SELECT count(*) FROM uses), (SELECT count(*) FROM grant_events)")
    again = ingest([AUDIT], lake)
    assert again.sources["vault"].skipped_files == 1 and again.commits == 0
    # the rotated file repeats request ids 13 and 14 and adds request 15
    rotated = ingest([FIX / "audit.log.1.gz"], lake)
    s = rotated.sources["vault"]
    assert s.read == 6 and s.duplicates == 2  # the two repeated primary entries
    after = q(lake, "SELECT (SELECT count(*) FROM uses), (SELECT count(*) FROM grant_events)")
    assert after == [(before[0][0] + 1, before[0][1])]


def test_two_devices_in_one_batch_dedupe_by_request_id(tmp_path: Path, lake: Lake) -> None:
    copy = tmp_path / "audit-device-2.log"
    shutil.copy(AUDIT, copy)
    report = ingest([AUDIT, copy], lake)
    s = report.sources["vault"]
    assert (s.read, s.duplicates) == (54, 27)
    assert q(lake, "SELECT count(*) FROM uses") == [(7,)]


# --- secrets ----------------------------------------------------------------------------

CANARY = "CANARY9z8y7x"


def _canary_lines() -> list[str]:
    """``log_raw=true`` entries: tokens, passwords and headers in clear."""
    tok = f"hvs.{CANARY}tok"
    auth = {
        "accessor": "Cn1Cn1Cn1Cn1Cn1Cn1Cn1Cn1a",
        "client_token": tok,
        "display_name": "token",
        "metadata": {"agent_id": "canary-agent"},
        "policies": ["default"],
        "policy_results": {"allowed": True},
        "token_type": "service",
    }
    req = {
        "client_token": tok,
        "client_token_accessor": "Cn1Cn1Cn1Cn1Cn1Cn1Cn1Cn1a",
        "data": {"password": CANARY, "secret_id": CANARY, "token": CANARY, "value": CANARY},
        "headers": {"x-vault-token": [CANARY], "authorization": [f"Bearer {CANARY}"]},
        "id": "ca0a0a0a-0000-4000-8000-000000000001",
        "operation": "update",
        "path": "auth/token/create",
        "remote_address": "10.9.9.9",
    }
    resp = {
        "auth": {**auth, "accessor": "Cn2Cn2Cn2Cn2Cn2Cn2Cn2Cn2b", "client_token": CANARY},
        "data": {"password": CANARY, "username": "u"},
        "secret": {"lease_id": "database/creds/x/L1"},
        "wrap_info": {"token": CANARY, "accessor": "w1", "ttl": 60},
    }
    lines = [
        json.dumps({"time": "2026-11-02T12:00:00Z", "auth": auth, "request": req, "type": t})
        if t == "request"
        else json.dumps(
            {
                "time": "2026-11-02T12:00:01Z",
                "auth": auth,
                "request": req,
                "response": resp,
                "type": t,
            }
        )
        for t in ("request", "response")
    ]
    old_path = {
        **req,
        "id": "ca0a0a0a-0000-4000-8000-000000000002",
        "data": None,
        "path": f"auth/token/revoke/{CANARY}",
    }
    lines.append(
        json.dumps(
            {"time": "2026-11-02T12:00:02Z", "auth": auth, "request": old_path, "type": "request"}
        )
    )
    lines.append(json.dumps({"auth": auth, "request": req})[:-40])  # truncated: quarantined
    lines.append(
        json.dumps({"time": "x", "auth": auth, "request": {**req, "id": None}, "type": "request"})
    )  # no id, a bad time: one quarantined record, though its use and decision are rejected
    return lines


def test_canary_secrets_never_reach_the_lake(tmp_path: Path, lake: Lake) -> None:
    f = tmp_path / "raw.log.gz"
    f.write_bytes(gzip.compress(("\n".join(_canary_lines()) + "\n").encode()))
    report = ingest([f], lake, fmt="vault")
    s = report.sources["vault"]
    assert s.quarantined == 2 and s.normalised == 3
    reasons = q(lake, "SELECT reason FROM quarantine WHERE source_offset = 4")
    assert reasons == [("decisions: missing event_time; uses: missing event_time",)]
    assert one(lake, "SELECT grant_id FROM grants")["grant_id"] == "Cn2Cn2Cn2Cn2Cn2Cn2Cn2Cn2b"
    # the token named in the (deprecated) revoke path is the child's: found by its value
    assert one(lake, "SELECT grant_id FROM grant_events")["grant_id"] == "Cn2Cn2Cn2Cn2Cn2Cn2Cn2Cn2b"
    use = one(lake, "SELECT resource FROM uses WHERE resource LIKE 'auth/token/revoke/%'")
    assert use["resource"].startswith("auth/token/revoke/fp:")  # fingerprinted in the path
    parquet = list(lake.root.rglob("*.parquet"))
    assert any("quarantine" in p.as_posix() for p in parquet)
    con = lake.connect()
    for p in parquet:
        rows = con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall()
        assert CANARY not in repr(rows), p


# --- enrichment files -------------------------------------------------------------------


def test_ttl_seconds_reads_numbers_and_go_durations() -> None:
    assert [ttl_seconds(v) for v in (900, "900", "15m", "1h30m", "90s", "1.5h")] == [
        900,
        900,
        900,
        5400,
        90,
        5400,
    ]
    with pytest.raises(ValueError):
        ttl_seconds("soon")


def test_hcl_policy_items_and_api_read_form(tmp_path: Path) -> None:
    items = parse_hcl_policy((FIX / "billing-read.hcl").read_text())
    assert items == [
        "list:secret/data/billing/*",
        "list:secret/metadata/billing",
        "read:database/creds/billing-*",
        "read:secret/data/billing/*",
    ]
    api = tmp_path / "x.json"
    api.write_text(
        json.dumps({"data": {"name": "ops", "policy": 'path "kv/*" { policy = "write" }'}})
    )
    other = tmp_path / "iam.json"  # another ingester's enrichment: ignored
    other.write_text(json.dumps({"Version": "2012-10-17", "Statement": []}))
    e = load([api, other])
    assert e.policies["ops"] == [
        f"{c}:kv/*" for c in ("create", "delete", "list", "read", "update")
    ]
    assert set(e.policies) == {"ops", "default", "root"}


def test_a_broken_role_ttl_file_is_an_input_error(tmp_path: Path, lake: Lake) -> None:
    bad = tmp_path / "ttl.yaml"
    bad.write_text("vault_role_ttls:\n  database/creds/*: whenever\n")
    with pytest.raises(InputError, match="not a valid Vault file"):
        ingest([AUDIT], lake, enrichment=[bad])
    assert lake.commits() == []


def test_an_entry_without_request_id_is_named_by_its_request(tmp_path: Path, lake: Lake) -> None:
    # Vault logs a "help" request without request.id (a genuine line from a 2021 audit log);
    # its response entry logs the same request object, so the two still pair
    request = (FIX / "no-request-id.log").read_text().strip()
    response = json.loads(request) | {"type": "response", "time": "2021-12-30T17:11:12.4701Z"}
    f = tmp_path / "audit.log"
    f.write_text(request + "\n" + json.dumps(response) + "\n")
    s = ingest([f], lake).sources["vault"]
    assert (s.read, s.quarantined) == (2, 0)
    use = one(lake, "SELECT event_id, action, resource, event_time FROM uses")
    assert use["event_id"].startswith("h:") and use["action"] == "help"
    assert use["resource"] == "ca/roles/example"
    # the request entry's time: when Vault received it
    assert use["event_time"] == datetime(2021, 12, 30, 17, 11, 12, 468537)
