"""OpenTelemetry GenAI spans (OTLP JSON lines): tool-call uses, task windows, delegation edges.

Fixtures follow the OTLP/JSON encoding (opentelemetry-proto docs/specification.md: hex ids,
case-insensitive; int64 as strings or numbers; enums as integers) and the GenAI agent-span
conventions (semantic-conventions docs/gen-ai/gen-ai-agent-spans.md); ``worker.jsonl`` is
written the way some non-conforming writers do (enum names, numeric nanoseconds).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from jitaudit import replay
from jitaudit.ingest import ingest, registry
from jitaudit.ingest.files import open_input
from jitaudit.lake import Lake
from tests.conftest import FIXTURES

OTEL = FIXTURES / "otel"
CANARY = "CANARY-otel-9f2b"
TRACE = "5b8efff798038103d269b633813fc60c"


def _tasks(lake: Lake) -> dict[str, tuple[object, ...]]:
    rows = (
        lake.connect()
        .execute(
            "SELECT event_id, task_id, agent_id, parent_task_id, delegated_by, objective, targets,"
            " started_at, ended_at, trace_id FROM tasks"
        )
        .fetchall()
    )
    return {r[0].split(":")[1]: r[1:] for r in rows}


def _uses(lake: Lake) -> dict[str, tuple[object, ...]]:
    rows = (
        lake.connect()
        .execute(
            "SELECT span_id, agent_id, task_id, action, resource, target, outcome, error_code,"
            " credential_id, request_id, trace_id FROM uses"
        )
        .fetchall()
    )
    return {r[0]: r[1:] for r in rows}


def test_detects_otlp_traces_and_not_other_json_lines(tmp_path: Path) -> None:
    for name in ("planner.jsonl", "worker.jsonl", "worker-redelivered.jsonl.gz"):
        assert registry.detect(open_input(OTEL / name)) == "otel", name
    sniff = registry.get("otel").sniff
    assert not sniff('{"resourceLogs": [{"scopeLogs": []}]}')  # OTLP logs, not traces
    assert not sniff('{"time":"2026-11-01T10:00:00Z","type":"request","auth":{}}')  # vault
    assert not sniff('{"Records": [{"eventVersion": "1.08"}]}')  # cloudtrail
    assert not sniff('{"decision_id": "x", "msg": "Decision Log"}')  # opa


def test_tool_calls_are_uses_with_agent_task_and_outcome(lake: Lake) -> None:
    report = ingest([OTEL / "planner.jsonl", OTEL / "worker.jsonl"], lake)
    s = report.sources["otel"]
    # 5 planner spans (one is a chat span: read, kept only as the link of its tool call to
    # the agent above it) + 3 worker spans
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (8, 8, 0, 0)
    assert s.rows == {"uses": 4, "tasks": 3, "span_links": 1}
    uses = _uses(lake)
    # below a chat span: the agent and task come from the invoke_agent two levels up;
    # credential.id wins over the authorization header
    assert uses["eee19b7ec3c1b176"] == (
        "asst_planner", "conv_task_42", "vault_read", "vault.internal/v1/database/creds/billing",
        "vault.internal", "success", None, "hmac-sha256:4e1d9c",
        "call_VSPygqKTWdrhaFErNvMV18Yl", TRACE,
    )  # fmt: skip
    # status "STATUS_CODE_ERROR" (enum name) with an access-denied error.type → denied
    assert uses["a1b2c3d4e5f60002"][:7] == (
        "asst_worker", "conv_task_42_worker", "s3_get_object",
        "s3.amazonaws.com/billing-exports/2026-10.csv", "s3.amazonaws.com", "denied",
        "AccessDenied",
    )  # fmt: skip
    # status code 2 (the OTLP/JSON integer) with a timeout → error
    assert uses["a1b2c3d4e5f60003"][5:7] == ("error", "timeout")
    assert uses["eee19b7ec3c1b177"][2:6] == ("delegate", None, None, "success")


def test_invoke_agent_spans_are_task_windows_with_delegation_edges(lake: Lake) -> None:
    ingest([OTEL / "planner.jsonl", OTEL / "worker.jsonl"], lake)
    tasks = _tasks(lake)
    planner = tasks["eee19b7ec3c1b174"]
    assert planner[:6] == (
        "conv_task_42", "asst_planner", None, None, "rotate the billing database credentials",
        ["vault.internal", "s3.amazonaws.com"],
    )  # fmt: skip
    assert (planner[7] - planner[6]).total_seconds() == 300  # type: ignore[operator]
    assert str(planner[6]) == "2026-11-01 10:00:00"
    # worker: parent span is the planner's "delegate" execute_tool span, in another file
    worker = tasks["a1b2c3d4e5f60001"]
    assert worker[:5] == (
        "conv_task_42_worker",
        "asst_worker",
        "conv_task_42",
        "asst_planner",
        None,
    )
    assert worker[5] == ["s3.amazonaws.com", "api.example.com"]  # comma list in a stringValue
    # in-process sub-agent whose parent is the planner's invoke_agent; no agent id, no
    # conversation id: the agent is its name and the task is named after its span
    reviewer = tasks["eee19b7ec3c1b178"]
    assert reviewer[:4] == (
        f"otel:{TRACE}:eee19b7ec3c1b178",
        "Reviewer",
        "conv_task_42",
        "asst_planner",
    )


def test_delegation_resolves_against_the_lake_when_the_parent_came_first(lake: Lake) -> None:
    ingest([OTEL / "planner.jsonl"], lake)
    ingest([OTEL / "worker.jsonl"], lake)
    worker = _tasks(lake)["a1b2c3d4e5f60001"]
    assert worker[2:4] == ("conv_task_42", "asst_planner")


def _replayed(lake: Lake) -> tuple[list[tuple[object, ...]], ...]:
    con = lake.connect()
    replay.register(con)
    tasks = con.execute(
        "SELECT task_id, agent_id, parent_task_id, delegated_by FROM replay_tasks ORDER BY 1"
    ).fetchall()
    edges = con.execute(
        "SELECT task_id, child_agent_id, parent_agent_id, parent_task_id FROM replay_delegations"
        " ORDER BY 1"
    ).fetchall()
    uses = con.execute(
        "SELECT span_id, effective_agent_id, effective_task_id FROM replay_uses ORDER BY 1"
    ).fetchall()
    return tasks, edges, uses


def test_delegation_does_not_depend_on_which_agent_was_ingested_first(
    lake: Lake, tmp_path: Path
) -> None:
    """An exporter sends a span when it ends: the worker's run (a child) reaches the lake
    before the planner's (its parent) more often than not."""
    ingest([OTEL / "worker.jsonl"], lake)
    worker = _tasks(lake)["a1b2c3d4e5f60001"]
    # not known yet: the span it waits for is recorded, not guessed
    assert worker[2:4] == (None, None)
    con = lake.connect()
    assert con.execute(
        "SELECT ancestor_span_id FROM tasks WHERE task_id = 'conv_task_42_worker'"
    ).fetchall() == [("eee19b7ec3c1b177",)]
    ingest([OTEL / "planner.jsonl"], lake)
    parent_first = Lake(tmp_path / "parent-first")
    ingest([OTEL / "planner.jsonl"], parent_first)
    ingest([OTEL / "worker.jsonl"], parent_first)
    assert _replayed(lake) == _replayed(parent_first)
    tasks, edges, _ = _replayed(lake)
    assert ("conv_task_42_worker", "asst_worker", "conv_task_42", "asst_planner") in tasks
    assert ("conv_task_42_worker", "asst_worker", "asst_planner", "conv_task_42") in edges


def test_tool_calls_ingested_before_their_agent_run_get_its_agent_and_task(
    lake: Lake, tmp_path: Path
) -> None:
    # the worker's tool calls, then its agent run, then the planner: three ingests
    for name in ("worker-tools-first.jsonl", "worker-agent-last.jsonl", "planner.jsonl"):
        ingest([OTEL / name], lake)
    uses = _uses(lake)
    assert uses["a1b2c3d4e5f60002"][:2] == (None, None)  # as ingested: owner unknown
    together = Lake(tmp_path / "together")
    ingest([OTEL / "planner.jsonl", OTEL / "worker.jsonl"], together)
    assert _replayed(lake) == _replayed(together)
    _, _, replayed = _replayed(lake)
    assert ("a1b2c3d4e5f60002", "asst_worker", "conv_task_42_worker") in replayed
    assert ("a1b2c3d4e5f60003", "asst_worker", "conv_task_42_worker") in replayed


def test_a_tool_call_whose_agent_run_never_arrives_stays_without_agent(lake: Lake) -> None:
    ingest([OTEL / "worker-tools-first.jsonl"], lake)
    _, _, replayed = _replayed(lake)
    assert ("a1b2c3d4e5f60002", None, None) in replayed


def test_malformed_lines_and_spans_are_quarantined_and_ingestion_continues(lake: Lake) -> None:
    report = ingest([OTEL / "malformed.jsonl", OTEL / "planner.jsonl"], lake)
    s = report.sources["otel"]
    assert s.quarantined == 3 and s.read == s.normalised + s.quarantined + s.duplicates
    assert s.rows == {"uses": 2, "tasks": 2, "span_links": 1}
    q = lake.connect().execute("SELECT source_offset, reason FROM quarantine ORDER BY 1").fetchall()
    assert [r[0] for r in q] == [0, 1, 2]
    assert q[0][1].startswith("not JSON")
    assert q[1][1].startswith("not an OTLP ExportTraceServiceRequest")
    assert q[2][1] == "bad or missing spanId"


def test_reingest_adds_nothing_and_redelivered_spans_dedupe_by_trace_and_span_id(
    tmp_path: Path, lake: Lake
) -> None:
    ingest([OTEL / "planner.jsonl", OTEL / "worker.jsonl"], lake)
    again = ingest([OTEL / "planner.jsonl"], lake)
    assert again.commits == 0 and again.sources["otel"].skipped_files == 1
    # the same worker export, gzipped, ids base64-encoded (protobuf JSON mapping)
    report = ingest([OTEL / "worker-redelivered.jsonl.gz"], lake)
    s = report.sources["otel"]
    assert (s.read, s.duplicates, s.quarantined) == (3, 3, 0)
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM uses").fetchall() == [(4,)]
    assert con.execute("SELECT count(*) FROM tasks").fetchall() == [(3,)]
    # within one batch: the repeat across two files counts as a duplicate of one span each
    other = Lake(tmp_path / "other")
    copy = tmp_path / "copy.jsonl"
    shutil.copy(OTEL / "worker.jsonl", copy)
    copy.write_text(copy.read_text() + "\n")  # a different file (fingerprint), same spans
    s = ingest([OTEL / "worker.jsonl", copy], other).sources["otel"]
    assert (s.read, s.normalised, s.duplicates) == (6, 3, 3)


@pytest.mark.parametrize("order", ["together", "separately"])
def test_canary_secret_never_reaches_the_lake(lake: Lake, order: str) -> None:
    files = [OTEL / "planner.jsonl", OTEL / "malformed.jsonl"]
    batches = [files] if order == "together" else [[f] for f in files]
    for batch in batches:
        ingest(batch, lake)
    assert CANARY in (OTEL / "planner.jsonl").read_text()
    assert CANARY in (OTEL / "malformed.jsonl").read_text()
    parquet = list(lake.root.rglob("*.parquet"))
    assert any("quarantine" in p.as_posix() for p in parquet)
    con = lake.connect()
    for p in parquet:
        rows = con.execute(f"SELECT * FROM read_parquet('{p}')").fetchall()
        assert CANARY not in repr(rows), p
        assert "9f2b" not in repr(rows), p


def test_large_batches_parse_in_slices_with_the_same_result(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jitaudit.ingest import otel_sql

    files = [OTEL / "planner.jsonl", OTEL / "worker.jsonl", OTEL / "malformed.jsonl"]
    whole = ingest(files, lake).sources["otel"].to_json()
    monkeypatch.setattr(otel_sql, "CHUNK_BYTES", 100)  # one line per slice
    sliced_lake = Lake(tmp_path / "sliced")
    sliced = ingest(files, sliced_lake).sources["otel"].to_json()
    assert {k: v for k, v in sliced.items() if k != "seconds"} == {
        k: v for k, v in whole.items() if k != "seconds"
    }
    assert _tasks(sliced_lake) == _tasks(lake) and _uses(sliced_lake) == _uses(lake)


def test_a_line_cut_short_keeps_no_prompt_in_quarantine(tmp_path: Path, lake: Lake) -> None:
    # structured messages (the GenAI conventions' recommended form) nest the content in
    # kvlist values; a line cut short inside them is quarantined with every string masked
    line = (OTEL / "planner.jsonl").read_text().splitlines()[0]
    messages = (
        '{"key":"gen_ai.input.messages","value":{"arrayValue":{"values":[{"kvlistValue":'
        '{"values":[{"key":"role","value":{"stringValue":"user"}},{"key":"parts","value":'
        '{"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":"content","value":'
        '{"stringValue":"PROMPT-db-password-hunter2"}}]}}]}}}]}}]}}},'
    )
    marker = '"attributes":['
    at = line.index(marker, line.index('"traceId"')) + len(marker)  # the span's attributes
    cut = (line[:at] + messages + line[at:])[: at + len(messages) + 40]
    f = tmp_path / "cut.jsonl"
    f.write_text(cut + "\n")
    report = ingest([f], lake, "otel")
    assert report.sources["otel"].quarantined == 1
    raw = lake.connect().execute("SELECT raw FROM quarantine").fetchall()[0][0]
    assert "hunter2" not in raw and "planner-svc" not in raw
    assert '"key":"content"' in raw and '"traceId":"5B8EFFF798038103D269B633813FC60C"' in raw


def test_a_byte_order_mark_and_crlf_change_nothing(tmp_path: Path, lake: Lake) -> None:
    text = (OTEL / "planner.jsonl").read_text()
    f = tmp_path / "planner-windows.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    report = ingest([f], lake)  # detected despite the mark
    other = Lake(tmp_path / "plain")
    plain = ingest([OTEL / "planner.jsonl"], other)
    assert report.sources["otel"].to_json() | {"seconds": 0} == plain.sources["otel"].to_json() | {
        "seconds": 0
    }
    assert report.sources["otel"].quarantined == 0


def test_a_tool_span_without_an_operation_name_is_a_tool_call(lake: Lake) -> None:
    # pydantic-ai's default instrumentation (version 2) names its tool spans "running tool"
    # and gives gen_ai.tool.name and gen_ai.tool.call.id but no gen_ai.operation.name
    report = ingest([OTEL / "pydantic-ai-v2.jsonl"], lake)
    s = report.sources["otel"]
    assert (s.read, s.quarantined) == (5, 0)
    assert (s.rows["uses"], s.rows["tasks"]) == (1, 0)
    use = lake.connect().execute("SELECT action, request_id, outcome FROM uses").fetchall()
    assert use == [("my_ret", "pyd_ai_tool_call_id__my_ret", "success")]


def _delegation_view(lake: Lake) -> tuple[list[tuple[object, ...]], ...]:
    con = lake.connect()
    replay.register(con)
    return (
        con.execute(
            "SELECT task_id, agent_id, parent_task_id, delegated_by FROM replay_tasks ORDER BY 1"
        ).fetchall(),
        con.execute(
            "SELECT task_id, child_agent_id, parent_agent_id, parent_task_id FROM replay_delegations"
        ).fetchall(),
        con.execute(
            "SELECT action, effective_agent_id, effective_task_id FROM replay_uses ORDER BY 1"
        ).fetchall(),
    )


ORDERS = ["one batch", "as exported", "parents first"]


def _ingest_in_order(tmp_path: Path, lake: Lake, export: Path, order: str) -> None:
    """Ingest the two export requests of ``export`` as one batch, as exported (the inner spans
    first), or the other way round."""
    data = export.read_bytes()
    lines = (gzip.decompress(data) if export.suffix == ".gz" else data).splitlines()
    parts = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    for path, line in zip(parts, lines, strict=True):
        path.write_bytes(line + b"\n")
    batches = {
        "one batch": [[export]],
        "as exported": [[parts[0]], [parts[1]]],
        "parents first": [[parts[1]], [parts[0]]],
    }[order]
    for batch in batches:
        ingest(batch, lake)


@pytest.mark.parametrize("order", ORDERS)
def test_a_sub_agent_in_its_callers_conversation_is_an_inner_delegation(
    tmp_path: Path, lake: Lake, order: str
) -> None:
    # Google ADK gives every agent of a session the session id as gen_ai.conversation.id: the
    # root agent's transfer to weather_agent is a delegation inside one task (ADK's span
    # attributes; the exporter sends the tool and model calls before the agent runs)
    _ingest_in_order(tmp_path, lake, OTEL / "adk-session.jsonl", order)
    session = "3f0c2b1e-5a4d-4e8f-9b6a-1c2d3e4f5a6b"
    tasks, delegations, uses = _delegation_view(lake)
    # one task, run by the root agent, not delegated to itself
    assert tasks == [(session, "root_agent", None, None)]
    assert delegations == [(session, "weather_agent", "root_agent", session)]
    assert uses == [
        ("get_weather", "weather_agent", session),
        ("transfer_to_agent", "root_agent", session),
    ]


@pytest.mark.parametrize("order", ORDERS)
def test_a_loop_span_between_a_tool_call_and_its_agent_may_come_later(
    tmp_path: Path, lake: Lake, order: str
) -> None:
    # Strands nests invoke_agent → execute_event_loop_cycle → execute_tool; its exporter sends
    # the inner agent's spans (ResearchAgent, called as the tool research_assistant) before the
    # Orchestrator's loop span they hang from (Strands' tracer attributes, two export requests)
    _ingest_in_order(tmp_path, lake, OTEL / "strands-agent-as-tool.jsonl.gz", order)
    tasks, delegations, uses = _delegation_view(lake)
    trace = "otel:7b3f9a2c4d1e8f6a0b5c3d2e1f0a9b8c:"
    orchestrator, research = trace + "a1b2c3d4e5f60001", trace + "a1b2c3d4e5f60005"
    assert tasks == [
        (orchestrator, "Orchestrator", None, None),
        (research, "ResearchAgent", orchestrator, "Orchestrator"),
    ]
    assert [d[1:3] for d in delegations] == [("ResearchAgent", "Orchestrator")]
    assert [u[:2] for u in uses] == [
        ("http_request", "ResearchAgent"),
        ("research_assistant", "Orchestrator"),
    ]


def test_a_delegated_task_with_no_run_of_its_delegator_is_no_inner_run(lake: Lake) -> None:
    # a task row that names who delegated it but no parent task (a custom mapping's gateway
    # log, say): the delegation stays the task's own, not an edge inside it
    con = lake.connect()
    con.execute(
        "CREATE OR REPLACE TEMP VIEW tasks AS SELECT 'gw' AS source, 'gw:1' AS event_id, "
        "'t-1' AS task_id, 'worker' AS agent_id, CAST(NULL AS VARCHAR) AS parent_task_id, "
        "'planner' AS delegated_by, CAST(NULL AS VARCHAR) AS objective, "
        "CAST(NULL AS VARCHAR[]) AS targets, TIMESTAMP '2026-11-01 10:00' AS started_at, "
        "CAST(NULL AS TIMESTAMP) AS ended_at, CAST(NULL AS VARCHAR) AS trace_id, "
        "CAST(NULL AS VARCHAR) AS ancestor_span_id"
    )
    replay.register(con)
    assert con.execute(
        "SELECT task_id, agent_id, parent_task_id, delegated_by FROM replay_tasks"
    ).fetchall() == [("t-1", "worker", None, "planner")]
    assert con.execute(
        "SELECT child_agent_id, parent_agent_id, parent_task_id FROM replay_delegations"
    ).fetchall() == [("worker", "planner", None)]
