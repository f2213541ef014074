"""Envoy / Istio access logs: detection, uses from JSON and text lines, denials, secrets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from jitaudit.ingest import ingest
from jitaudit.ingest.envoy import INGESTER
from jitaudit.ingest.transforms import fingerprint
from jitaudit.lake import Lake
from tests.conftest import FIXTURES

ENVOY = FIXTURES / "envoy"
CANARY = "CANARY-ENV-5e1f"


def _uses(lake: Lake, where: str = "TRUE") -> list[dict[str, Any]]:
    con = lake.connect()
    cur = con.execute(f"SELECT * FROM uses WHERE {where} ORDER BY source_file, source_offset")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _head(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode()


def test_sniff_recognises_json_and_text_and_nothing_else(tmp_path: Path) -> None:
    for name in ("istio-typed.log", "istio-typed-rotated.log.gz", "envoy-default.log"):
        assert INGESTER.sniff(_head(ENVOY / name)), name
    assert INGESTER.sniff(_head(ENVOY / "istio-text.log"))
    others = [
        # OPA decision log of an opa-envoy request: HTTP fields, but nested under input
        json.dumps(
            {
                "decision_id": "4ca636c1",
                "input": {"attributes": {"request": {"http": {"method": "GET", "path": "/"}}}},
                "msg": "Decision Log",
                "result": True,
                "timestamp": "2026-11-01T10:00:00Z",
            }
        ),
        # Kubernetes audit event
        json.dumps(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "auditID": "a",
                "stage": "ResponseComplete",
                "requestURI": "/api/v1/pods",
                "responseStatus": {"code": 200},
            }
        ),
        # Vault audit entry
        json.dumps({"time": "2026-11-01T10:00:00Z", "type": "request", "request": {"path": "x"}}),
        # Squid native line
        "1286536308.779    180 192.168.0.224 TCP_MISS/200 411 GET http://a.example/ - "
        "DIRECT/74.125.229.142 image/gif",
        "[not a timestamp] hello",
    ]
    for head in others:
        assert not INGESTER.sniff(head + "\n"), head


def test_uses_from_istio_json(lake: Lake) -> None:
    report = ingest([ENVOY / "istio-typed.log"], lake)
    s = report.sources["envoy"]
    # 9 records (a blank line is not one): 7 uses, a truncated line and a bad time quarantined
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (9, 7, 2, 0)
    u = _uses(lake)
    assert [r["outcome"] for r in u] == [
        "success",
        "success",
        "denied",
        "denied",
        "error",
        "success",
        "success",
    ]
    first, second, uaex, rbac, urx, bearer, tcp = u
    # numeric ids are templated: two orders are one action; the query string is gone
    assert first["action"] == second["action"] == "GET /orders/{id}"
    assert first["resource"] == "/orders/{id}"
    assert first["target"] == "orders.internal:8443"
    assert (first["agent_id"], first["task_id"], first["credential_id"]) == (
        "agent-billing",
        "task-42",
        "cred-7",
    )
    assert first["event_time"].isoformat() == "2026-11-01T10:00:01.409000"
    assert first["request_id"] == "84961386-6d84-929d-98bd-c5aee93b5c88"
    assert first["event_id"] == "84961386-6d84-929d-98bd-c5aee93b5c88@2026-11-01T10:00:01.409Z"
    assert first["src_ip"] == "10.44.1.23" and first["user_agent"] == "agent-sdk/1.4"
    assert first["error_code"] is None
    assert uaex["action"] == "POST /orders/{id}/refund" and uaex["error_code"] == "UAEX"
    assert rbac["error_code"] == "rbac_access_denied_matched_policy[none]"
    assert urx["error_code"] == "URX,UF"
    # no credential header: the bearer token's keyed fingerprint joins instead
    assert bearer["credential_id"] == fingerprint(lake.key, CANARY)
    assert bearer["src_ip"] == "203.0.113.7" and bearer["target"] == "payments.internal"
    # a TCP connection: no method, target from SNI, no request id → content hash id
    assert tcp["action"] == "TCP" and tcp["target"] == "db.internal"
    assert tcp["event_id"].startswith("h:") and tcp["agent_id"] is None
    q = lake.connect().execute("SELECT source_offset, reason FROM quarantine ORDER BY 1").fetchall()
    assert q == [
        (8, "not JSON: malformed access log line"),
        (9, "bad start_time: yesterday"),
    ]


def test_uses_from_default_and_istio_text(lake: Lake) -> None:
    report = ingest([ENVOY / "envoy-default.log", ENVOY / "istio-text.log"], lake)
    s = report.sources["envoy"]
    assert (s.read, s.normalised, s.quarantined) == (7, 6, 1)
    u = _uses(lake)
    doc, token, uaex, urx, teapot, rbac = u
    # the example line of Envoy's documentation
    assert doc["action"] == "POST /api/v1/locations" and doc["outcome"] == "success"
    assert doc["target"] == "locations" and doc["src_ip"] == "10.0.35.28"
    assert doc["user_agent"] == "nsq2http" and doc["event_time"].year == 2016
    assert token["action"] == "GET /api/v1/locations/{id}"
    assert (uaex["outcome"], urx["outcome"]) == ("denied", "error")
    assert urx["user_agent"] is None and urx["src_ip"] is None  # "-" is unknown, not "-"
    # Istio's text format: details and addresses are read too
    assert teapot["outcome"] == "error" and teapot["src_ip"] == "10.44.1.23"
    assert rbac["outcome"] == "denied" and rbac["target"] == "scout:9080"
    assert rbac["error_code"] == "rbac_access_denied_matched_policy[none]"
    q = lake.connect().execute("SELECT reason, source_offset FROM quarantine").fetchall()
    assert q == [("not an Envoy access log line", 4)]


def test_istio_text_formats_of_every_version(lake: Lake) -> None:
    # lines as Istio 1.0/1.1 (five-field tail), 1.2-1.5 (mixer status), 1.6-1.8 (mixer status
    # and transport failure reason) and 1.9+ (details, an empty route name, internal listener
    # addresses) wrote them, from Istio's documentation and issues
    report = ingest([ENVOY / "istio-text-legacy.log"], lake, "envoy")
    s = report.sources["envoy"]
    assert (s.read, s.normalised, s.quarantined) == (12, 12, 0)
    u = _uses(lake)
    # a TCP connection names its host by SNI, else by Istio's outbound cluster
    assert (u[0]["action"], u[0]["target"], u[0]["src_ip"]) == (
        "TCP",
        "www.google.com",
        "172.30.109.82",
    )
    assert (u[4]["target"], u[3]["target"]) == ("netcat1", None)  # PassthroughCluster: unknown
    assert (u[2]["action"], u[2]["target"], u[2]["src_ip"]) == (
        "GET /index",
        "hello-world",
        "192.168.167.113",
    )
    assert u[2]["request_id"] == "c0ce81db-4f5a-9134-8a5c-f8c076c91652"
    assert (u[6]["outcome"], u[6]["error_code"], u[6]["user_agent"]) == (
        "error",
        "UF,URX",
        "curl/7.79.1",
    )
    assert u[7]["action"] == "POST /keycloak/realms/master/protocol/openid-connect/token"
    assert (u[9]["target"], u[9]["src_ip"]) == ("172.18.0.101", "10.244.0.1")
    # an internal listener's address is no client IP
    assert (u[11]["target"], u[11]["src_ip"]) == ("en.wikipedia.org", None)


def test_envoy_gateway_json_keys(lake: Lake) -> None:
    # Envoy Gateway's default JSON names keys after the headers (":authority",
    # "x-envoy-origin-path", "x-request-id", ...)
    report = ingest([ENVOY / "envoy-gateway.log"], lake)
    s = report.sources["envoy"]
    assert (s.read, s.normalised, s.quarantined) == (2, 2, 0)
    ai, v6 = _uses(lake)
    assert (ai["action"], ai["target"], ai["outcome"]) == (
        "POST /v1/chat/completions",
        "ai-gateway.envoy-gateway-system",
        "error",
    )
    assert ai["request_id"] == "65280e53-8a89-467a-b0e4-cc18a1a2cb06"
    assert ai["event_id"] == "65280e53-8a89-467a-b0e4-cc18a1a2cb06@2025-06-24T21:26:50.836Z"
    assert (ai["user_agent"], ai["src_ip"]) == ("curl/7.61.1", "10.129.2.19")
    assert (v6["action"], v6["target"], v6["src_ip"]) == (
        "GET /",
        "example.com",
        "2a02:1234:5678::5a24",
    )


def test_quarantined_lines_keep_their_text_but_no_credential(tmp_path: Path, lake: Lake) -> None:
    legacy = (ENVOY / "istio-text-legacy.log").read_text().splitlines()[7]
    credential = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
    f = tmp_path / "access.log"
    f.write_text(
        legacy.replace("[2022-05-27T13:21:24.535Z]", "[not a time]")
        + "\n"
        + json.dumps({"start_time": "soon", "path": "/", "auth_header": f"token {credential}"})
        + "\n"
    )
    report = ingest([f], lake, "envoy")
    assert report.sources["envoy"].quarantined == 2
    raw = [
        r[0]
        for r in lake.connect()
        .execute("SELECT raw FROM quarantine ORDER BY source_offset")
        .fetchall()
    ]
    # the OAuth token endpoint in a request line is no credential: the line is kept as written
    assert raw[0] == legacy.replace("[2022-05-27T13:21:24.535Z]", "[not a time]")
    assert credential not in raw[1] and "token <redacted>" in raw[1]


def test_key_names_are_configurable(tmp_path: Path, lake: Lake) -> None:
    keys = {
        "start_time": "ts",
        "response_code": "code",
        "response_flags": "flags",
        "request_id": "rid",
        "authority": "host",
        "agent_id": "x_agent_id",
        "task_id": "x_task_id",
        "credential_id": "x_credential_id",
        "authorization": "auth",
    }
    ingest([ENVOY / "envoy-custom-keys.log"], lake, "envoy", options={"envoy_keys": keys})
    ok, unauthorised = _uses(lake)
    assert ok["agent_id"] == "agent-triage" and ok["task_id"] == "task-9"
    assert ok["action"] == "GET /repos/{id}/issues/{id}" and ok["target"] == "api.github.com"
    # json_format writes "-" for unset values: unknown, so the token fingerprint is used
    assert ok["credential_id"] == fingerprint(lake.key, CANARY)
    assert ok["user_agent"] is None
    assert unauthorised["outcome"] == "denied"
    # a quarantined record under custom keys: the configured authorization key is masked
    bad = tmp_path / "bad.log"
    bad.write_text(json.dumps({"ts": "soon", "rid": "r-1", "auth": f"Opaque {CANARY}"}) + "\n")
    report = ingest([bad], lake, "envoy", options={"envoy_keys": keys})
    assert report.sources["envoy"].quarantined == 1
    raw = lake.connect().execute("SELECT raw FROM quarantine").fetchall()[0][0]
    assert CANARY not in raw and '"auth": "<redacted>"' in raw
    other = tmp_path / "other.log"
    other.write_text((ENVOY / "istio-typed.log").read_text())
    with pytest.raises(ValueError, match="unknown meanings"):
        ingest([other], lake, "envoy", options={"envoy_keys": {"agent": "x_agent_id"}})


def test_reingest_adds_nothing_and_rotated_repeats_dedupe(lake: Lake) -> None:
    ingest([ENVOY / "istio-typed.log"], lake)
    again = ingest([ENVOY / "istio-typed.log"], lake)
    assert again.commits == 0 and again.sources["envoy"].skipped_files == 1
    # the rotated gzip holds the first request again plus one new one
    report = ingest([ENVOY / "istio-typed-rotated.log.gz"], lake)
    s = report.sources["envoy"]
    assert (s.read, s.normalised, s.duplicates) == (2, 1, 1)
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM uses").fetchall() == [(8,)]


def test_a_reused_request_id_does_not_hide_a_later_request(tmp_path: Path, lake: Lake) -> None:
    line = json.loads((ENVOY / "istio-typed.log").read_text().splitlines()[0])
    later = {**line, "start_time": "2026-11-01T12:00:00.000Z", "path": "/admin/users"}
    f = tmp_path / "reuse.log"
    f.write_text(json.dumps(line) + "\n" + json.dumps(later) + "\n")
    report = ingest([f], lake)
    assert report.sources["envoy"].normalised == 2
    assert [u["action"] for u in _uses(lake)] == ["GET /orders/{id}", "GET /admin/users"]


def test_canary_secret_never_reaches_the_lake(lake: Lake) -> None:
    # with the default keys the custom-keys file has no start_time: quarantined too
    report = ingest(sorted(ENVOY.iterdir()), lake, "envoy")
    assert report.sources["envoy"].quarantined == 5
    parquet = list(lake.root.rglob("*.parquet"))
    assert any("quarantine" in p.as_posix() for p in parquet)
    assert any("uses" in p.as_posix() for p in parquet)
    con = lake.connect()
    for p in parquet:
        rows = con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall()
        assert CANARY not in repr(rows), p
        assert CANARY.encode() not in p.read_bytes(), p


def _clean_lines(n: int) -> list[str]:
    """``n`` well-formed Istio JSON lines: each names its request, so none needs its text."""
    first = json.loads((ENVOY / "istio-typed.log").read_text().splitlines()[0])
    return [
        json.dumps({**first, "request_id": f"req-{i}", "path": f"/orders/{i}?token={CANARY}"})
        for i in range(n)
    ]


@pytest.mark.parametrize("blank", [False, True], ids=["direct", "blank-line"])
def test_line_numbers_hold_whichever_way_a_file_is_read(
    tmp_path: Path, lake: Lake, blank: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jitaudit.ingest import envoy

    direct: list[int | None] = []
    real = envoy._read_direct
    monkeypatch.setattr(envoy, "_read_direct", lambda *a: direct.append(real(*a)) or direct[-1])
    one, two = tmp_path / "a.log", tmp_path / "b.log"
    lines = _clean_lines(300)
    if blank:
        lines.insert(7, "   ")
    one.write_text("\n".join(lines[:200]) + "\n")
    two.write_text("\n".join(lines[200:]))  # the last line has no terminator
    report = ingest([one, two], lake, "envoy")
    s = report.sources["envoy"]
    assert (s.read, s.normalised, s.quarantined) == (300, 300, 0)
    # read straight from disk when every line is one record, else line by line
    assert direct == ([None] if blank else [300])
    got = {(u["source_file"], u["source_offset"]): u["request_id"] for u in _uses(lake)}
    want = {
        (f.as_posix(), i): json.loads(text)["request_id"]
        for f, texts in ((one, lines[:200]), (two, lines[200:]))
        for i, text in enumerate(texts)
        if text.strip()
    }
    assert got == want
    assert {u["resource"] for u in _uses(lake, "source_offset = 3")} == {"/orders/{id}"}
    con = lake.connect()
    assert con.execute(f"SELECT count(*) FROM uses WHERE action LIKE '%{CANARY}%'").fetchall() == [
        (0,)
    ]


def test_a_record_that_needs_its_line_is_read_line_by_line(tmp_path: Path, lake: Lake) -> None:
    lines = _clean_lines(5)
    nameless = json.loads(lines[2])
    del nameless["request_id"]
    lines[2] = json.dumps(nameless)
    f = tmp_path / "a.log"
    f.write_text("\n".join(lines) + "\n")
    ingest([f], lake, "envoy")
    ids = [u["event_id"] for u in _uses(lake)]
    assert len(ids) == 5 and ids[2].startswith("h:") and ids[3].startswith("req-3@")


def test_container_logs_as_kubelet_keeps_them(lake: Lake) -> None:
    # /var/log/pods/<pod>/istio-proxy/0.log: the runtime's time, stream and F before each line
    report = ingest([ENVOY / "istio-proxy-cri.log"], lake)  # detected through the prefix
    s = report.sources["envoy"]
    assert (s.read, s.normalised, s.quarantined) == (3, 3, 0)
    u = _uses(lake)
    assert [r["action"] for r in u] == ["GET /", "GET /", "GET /"]
    assert u[0]["outcome"] == "error" and u[0]["error_code"] == "NR"
    # the time is Envoy's own, not the runtime's
    assert u[1]["event_time"].isoformat() == "2024-04-08T20:53:05.142000"
    assert u[1]["target"] == "172.18.0.101" and u[1]["src_ip"] == "10.244.0.1"


def test_emissary_access_lines(lake: Lake) -> None:
    # Emissary-ingress (Ambassador) prefixes Envoy's default format with ACCESS
    s = ingest([ENVOY / "emissary.log"], lake).sources["envoy"]
    assert (s.read, s.normalised, s.quarantined) == (3, 3, 0)
    assert [r["outcome"] for r in _uses(lake)] == ["denied", "success", "error"]


def test_container_logs_as_dockers_json_file_driver_keeps_them(lake: Lake) -> None:
    # /var/lib/docker/containers/<id>/<id>-json.log: each printed line as {"log": …}
    report = ingest([ENVOY / "envoy-docker-json.log"], lake)  # detected through the wrapper
    s = report.sources["envoy"]
    assert (s.read, s.normalised, s.quarantined) == (3, 3, 0)
    u = _uses(lake)
    assert [r["outcome"] for r in u] == ["success", "denied", "error"]
    assert u[0]["action"] == "POST /api/v1/locations" and u[0]["user_agent"] == "nsq2http"
    assert u[0]["event_time"].isoformat() == "2016-04-15T20:17:00.310000"  # Envoy's own time
