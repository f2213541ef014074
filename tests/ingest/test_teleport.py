"""Teleport: approved access requests and cert.create as grants, review/update/expire as grant
events and decisions.

Fixtures follow Teleport's own event shapes: the AccessRequestCreate / AccessRequestExpire /
CertificateCreate messages of api/proto/teleport/legacy/types/events/events.proto (json tags
``id``, ``state``, ``proposed_state``, ``reviewer``, ``delegator``, ``updated_by``, ``expires``,
``max_duration``, ``resource_ids``, ``identity.access_requests`` …), the examples of the
"Audit Events reference" (T5000I … T5005I, TC000I) and cert.create events exported from a real
cluster with a Machine ID bot (``bot-<name>``, ``bot_instance_id``, nanosecond ``expires``,
``prev_identity_expires`` = Go's zero time). events.log is the file log (compact JSON lines);
tctl-export.json is a pretty-printed exported array, newest first.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from jitaudit import replay
from jitaudit.ingest import ingest, registry
from jitaudit.ingest.files import open_input
from jitaudit.ingest.teleport import INGESTER
from jitaudit.lake import Lake
from tests.conftest import FIXTURES

TP = FIXTURES / "teleport"
LOG = TP / "events.log"
EXPORT = TP / "tctl-export.json"
SECRETS = TP / "events-secrets.log.gz"
CANARY = "CANARY-tp-5e1b"
R1, R2, R3, R4, R6, R7 = (f"0189e2f4-6b3a-7c51-9d2e-1a2b3c4d5e0{i}" for i in (1, 2, 3, 4, 6, 7))


def _rows(lake: Lake, table: str, key: str) -> dict[Any, dict[str, Any]]:
    cur = lake.connect().execute(f"SELECT * FROM {table}")
    cols = [d[0] for d in cur.description]
    return {r[cols.index(key)]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


@pytest.fixture
def tp(lake: Lake) -> Lake:
    ingest([LOG, EXPORT], lake)
    return lake


@pytest.mark.parametrize("path", [LOG, EXPORT, SECRETS])
def test_teleport_files_are_detected(path: Path) -> None:
    f = open_input(path)
    assert registry.detect(f) == "teleport"


def test_teleport_sniff_does_not_claim_other_formats() -> None:
    others = [p for p in FIXTURES.rglob("*") if p.is_file() and "teleport" not in p.parts]
    assert others
    for p in others:
        head = open_input(p).head().decode("utf-8", errors="replace")
        assert not INGESTER.sniff(head), p
    # JSON with an "event" key but none of Teleport's codes/uids
    assert not INGESTER.sniff('{"event": "login", "time": "2026-11-02T09:00:00Z", "user": "x"}')


def test_approved_access_request_is_a_grant_at_approval_time(tp: Lake) -> None:
    g = _rows(tp, "grants", "grant_id")
    r1 = g[R1]
    assert r1["credential_id"] == R1
    assert (r1["agent_id"], r1["principal_id"]) == ("bot-deployer", "bot-deployer")
    assert r1["task_id"] == r1["objective"] == "task-42: rotate billing database credentials"
    # issued when alice's review approved it, not when the bot asked
    assert r1["issued_at"] == datetime(2026, 11, 2, 9, 3, 41, 877000)
    assert r1["expires_at"] == datetime(2026, 11, 2, 10, 1, 10, 250000)
    assert r1["policies"] == ["db-admin"] and r1["scope"] is None  # role contents unknown
    assert (r1["approval"], r1["issuer"]) == ("human", "teleport.example.com")
    assert r1["decision_id"] == "a1000000-0000-4000-8000-000000000004"
    assert r1["auth_method"] == "access_request"


def test_resource_request_targets_and_plugin_delegated_approval(tp: Lake) -> None:
    r3 = _rows(tp, "grants", "grant_id")[R3]
    assert r3["targets"] == [
        "/teleport.example.com/node/be13d7a6-2686-44d9-bd46-ed0dfb10caf1",
        "/teleport.example.com/kube_cluster/prod/reports/collector-0",
    ]
    assert r3["approval"] == "human" and r3["agent_id"] == "bot-reporter"
    ev = _rows(tp, "grant_events", "event_id")["a1000000-0000-4000-8000-000000000010"]
    assert (ev["kind"], ev["actor"]) == ("issue", "carol@example.com")  # delegator, not "slack"


def test_automatic_review_is_policy_approval(tp: Lake) -> None:
    assert _rows(tp, "grants", "grant_id")[R6]["approval"] == "policy"


def test_unapproved_requests_are_not_grants(tp: Lake) -> None:
    g = _rows(tp, "grants", "grant_id")
    assert R2 not in g  # denied
    assert R4 not in g  # pending, then deleted


def test_multi_review_request_is_granted_when_threshold_met(tp: Lake) -> None:
    r7 = _rows(tp, "grants", "grant_id")[R7]
    # the first approving vote left it PENDING; the second one approved it
    assert r7["issued_at"] == datetime(2026, 11, 3, 8, 20)
    assert r7["policies"] == ["db-admin", "db-reader"]
    d = _rows(tp, "decisions", "decision_id")
    assert d["b2000000-0000-4000-8000-000000000002"]["allowed"] is True
    ev = _rows(tp, "grant_events", "event_id")
    assert "b2000000-0000-4000-8000-000000000002" not in ev  # a vote is not a lifecycle event


def test_denial_is_a_denied_revoke_and_a_negative_decision(tp: Lake) -> None:
    ev = _rows(tp, "grant_events", "event_id")["a1000000-0000-4000-8000-000000000008"]
    assert (ev["grant_id"], ev["kind"], ev["outcome"]) == (R2, "revoke", "denied")
    assert ev["actor"] == "bob@example.com" and ev["principal_id"] == "bot-deployer"
    d = _rows(tp, "decisions", "decision_id")["a1000000-0000-4000-8000-000000000008"]
    assert d["allowed"] is False and d["agent_id"] == "bot-deployer"
    assert d["reason"] == "prod-admin is not needed for a credential rotation"


def test_expire_event_and_replay_validity(tp: Lake) -> None:
    ev = _rows(tp, "grant_events", "event_id")["a1000000-0000-4000-8000-000000000016"]
    assert (ev["grant_id"], ev["kind"]) == (R1, "expire")
    con = tp.connect()
    replay.register(con)
    rows = con.execute(
        "SELECT grant_id, issued_at, valid_until, task_id FROM replay_grants "
        "WHERE grant_id IN (?, ?, 'a1000000-0000-4000-8000-000000000005') ORDER BY issued_at",
        [R1, R2],
    ).fetchall()
    assert rows == [
        (
            R1,
            datetime(2026, 11, 2, 9, 3, 41, 877000),
            datetime(2026, 11, 2, 10, 1, 10, 250000),
            "task-42: rotate billing database credentials",
        ),
        # the certificate inherits the request's task through parent_grant_id
        (
            "a1000000-0000-4000-8000-000000000005",
            datetime(2026, 11, 2, 9, 3, 52, 6000),
            datetime(2026, 11, 2, 10, 1, 10, 250000),
            "task-42: rotate billing database credentials",
        ),
    ]  # the denied R2 never becomes a grant, its denied revoke shapes nothing


def test_cert_create_is_a_grant_linked_to_its_access_request(tp: Lake) -> None:
    g = _rows(tp, "grants", "grant_id")
    cert = g["a1000000-0000-4000-8000-000000000005"]
    assert cert["credential_id"] == "a1000000-0000-4000-8000-000000000005"
    assert cert["parent_grant_id"] == R1
    assert cert["agent_id"] == "bot-deployer"
    assert cert["workload_identity"] == "5b1f0c2e-8d4a-4c3b-9e7f-0a1b2c3d4e5f"
    assert cert["auth_method"] == "machine_id"
    assert cert["policies"] == ["bot-deployer", "db-admin"]
    assert cert["expires_at"] == datetime(2026, 11, 2, 10, 1, 10, 250000)
    plain = g["a1000000-0000-4000-8000-000000000002"]
    assert plain["parent_grant_id"] is None
    assert plain["expires_at"] == datetime(2026, 11, 2, 10, 0, 0, 409965)  # ns truncated
    human = g["a1000000-0000-4000-8000-000000000017"]
    assert human["agent_id"] == "alice@example.com" and human["auth_method"] is None


def test_malformed_records_are_quarantined_and_ingestion_continues(lake: Lake) -> None:
    report = ingest([LOG], lake)
    s = report.sources["teleport"]
    assert (s.read, s.quarantined, s.duplicates) == (20, 3, 0)
    assert s.read == s.normalised + s.quarantined + s.duplicates
    q = lake.connect().execute("SELECT source_offset, reason FROM quarantine ORDER BY 1").fetchall()
    assert q == [
        (7, "not valid JSON"),
        (12, 'not a Teleport audit event (no "event" type)'),
        (14, "access request event without id"),
    ]
    # records after each bad line still became rows
    assert R6 in _rows(lake, "grants", "grant_id")


def test_reingest_adds_nothing_and_repeats_dedupe_by_uid(lake: Lake) -> None:
    ingest([LOG], lake)
    again = ingest([LOG], lake)
    assert again.sources["teleport"].skipped_files == 1 and again.commits == 0
    report = ingest([EXPORT], lake)  # repeats R1's review, already in the lake
    assert report.sources["teleport"].duplicates == 1
    con = lake.connect()
    n = con.execute(
        "SELECT count(*) FROM grant_events WHERE event_id = 'a1000000-0000-4000-8000-000000000004'"
    ).fetchall()
    assert n == [(1,)]
    assert con.execute("SELECT count(*) FROM grants WHERE grant_id = ?", [R1]).fetchall() == [(1,)]


def test_repeats_within_one_batch_dedupe(lake: Lake, tmp_path: Path) -> None:
    copy = tmp_path / "events.log.1"
    copy.write_bytes(LOG.read_bytes())
    report = ingest([LOG, copy], lake)
    s = report.sources["teleport"]
    assert (s.read, s.quarantined, s.duplicates) == (40, 6, 17)
    assert lake.connect().execute("SELECT count(*) FROM grants").fetchall() == [(6,)]


def test_canary_secrets_never_reach_the_lake(lake: Lake) -> None:
    report = ingest([SECRETS], lake)
    s = report.sources["teleport"]
    assert s.quarantined == 4
    assert _rows(lake, "grants", "grant_id")["c3000000-0000-4000-8000-000000000002"]
    parquet = list(lake.root.rglob("*.parquet"))
    assert any("quarantine" in p.as_posix() for p in parquet)
    con = lake.connect()
    for p in parquet:
        text = con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall()
        assert CANARY not in repr(text), p
