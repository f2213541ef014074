"""OTLP GenAI spans: ingest of ~1,000,000 spans against a bare DuckDB read of the same columns.

The input is generated vectorised in DuckDB: collector-style export lines of 500 spans (one
``invoke_agent`` span, tool calls below a chat span, and a worker agent delegated by a
``delegate`` tool), written to files of ~100 MB as the file exporter's rotation would. The
baseline reads the same files with ``read_json`` and extracts the columns jitaudit keeps (ids,
times, operation, agent, conversation, tool, server, status); jitaudit ingest runs in a child
process for a clean peak-RSS figure. Target: ingest ≤ 1.5 × baseline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

from benchmarks.harness import Result, run_child, scaled, timed

SPANS = int(os.environ.get("JITAUDIT_BENCH_OTEL_SPANS", str(scaled(1_000_000))))
PER_LINE = 500
LINES_PER_FILE = 300  # ~100 MB files


def _a(key: str, value: str) -> str:
    """SQL for one OTLP attribute whose value is the SQL text expression ``value``."""
    return f"""'{{"key":"{key}","value":{{"stringValue":' || to_json({value}) || '}}}}'"""


def generate(out: Path, spans: int = SPANS) -> list[Path]:
    con = duckdb.connect()
    lines = max(1, spans // PER_LINE)
    t0 = 1793527200 * 10**9
    # span k of line i: k=0 planner invoke_agent, 1 chat, 2 delegate tool, 3 worker invoke_agent,
    # then tool calls (every 10th denied), alternating planner (via chat) and worker parents
    con.execute(
        f"""CREATE TABLE span AS
        SELECT i, k, lpad(printf('%x', i + 1), 32, '0') AS trace,
               lpad(printf('%x', i * 1000 + k + 1), 16, '0') AS sid,
               CASE WHEN k = 0 THEN '' WHEN k IN (1, 2) THEN lpad(printf('%x', i * 1000 + 1), 16, '0')
                    WHEN k = 3 THEN lpad(printf('%x', i * 1000 + 3), 16, '0')
                    WHEN k % 2 = 0 THEN lpad(printf('%x', i * 1000 + 2), 16, '0')
                    ELSE lpad(printf('%x', i * 1000 + 4), 16, '0') END AS parent,
               {t0} + i * 1000000000 + k * 1000000 AS st
        FROM range({lines}) AS a(i), range({PER_LINE}) AS b(k)"""
    )
    attrs = f"""CASE
      WHEN k = 0 THEN {_a("gen_ai.operation.name", "'invoke_agent'")} || ',' || {_a("gen_ai.agent.id", "'planner-' || (i % 50)")}
                   || ',' || {_a("gen_ai.conversation.id", "'conv-' || i")} || ',' || {_a("gen_ai.provider.name", "'openai'")}
      WHEN k = 1 THEN {_a("gen_ai.operation.name", "'chat'")} || ',' || {_a("gen_ai.request.model", "'gpt-4.1'")}
      WHEN k = 3 THEN {_a("gen_ai.operation.name", "'invoke_agent'")} || ',' || {_a("gen_ai.agent.id", "'worker-' || (i % 80)")}
                   || ',' || {_a("gen_ai.conversation.id", "'conv-' || i || '-w'")}
      ELSE {_a("gen_ai.operation.name", "'execute_tool'")} || ',' || {_a("gen_ai.tool.name", "CASE WHEN k = 2 THEN 'delegate' ELSE 'tool_' || (k % 17) END")}
           || ',' || {_a("gen_ai.tool.call.id", "'call_' || i || '_' || k")} || ',' || {_a("server.address", "'svc' || (k % 7) || '.internal'")}
           || ',' || {_a("http.request.header.authorization", "'Bearer tok-' || (i % 999)")}
      END"""
    con.execute(
        f"""CREATE TABLE line AS
        SELECT i, '{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"agents"}}}}]}},'
                  || '"scopeSpans":[{{"scope":{{"name":"bench"}},"spans":['
                  || string_agg('{{"traceId":"' || trace || '","spanId":"' || sid || '","parentSpanId":"' || parent
                       || '","name":"span","kind":1,"startTimeUnixNano":"' || st || '","endTimeUnixNano":"' || (st + 500000)
                       || '","attributes":[' || {attrs} || '],"status":'
                       || CASE WHEN k >= 4 AND k % 10 = 0 THEN '{{"code":2,"message":"permission denied"}}' ELSE '{{}}' END
                       || '}}', ',' ORDER BY k)
                  || ']}}]}}]}}' AS text
        FROM span GROUP BY i"""
    )
    files = []
    for n, start in enumerate(range(0, lines, LINES_PER_FILE)):
        f = out / f"traces-{n:03d}.jsonl"
        con.execute(
            f"COPY (SELECT text FROM line WHERE i >= {start} AND i < {start + LINES_PER_FILE} ORDER BY i) "
            f"TO '{f}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\\x01')"
        )
        files.append(f)
    con.close()
    return files


_TYPE = (
    "STRUCT(scopeSpans STRUCT(spans STRUCT(traceId VARCHAR, spanId VARCHAR, parentSpanId VARCHAR, "
    "name VARCHAR, startTimeUnixNano VARCHAR, endTimeUnixNano VARCHAR, attributes STRUCT(key VARCHAR, "
    "value STRUCT(stringValue VARCHAR, intValue VARCHAR))[], status STRUCT(code VARCHAR, "
    "message VARCHAR))[])[])[]"
)


def baseline(files: list[Path]) -> int:
    """Bare DuckDB: read the files and extract the columns the ingester keeps."""
    con = duckdb.connect()
    names = json.dumps([str(f) for f in files])
    get = "list_filter(s.attributes, lambda a: a.key = '{}')[1].value.stringValue"
    con.execute(
        f"""CREATE TABLE out AS
        WITH r AS (SELECT unnest(resourceSpans) AS rs FROM read_json({names}, format='newline_delimited',
                   columns={{'resourceSpans': '{_TYPE}'}},
                   maximum_object_size=1000000000)),
        ss AS (SELECT unnest(rs.scopeSpans) AS ss FROM r),
        sp AS (SELECT unnest(ss.spans) AS s FROM ss)
        SELECT lower(s.traceId) AS trace_id, lower(s.spanId) AS span_id, lower(s.parentSpanId) AS parent,
               make_timestamp(CAST(CAST(s.startTimeUnixNano AS HUGEINT) // 1000 AS BIGINT)) AS st,
               make_timestamp(CAST(CAST(s.endTimeUnixNano AS HUGEINT) // 1000 AS BIGINT)) AS en,
               {get.format("gen_ai.operation.name")} AS op, {get.format("gen_ai.agent.id")} AS agent,
               {get.format("gen_ai.conversation.id")} AS conv, {get.format("gen_ai.tool.name")} AS tool,
               {get.format("gen_ai.tool.call.id")} AS call_id, {get.format("server.address")} AS server,
               s.status.code AS code
        FROM sp"""
    )
    n = int(con.execute("SELECT count(*) FROM out").fetchall()[0][0])
    con.close()
    return n


_CHILD = """
import json, sys
from jitaudit.ingest import ingest
from jitaudit.lake import Lake
r = ingest([sys.argv[1]], Lake(sys.argv[2]))
print(json.dumps(r.sources["otel"].to_json()))
"""


def run(workdir: Path) -> list[Result]:
    data = workdir / "otel"
    data.mkdir()
    gen_s, files = timed(lambda: generate(data))
    base_s, n = timed(lambda: baseline(files))
    seconds, peak, out = run_child(_CHILD, [str(data), str(workdir / "lake")])
    stats = json.loads(out.strip().splitlines()[-1])
    ratio = seconds / base_s
    size = sum(f.stat().st_size for f in files) / 2**20
    return [
        Result(f"otel: generate {n:,} spans ({size:,.0f} MiB, {len(files)} files)", gen_s, "s"),
        Result("otel: bare DuckDB read_json + extract (baseline)", base_s, "s"),
        Result("otel: jitaudit ingest (child process)", seconds, "s"),
        Result("otel: ingest spans per second", stats["read"] / seconds, "spans/s"),
        Result("otel: ingest / baseline", ratio, "x", "<= 1.5", ratio <= 1.5),
        Result("otel: ingest peak RSS", peak, "MiB"),
        Result("otel: rows written (uses, tasks, span links)", sum(stats["rows"].values()), "rows"),
    ]
