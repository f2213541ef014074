"""Squid native access.log: detection, uses keyed by proxy user, denials, CONNECT, secrets."""

from __future__ import annotations

import gzip
from typing import Any

from jitaudit.ingest import ingest
from jitaudit.ingest.squid import INGESTER
from jitaudit.lake import Lake
from tests.conftest import FIXTURES

SQUID = FIXTURES / "squid"
CANARY = "CANARY-SQ-77c1"


def _uses(lake: Lake) -> list[dict[str, Any]]:
    cur = lake.connect().execute("SELECT * FROM uses ORDER BY source_file, source_offset")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_sniff_recognises_native_lines_only() -> None:
    assert INGESTER.sniff((SQUID / "access.log").read_text())
    assert INGESTER.sniff(gzip.decompress((SQUID / "access.log.1.gz").read_bytes()).decode())
    others = [
        '[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 '
        '"10.0.35.28" "nsq2http" "cc21d9b0" "locations" "tcp://10.0.2.1:80"',
        '{"start_time": "2026-11-01T10:00:00Z", "response_code": 200}',
        # Apache/Squid "common" format is not the native one
        '192.168.0.1 - - [10/Oct/2026:13:55:36 +0000] "GET http://a/ HTTP/1.1" 200 2326 '
        "TCP_MISS:HIER_DIRECT",
        "hello world",
    ]
    for head in others:
        assert not INGESTER.sniff(head + "\n"), head


def test_uses_denials_connect_and_quirks(lake: Lake) -> None:
    report = ingest([SQUID / "access.log"], lake)
    s = report.sources["squid"]
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (10, 8, 2, 0)
    ga, tunnel, denied, challenge, aborted, query, userinfo, mime = _uses(lake)
    # the time is when Squid logged the finished transaction: the request began elapsed ms before
    assert ga["logged_time"].isoformat() == "2010-10-08T11:11:48.779000"
    assert ga["event_time"].isoformat() == "2010-10-08T11:11:48.599000"
    assert ga["credential_id"] is None and ga["outcome"] == "success"
    assert ga["resource"] == "http://www.google-analytics.com/__utm.gif"
    assert (tunnel["action"], tunnel["resource"], tunnel["target"]) == (
        "CONNECT",
        "api.github.com:443",
        "api.github.com",
    )
    assert tunnel["credential_id"] == tunnel["principal_id"] == tunnel["agent_id"] == "agent-triage"
    assert tunnel["src_ip"] == "10.0.0.5"
    assert (denied["outcome"], denied["error_code"], denied["target"]) == (
        "denied",
        "TCP_DENIED/403",
        "exfil.example.net",
    )
    assert challenge["outcome"] == "denied" and challenge["principal_id"] is None
    assert (aborted["outcome"], aborted["error_code"]) == ("error", "TCP_MISS_ABORTED/000")
    assert aborted["event_time"].isoformat() == "2016-04-22T11:08:52.488000"
    # proxy user is URL-decoded; query string and host case are normalised away
    assert query["principal_id"] == "agent@billing"
    assert query["resource"] == "https://API.Example.com:8443/v1/items/17"
    assert query["target"] == "api.example.com"
    # credentials in the URL's userinfo never survive; an upstream 403 is a denial too
    assert userinfo["resource"] == "http://internal.example/upload"
    assert userinfo["outcome"] == "denied"
    assert mime["resource"] == "http://internal.example/health"
    assert all(u["event_id"].startswith("h:") for u in _uses(lake))
    q = lake.connect().execute("SELECT source_offset, reason FROM quarantine ORDER BY 1").fetchall()
    assert q == [
        (9, "not a Squid native access.log line"),
        (10, "not a Squid native access.log line"),
    ]


def test_a_connection_without_a_request_is_quarantined_with_its_line(lake: Lake) -> None:
    # a client that closes before sending headers: Squid 5+ logs NONE_NONE/000 with method
    # "-", Squid 4 NONE/000 with method NONE (lines as real proxies wrote them)
    report = ingest([SQUID / "access-no-request.log"], lake)
    s = report.sources["squid"]
    assert (s.read, s.normalised, s.quarantined) == (4, 2, 2)
    assert [u["action"] for u in _uses(lake)] == ["GET", "CONNECT"]
    lines = (SQUID / "access-no-request.log").read_text().splitlines()
    # offsets count from 0
    q = lake.connect().execute("SELECT source_offset, reason, raw FROM quarantine ORDER BY 1")
    assert q.fetchall() == [
        (
            2,
            "no request: Squid logged NONE_NONE/000 error:transaction-end-before-headers",
            lines[2],
        ),
        (3, "no request: Squid logged NONE/000 error:transaction-end-before-headers", lines[3]),
    ]


def test_reingest_adds_nothing_and_rotated_repeats_dedupe(lake: Lake) -> None:
    ingest([SQUID / "access.log"], lake)
    assert ingest([SQUID / "access.log"], lake).commits == 0
    report = ingest([SQUID / "access.log.1.gz"], lake)
    s = report.sources["squid"]
    assert (s.read, s.normalised, s.duplicates) == (2, 1, 1)
    ipv6 = _uses(lake)[-1]
    assert (ipv6["target"], ipv6["src_ip"]) == ("[2001:db8::1]", "2001:db8::5")


def test_canary_secret_never_reaches_the_lake(lake: Lake) -> None:
    ingest([SQUID], lake)
    parquet = list(lake.root.rglob("*.parquet"))
    assert any("quarantine" in p.as_posix() for p in parquet)
    con = lake.connect()
    for p in parquet:
        rows = con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall()
        assert CANARY not in repr(rows), p
        assert CANARY.encode() not in p.read_bytes(), p
