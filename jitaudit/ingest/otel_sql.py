"""SQL for OTLP JSON traces: attribute macros, the export-request parse, and span-owner resolution.

Kept apart from :mod:`jitaudit.ingest.otel` so the ingester reads as get → normalise → load.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: bytes of export-request text parsed per statement
CHUNK_BYTES = 32 << 20

#: An OTLP ``KeyValue`` as ``from_json`` should type it. Every scalar arrives as text: the
#: OTLP/JSON encoding writes 64-bit integers as decimal strings (numbers are accepted too), and
#: conform casts later. ``arrayValue`` keeps its string items (``http.request.header.*``,
#: ``task.targets``).
_ATTR = (
    '{"key":"VARCHAR","value":{"stringValue":"VARCHAR","intValue":"VARCHAR",'
    '"boolValue":"VARCHAR","doubleValue":"VARCHAR",'
    '"arrayValue":{"values":[{"stringValue":"VARCHAR"}]}}}'
)
_SPAN = (
    '{"traceId":"VARCHAR","spanId":"VARCHAR","parentSpanId":"VARCHAR","name":"VARCHAR",'
    '"startTimeUnixNano":"VARCHAR","endTimeUnixNano":"VARCHAR",'
    f'"attributes":[{_ATTR}],"status":{{"code":"VARCHAR","message":"VARCHAR"}}}}'
)
#: ``ExportTraceServiceRequest``; ``instrumentationLibrarySpans`` is the pre-1.0 name of
#: ``scopeSpans`` that old collectors still write.
REQUEST = (
    '{"resourceSpans":[{"scopeSpans":[{"spans":[' + _SPAN + "]}],"
    '"instrumentationLibrarySpans":[{"spans":[' + _SPAN + "]}]}]}"
)

MACROS = r"""
CREATE OR REPLACE TEMP MACRO otel_scalar(v) AS
  coalesce(v.stringValue, v.intValue, v.boolValue, v.doubleValue);
-- text value of attribute k (first occurrence), NULL when absent or empty
CREATE OR REPLACE TEMP MACRO otel_str(attrs, k) AS nullif_empty(
  list_transform(list_filter(attrs, lambda a: a.key = k), lambda a: otel_scalar(a.value))[1]);
-- string-list value: an arrayValue, or a comma list in a stringValue
CREATE OR REPLACE TEMP MACRO otel_list(attrs, k) AS (
  list_transform(list_filter(attrs, lambda a: a.key = k), lambda a:
    CASE WHEN a.value.arrayValue.values IS NOT NULL
         THEN list_filter(list_transform(a.value.arrayValue.values, lambda x: x.stringValue),
                          lambda s: s IS NOT NULL AND s <> '')
         ELSE split_list(otel_scalar(a.value)) END)[1]);
-- trace/span id: hex (case-insensitive, the OTLP/JSON rule) or base64 (plain protobuf JSON
-- mapping, as some backends write it) of n bytes → lowercase hex; all-zero ids are invalid
CREATE OR REPLACE TEMP MACRO otel_id(x, n) AS nullif(CASE
  WHEN x IS NULL OR x = '' THEN NULL
  WHEN length(x) = 2 * n AND regexp_full_match(x, '[0-9a-fA-F]+') THEN lower(x)
  WHEN octet_length(TRY(from_base64(x))) = n THEN lower(hex(TRY(from_base64(x))))
  ELSE '?' END, repeat('0', 2 * n));
CREATE OR REPLACE TEMP MACRO otel_nanos(x) AS CASE
  WHEN TRY_CAST(x AS HUGEINT) > 0 THEN make_timestamp(CAST(TRY_CAST(x AS HUGEINT) // 1000 AS BIGINT))
  END;
-- quarantine raw: every string and bytes value is masked, and a status message: attribute
-- values (prompts, tool arguments and results in structured messages, headers) may carry
-- secrets at any depth, which no key pattern finds in a line cut short. What is kept (keys,
-- ids, times, kinds, numbers) shows why the line or span was refused.
CREATE OR REPLACE TEMP MACRO otel_redact(text) AS regexp_replace(CAST(text AS VARCHAR),
  '"(stringValue|bytesValue|message)"(\s*:\s*)"(?:\\.|[^"\\])*("|$)',
  '"\1"\2"<redacted>\3', 'g');
"""


#: the span attributes the mapping (mappings/otel.yaml) reads, extracted while parsing into
#: columns named after them, so the attribute lists themselves are never held in memory
ATTRIBUTES = (
    "gen_ai.agent.id",
    "gen_ai.agent.name",
    "gen_ai.conversation.id",
    "gen_ai.tool.name",
    "gen_ai.tool.call.id",
    "server.address",
    "url.path",
    "credential.id",
    "error.type",
    "client.address",
    "user_agent.original",
    "task.objective",
)
LIST_ATTRIBUTES = ("task.targets", "http.request.header.authorization")


def register(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(MACROS)


def _chunks(lines: pa.Table, size: int) -> Iterator[pa.Table]:
    """Zero-copy slices of ``lines`` holding about ``size`` bytes of text each."""
    lengths = pc.binary_length(lines.column("line")).to_numpy(zero_copy_only=False)
    ends = np.cumsum(lengths, dtype=np.int64)
    start = 0
    while start < len(ends):
        base = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + size, side="right")))
        yield lines.slice(start, stop - start)
        start = stop


def parse(con: duckdb.DuckDBPyConnection, lines: pa.Table) -> None:
    """``lines`` (source_file, source_offset, line) → ``otel_span`` (one row per span) and
    ``otel_empty`` (lines that carried no span, with their text for quarantine).

    One export request holds up to thousands of spans, so a vector of lines parses into a very
    large nested value: the lines go through in slices of ``CHUNK_BYTES`` (a loop per slice,
    not per record), parsed and unnested in one statement each, and only the flat span table
    is materialised."""
    first = True
    for chunk in _chunks(lines, CHUNK_BYTES):
        con.register("otel_lines", chunk)
        verb = "CREATE OR REPLACE TEMP TABLE {} AS" if first else "INSERT INTO {}"
        _parse_chunk(con, verb)
        con.unregister("otel_lines")
        first = False
    if first:  # no lines at all
        con.register("otel_lines", lines)
        _parse_chunk(con, "CREATE OR REPLACE TEMP TABLE {} AS")
        con.unregister("otel_lines")


def _parse_chunk(con: duckdb.DuckDBPyConnection, verb: str) -> None:
    con.execute(
        f"""{verb.format("otel_span")}
        WITH rs AS (SELECT source_file, source_offset,
                           unnest(from_json(line, '{REQUEST}').resourceSpans) AS rs
                    FROM otel_lines WHERE json_valid(line)),
        ss AS (SELECT source_file, source_offset,
                      unnest(list_concat(rs.scopeSpans, rs.instrumentationLibrarySpans)) AS ss
               FROM rs),
        s AS (SELECT source_file, source_offset, unnest(ss.spans) AS s FROM ss)
        SELECT source_file, source_offset,
               otel_id(s.traceId, 16) AS trace_id, otel_id(s.spanId, 8) AS span_id,
               otel_id(s.parentSpanId, 8) AS parent_span_id, s.name AS name,
               -- the operation, else the span name's, else a tool call by its tool name alone
               -- (instrumentations that predate gen_ai.operation.name: pydantic-ai's
               -- "running tool" spans)
               coalesce(otel_str(s.attributes, 'gen_ai.operation.name'),
                        CASE WHEN split_part(s.name, ' ', 1) IN ('invoke_agent', 'execute_tool')
                             THEN split_part(s.name, ' ', 1) END,
                        CASE WHEN otel_str(s.attributes, 'gen_ai.tool.name') IS NOT NULL
                             THEN 'execute_tool' END) AS op,
               otel_nanos(s.startTimeUnixNano) AS start_ts,
               otel_nanos(s.endTimeUnixNano) AS end_ts,
               coalesce(s.status.code IN ('2', 'STATUS_CODE_ERROR'), false) AS status_error,
               nullif_empty(s.status.message) AS status_message,
               {_attribute_columns()},
               -- the raw span only where it will be quarantined (a GenAI span with a bad id
               -- or start time)
               CASE WHEN otel_id(s.traceId, 16) IS NULL OR otel_id(s.traceId, 16) = '?'
                      OR otel_id(s.spanId, 8) IS NULL OR otel_id(s.spanId, 8) = '?'
                      OR otel_nanos(s.startTimeUnixNano) IS NULL
                    THEN to_json({{'traceId': s.traceId, 'spanId': s.spanId, 'name': s.name,
                                  'startTimeUnixNano': s.startTimeUnixNano,
                                  'attributes': s.attributes}}) END AS raw
        FROM s"""
    )
    con.execute(
        f"""{verb.format("otel_empty")}
        SELECT source_file, source_offset, json_valid(line) AS ok, line
        FROM otel_lines AS l
        WHERE NOT json_valid(line) OR NOT EXISTS (
            SELECT 1 FROM otel_span AS s
            WHERE s.source_file = l.source_file AND s.source_offset = l.source_offset)"""
    )


def _attribute_columns() -> str:
    cols = [f"otel_str(s.attributes, '{k}') AS \"{k}\"" for k in ATTRIBUTES]
    cols += [f"otel_list(s.attributes, '{k}') AS \"{k}\"" for k in LIST_ATTRIBUTES]
    return ", ".join(cols)


def resolve_owners(con: duckdb.DuckDBPyConnection) -> None:
    """``otel_gen`` → ``otel_owner``: for each GenAI span, the agent and task of the nearest
    ``invoke_agent`` span above it (its parent, or further up through tool, chat or HTTP spans).

    The walk runs over every span of the batch; where it reaches a parent that is not in the
    batch, it looks that span up in the lake (an ``invoke_agent`` committed as a task row, whose
    event id is ``<trace>:<span>``, or an ``execute_tool`` committed as a use row).

    Where neither has it (an exporter sends a parent after its children, which end first),
    ``ancestor_span_id`` names the span the walk stopped at, or the one a stored use found
    there is itself still waiting for; the replay resolves the owner through it once that span
    is in the lake (``replay_span_owners``), so the result does not depend on ingestion order.
    """
    con.execute(
        """CREATE OR REPLACE TEMP TABLE otel_owner AS
        WITH RECURSIVE walk(trace_id, start, cur, depth) AS (
          SELECT trace_id, span_id, parent_span_id, 0
          FROM (SELECT trace_id, span_id, parent_span_id FROM otel_gen
                UNION ALL
                SELECT trace_id, span_id, parent_span_id FROM otel_awaited)
          WHERE parent_span_id IS NOT NULL
          UNION ALL
          SELECT w.trace_id, w.start, n.parent_span_id, w.depth + 1
          FROM walk AS w JOIN otel_node AS n ON n.trace_id = w.trace_id AND n.span_id = w.cur
          WHERE n.op IS DISTINCT FROM 'invoke_agent' AND n.parent_span_id IS NOT NULL
            AND w.depth < 64
        ),
        last AS (SELECT trace_id, start, arg_max(cur, depth) AS cur FROM walk GROUP BY ALL),
        lake_task AS (
          SELECT event_id, any_value(agent_id) AS agent_id, any_value(task_id) AS task_id
          FROM tasks WHERE source = 'otel'
            AND event_id IN (SELECT trace_id || ':' || cur FROM last) GROUP BY event_id),
        lake_use AS (
          -- a stored tool call, or a stored span link: both pass their owner on
          SELECT trace_id, span_id, any_value(agent_id) AS agent_id,
                 any_value(task_id) AS task_id, any_value(ancestor_span_id) AS ancestor_span_id
          FROM (SELECT trace_id, span_id, agent_id, task_id, ancestor_span_id FROM uses
                WHERE source = 'otel' AND span_id IN (SELECT cur FROM last)
                UNION ALL
                SELECT trace_id, span_id, agent_id, task_id, ancestor_span_id FROM span_links
                WHERE span_id IN (SELECT cur FROM last))
          GROUP BY ALL)
        SELECT l.trace_id, l.start AS span_id,
               CASE WHEN n.span_id IS NOT NULL THEN CASE WHEN n.op = 'invoke_agent' THEN n.agent END
                    ELSE coalesce(lt.agent_id, lu.agent_id) END AS owner_agent,
               CASE WHEN n.span_id IS NOT NULL THEN CASE WHEN n.op = 'invoke_agent' THEN n.task END
                    ELSE coalesce(lt.task_id, lu.task_id) END AS owner_task,
               CASE WHEN n.span_id IS NOT NULL OR lt.event_id IS NOT NULL THEN NULL
                    WHEN lu.span_id IS NULL THEN l.cur
                    WHEN lu.agent_id IS NULL THEN lu.ancestor_span_id END AS ancestor_span_id
        FROM last AS l
        LEFT JOIN otel_node AS n ON n.trace_id = l.trace_id AND n.span_id = l.cur
        LEFT JOIN lake_task AS lt ON lt.event_id = l.trace_id || ':' || l.cur
        LEFT JOIN lake_use AS lu ON lu.trace_id = l.trace_id AND lu.span_id = l.cur"""
    )
