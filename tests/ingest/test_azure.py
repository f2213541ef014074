"""Azure: Entra service-principal / managed-identity sign-ins as grants, Activity Log records as
uses joined on claims.uti, RBAC evidence and sign-in status as decisions.

Fixtures follow Azure Monitor's resource-log schema as diagnostic settings write it (storage
PT1H.json JSON lines; Event Hubs {"records": [...]}), the sign-in fields of the Entra
schema, and the Activity Log sample in the Azure Monitor docs (identity.authorization/claims)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jitaudit.ingest import ingest
from jitaudit.ingest.azure import INGESTER
from jitaudit.ingest.files import open_input
from jitaudit.ingest.opa import INGESTER as OPA
from jitaudit.lake import Lake
from tests.conftest import FIXTURES

AZ = FIXTURES / "azure"
CANARY = "CANARY-az-93d1"
SECRET_SP = "5e6f7a8b-1111-4222-8333-944455556666"
FED_SP = "b1c34143-e405-4058-8e29-84596ad737b8"


def _rows(lake: Lake, table: str, key: str) -> dict[Any, dict[str, Any]]:
    cur = lake.connect().execute(f"SELECT * FROM {table}")
    cols = [d[0] for d in cur.description]
    return {r[cols.index(key)]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


@pytest.fixture
def az(lake: Lake) -> Lake:
    ingest([AZ], lake, fmt="azure")
    return lake


@pytest.mark.parametrize(
    "name",
    [
        "signins/PT1H.json",
        "signins/managed-identity.json",
        "activity/PT1H.json",
        "activity/eventhub-0001.json",
    ],
)
def test_azure_fixtures_are_detected_and_not_claimed_by_opa(name: str) -> None:
    head = open_input(AZ / name).head().decode()
    assert INGESTER.sniff(head) and not OPA.sniff(head)


def test_azure_sniff_leaves_opa_and_other_json_alone() -> None:
    for other in sorted((FIXTURES / "opa").iterdir()):
        assert not INGESTER.sniff(open_input(other).head().decode()), other
    assert not INGESTER.sniff('{"category": "SignInLogs", "foo": 1}')


def test_sign_ins_are_grants_keyed_by_unique_token_identifier(az: Lake) -> None:
    g = _rows(az, "grants", "credential_id")
    assert set(g) == {
        "uti-secret-0001AAAAAAAA",
        "uti-fed-0002BBBBBBBBBB",
        "uti-cert-0004DDDDDDDDD",
        "uti-msi-0005EEEEEEEEEE",
    }  # the failed sign-in (AADSTS7000215) issued no token
    fed = g["uti-fed-0002BBBBBBBBBB"]
    assert (fed["grant_id"], fed["principal_id"], fed["agent_id"]) == (
        "uti-fed-0002BBBBBBBBBB",
        FED_SP,
        FED_SP,
    )
    assert fed["attested"] is True and fed["auth_method"] == "federatedIdentityCredential"
    assert str(fed["issued_at"]) == "2026-11-01 10:00:00.123456"  # 7 fractional digits
    assert fed["expires_at"] is None and fed["scope"] is None  # not logged: unverifiable
    assert fed["approval"] == "auto"
    assert g["uti-secret-0001AAAAAAAA"]["attested"] is False  # client secret
    assert g["uti-cert-0004DDDDDDDDD"]["attested"] is False  # certificate
    assert str(g["uti-cert-0004DDDDDDDDD"]["issued_at"]) == "2026-11-01 10:05:00"  # +02:00
    msi = g["uti-msi-0005EEEEEEEEEE"]
    assert msi["attested"] is True and msi["auth_method"] == "managedIdentity"


def test_failed_sign_in_is_a_denying_decision(az: Lake) -> None:
    d = _rows(az, "decisions", "decision_id")["36658c78-02d9-4d8f-84ee-5ca4a3fd0003"]
    assert d["allowed"] is False and d["agent_id"] == SECRET_SP
    assert d["reason"].startswith("AADSTS7000215: Invalid client secret")


def test_activity_records_are_uses_joined_by_uti_with_arm_casing(az: Lake) -> None:
    uses = _rows(az, "uses", "request_id")
    assert len(uses) == 4  # listKeys (Start folded), KV denied (twice delivered), VM, read
    lk = uses["c776f9f4-36e5-4e0e-809b-c9b3c3fb0001"]
    assert lk["credential_id"] == "uti-fed-0002BBBBBBBBBB" and lk["agent_id"] == FED_SP
    assert lk["action"] == "Microsoft.Storage/storageAccounts/listKeys/action"
    assert (
        lk["resource"]
        == lk["target"]
        == (
            "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/billing-rg"
            "/providers/Microsoft.Storage/storageAccounts/billingsa"
        )
    )
    assert lk["outcome"] == "success" and lk["src_ip"] == "20.42.1.7"
    assert str(lk["event_time"]) == "2026-11-01 10:03:00.512000"  # the final record, not Start
    kv = uses["c776f9f4-36e5-4e0e-809b-c9b3c3fb0002"]
    assert (kv["outcome"], kv["error_code"]) == ("denied", "AuthorizationFailed")
    vm = uses["c776f9f4-36e5-4e0e-809b-c9b3c3fb0003"]
    assert (vm["outcome"], vm["error_code"]) == ("error", "Conflict")


def test_rbac_evidence_and_authorization_failures_are_decisions(az: Lake) -> None:
    d = {r["request_id"]: r for r in _rows(az, "decisions", "decision_id").values()}
    assert d["c776f9f4-36e5-4e0e-809b-c9b3c3fb0001"]["allowed"] is True
    assert (
        d["c776f9f4-36e5-4e0e-809b-c9b3c3fb0001"]["reason"] == "role: Storage Account Contributor"
    )
    assert d["c776f9f4-36e5-4e0e-809b-c9b3c3fb0002"]["allowed"] is False


def test_counts_reconcile_malformed_quarantined_and_other_categories_yield_nothing(
    lake: Lake,
) -> None:
    s = ingest([AZ], lake, fmt="azure").sources["azure"]
    # 5 + 1 sign-in lines, 5 Event Hub records (Start folded, Policy read), 2 storage lines
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (13, 11, 1, 1)
    q = lake.connect().execute("SELECT source_file, source_offset, reason FROM quarantine")
    assert [(Path(f).name, o, r) for f, o, r in q.fetchall()] == [
        ("PT1H.json", 2, "not valid JSON")
    ]


def test_reingest_adds_nothing_and_redelivered_records_dedupe(tmp_path: Path, lake: Lake) -> None:
    ingest([AZ], lake, fmt="azure")
    assert ingest([AZ], lake, fmt="azure").commits == 0
    # the Event Hub body delivered again (at-least-once), re-serialised differently
    body = json.loads((AZ / "activity" / "eventhub-0001.json").read_text())
    again = tmp_path / "eventhub-0002.json"
    again.write_text(json.dumps(body))
    s = ingest([again], lake, fmt="azure").sources["azure"]
    assert s.read == 5 and s.normalised == 2 and s.duplicates == 3  # 3 rows, Start + Policy
    assert lake.connect().execute("SELECT count(*) FROM uses").fetchall() == [(4,)]


def test_canary_secrets_never_reach_the_lake(tmp_path: Path, lake: Lake) -> None:
    text = (AZ / "activity" / "eventhub-0001.json").read_text()
    assert text.count(CANARY) == 2  # storage key in responseBody, VM password in requestbody
    broken = tmp_path / "broken.json"
    broken.write_text("\n".join(json.dumps(r)[:-3] for r in json.loads(text)["records"]) + "\n")
    ingest([AZ, broken], lake, fmt="azure")
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] >= 5
    for p in lake.root.rglob("*.parquet"):
        assert CANARY not in repr(con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall()), p
