"""Custom JSON-lines / CSV logs through a YAML mapping: validation before reading, the
documented MCP gateway example, CSV quirks, quarantine, idempotence and secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from jitaudit.ingest import IngestReport, ingest, registry
from jitaudit.ingest.custom import load_mapping
from jitaudit.ingest.files import InputError, open_input
from jitaudit.lake import Lake
from tests.conftest import FIXTURES, ROOT

CUSTOM = FIXTURES / "custom"
EXAMPLE_MAP = ROOT / "examples" / "mappings" / "mcp-gateway.yaml"
EXAMPLE_LOG = ROOT / "examples" / "logs" / "mcp-gateway.jsonl"
CANARY = "CANARY-custom-77"


def _ingest(paths: list[Path], lake: Lake, mapping: Path = EXAMPLE_MAP) -> IngestReport:
    return ingest(paths, lake, "custom", options={"mapping": load_mapping(mapping)})


def _bad(tmp_path: Path, text: str) -> str:
    f = tmp_path / "m.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as err:
        load_mapping(f)
    return str(err.value)


GOOD_USES = """format: jsonl
source: gw
tables:
  uses:
    event_time: ts
    action: tool
    outcome: {const: success}
"""


def test_mapping_errors_name_file_line_and_key(tmp_path: Path) -> None:
    msg = _bad(tmp_path, GOOD_USES.replace("  uses:", "  usage:"))
    assert msg.startswith(f"{tmp_path / 'm.yaml'}:4: tables.usage: unknown table")
    msg = _bad(tmp_path, GOOD_USES + "    colour: x\n")
    assert ":8: tables.uses.colour: unknown column of uses" in msg
    msg = _bad(tmp_path, GOOD_USES.replace("action: tool", "action: {path: 'a..b'}"))
    assert ":6: tables.uses.action.path: bad field path 'a..b'" in msg
    msg = _bad(
        tmp_path, GOOD_USES.replace("event_time: ts", "event_time: {path: ts, transform: epoch}")
    )
    assert "tables.uses.event_time.transform: unknown transformation 'epoch'" in msg
    msg = _bad(tmp_path, GOOD_USES.replace("{const: success}", "{const: allowed}"))
    assert "tables.uses.outcome: 'allowed' is not a outcome" in msg
    msg = _bad(tmp_path, GOOD_USES + "    credential_id: headers.authorization\n")
    assert "tables.uses.credential_id: this field looks like a secret" in msg
    msg = _bad(tmp_path, GOOD_USES.replace("    action: tool\n", ""))
    assert "tables.uses: required column(s) not mapped: action" in msg
    msg = _bad(tmp_path, GOOD_USES.replace("source: gw", "source: vault"))
    assert "source: 'vault' is a built-in format" in msg
    assert "not valid YAML" in _bad(tmp_path, "format: [jsonl\n")
    assert ":1: format: must be one of jsonl, csv" in _bad(tmp_path, "format: xml\n")


def test_the_documented_mcp_gateway_example(lake: Lake) -> None:
    report = _ingest([EXAMPLE_LOG], lake)
    s = report.sources["custom"]
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (5, 5, 0, 0)
    assert s.rows == {"uses": 3, "decisions": 2}
    con = lake.connect()
    uses = con.execute(
        "SELECT source, source_offset, event_id, action, resource, target, outcome, error_code,"
        " agent_id, task_id, credential_id, CAST(event_time AS VARCHAR) FROM uses ORDER BY 2"
    ).fetchall()
    assert [u[:8] for u in uses] == [
        ("mcp-gateway", 2, "req-0003", "query_invoices", "billing-mcp.internal/query_invoices",
         "billing-mcp.internal", "success", None),
        ("mcp-gateway", 3, "req-0004", "delete_invoice", "billing-mcp.internal/delete_invoice",
         "billing-mcp.internal", "denied", None),
        ("mcp-gateway", 4, "req-0005", "export_report", "reports-mcp.internal/export_report",
         "reports-mcp.internal", "error", "-32603"),
    ]  # fmt: skip
    assert {u[8:10] for u in uses} == {("asst_worker", "conv_task_42_worker")}
    assert len({u[10] for u in uses}) == 1 and uses[0][10].startswith("fp:")
    assert uses[0][11] == "2026-11-01 10:00:04.512"
    decisions = con.execute(
        "SELECT decision_id, allowed, policy_path, policy_revision, reason FROM decisions ORDER BY 1"
    ).fetchall()
    assert decisions == [
        ("req-0003", True, "mcp.billing.read", "r42", None),
        ("req-0004", False, "mcp.billing.write", "r42", "tool not in task scope"),
    ]


def test_csv_with_quotes_time_format_templates_and_a_broken_line(lake: Lake) -> None:
    report = _ingest([CUSTOM / "api-gateway.csv"], lake, CUSTOM / "api-gateway.yaml")
    s = report.sources["custom"]
    assert (s.read, s.normalised, s.quarantined) == (4, 3, 1)
    con = lake.connect()
    rows = con.execute(
        "SELECT source_offset, CAST(event_time AS VARCHAR), agent_id, action, resource, target,"
        " outcome, error_code FROM uses ORDER BY 1"
    ).fetchall()
    assert rows == [
        (1, "2026-11-01 10:00:00", "agent-a", "GET /orders/123", "/orders/{id}", "api.internal", "success", "200"),
        (2, "2026-11-01 10:00:05", "agent-a", "DELETE /orders/123", "/orders/{id}", "api.internal", "denied", "403"),
        (3, "2026-11-01 10:00:09", "agent-a", "GET /orders/9", "/orders/{id}", "api.internal", "error", "500"),
    ]  # fmt: skip
    q = con.execute("SELECT source_offset, reason, raw FROM quarantine").fetchall()
    assert q == [(4, "expected 9 fields, found 5", None)]  # withheld: a secret column is mapped


def test_malformed_jsonl_is_quarantined_and_reingest_and_repeats_add_nothing(lake: Lake) -> None:
    _ingest([EXAMPLE_LOG], lake)
    assert _ingest([EXAMPLE_LOG], lake).commits == 0
    more = CUSTOM / "mcp-gateway-more.jsonl"
    s = _ingest([more], lake).sources["custom"]
    # req-0005 repeats the example log; line 2 is cut; line 3 is an array; line 4 lacks a tool
    assert (s.read, s.duplicates, s.quarantined, s.normalised) == (5, 1, 3, 1)
    q = lake.connect().execute("SELECT source_offset, reason FROM quarantine ORDER BY 1").fetchall()
    assert q == [(2, "not JSON"), (3, "not a JSON object"), (4, "uses: missing action")]
    assert lake.connect().execute("SELECT count(*) FROM uses").fetchall() == [(4,)]


def test_canary_secret_never_reaches_the_lake(lake: Lake) -> None:
    _ingest([CUSTOM / "mcp-gateway-more.jsonl"], lake)
    _ingest([CUSTOM / "api-gateway.csv"], lake, CUSTOM / "api-gateway.yaml")
    parquet = list(lake.root.rglob("*.parquet"))
    assert sum("quarantine" in p.as_posix() for p in parquet) >= 2
    con = lake.connect()
    for p in parquet:
        rows = con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall()
        assert CANARY not in repr(rows), p


def test_custom_is_never_detected_and_needs_a_mapping(lake: Lake) -> None:
    assert registry.get("custom").sniff(EXAMPLE_LOG.read_text()) is False
    with pytest.raises(InputError, match="unknown log format"):
        registry.detect(open_input(CUSTOM / "api-gateway.csv"))
    with pytest.raises(InputError, match="needs a mapping"):
        ingest([EXAMPLE_LOG], lake, "custom")
