"""OpenTelemetry GenAI spans (OTLP JSON lines, as the collector's file exporter writes them).

One ``ExportTraceServiceRequest`` per line. ``execute_tool`` spans become **uses** and
``invoke_agent`` spans **tasks** (docs/sources.md, otel); other spans (chat, HTTP, …) are read
and only serve to connect a span to the agent above it. A record is a span:
``source_offset`` is the line of the export request that carried it, ``event_id`` is
``<traceId>:<spanId>`` (lowercase hex). Agent, task and delegation are resolved over the whole
batch and against the lake, so a parent committed earlier is found; what stays order-dependent
is described in :func:`jitaudit.ingest.otel_sql.resolve_owners` and docs/sources.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from jitaudit.ingest import mapping, otel_sql
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputFile, lines_table

NAME = "otel"
_OPS = "('invoke_agent', 'execute_tool')"


class OtelIngester:
    name = NAME
    description = "OpenTelemetry GenAI spans, OTLP JSON lines (collector file exporter)"

    def sniff(self, head: str) -> bool:
        text = head.lstrip()
        return text.startswith("{") and '"resourceSpans"' in text[:4096]

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        otel_sql.register(con)
        # read in place from Arrow: the text is not copied into DuckDB's memory budget
        otel_sql.parse(con, lines_table(files))
        spans = _scalar(con, "SELECT count(*) FROM otel_span")
        _nodes(con)
        _awaited(con)
        otel_sql.resolve_owners(con)
        uses, dup_uses = _table(con, "uses", "execute_tool")
        tasks, dup_tasks = _table(con, "tasks", "invoke_agent")
        read = spans + _scalar(con, "SELECT count(*) FROM otel_empty")
        tables = {"uses": uses, "tasks": tasks}
        if _scalar(con, "SELECT count(*) FROM otel_awaited"):
            tables["span_links"] = _links(con)
        return Normalised(
            tables=tables,
            quarantine=_quarantine(con),
            read=read,
            duplicates=dup_uses + dup_tasks,
        )


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    rows = con.execute(sql).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _nodes(con: duckdb.DuckDBPyConnection) -> None:
    """``otel_node``: every span's place in its trace, with agent and task for ``invoke_agent``
    spans; ``otel_gen``: the GenAI spans that become rows (ids and start time valid)."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE otel_gen AS
        SELECT * EXCLUDE (parent_span_id, raw), nullif(parent_span_id, '?') AS parent_span_id,
               CASE WHEN op = 'invoke_agent' THEN coalesce("gen_ai.agent.id", "gen_ai.agent.name")
               END AS agent,
               -- an agent run without a conversation id is still a task window: it is named
               -- after its span so that its tool calls and delegations can point at it
               CASE WHEN op = 'invoke_agent' THEN coalesce("gen_ai.conversation.id",
                                                           'otel:' || trace_id || ':' || span_id)
               END AS task
        FROM otel_span
        WHERE op IN {_OPS} AND start_ts IS NOT NULL AND trace_id <> '?' AND span_id <> '?'"""
    )
    # one node per span (a span delivered twice is one node)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE otel_node AS
        SELECT trace_id, span_id, first(parent_span_id) AS parent_span_id, first(op) AS op,
               first(agent) AS agent, first(task) AS task,
               min(source_file) AS source_file, min(source_offset) AS source_offset,
               min(start_ts) AS start_ts
        FROM (SELECT trace_id, span_id, parent_span_id, op, agent, task, source_file,
                     source_offset, start_ts FROM otel_gen
              UNION ALL
              SELECT trace_id, span_id, nullif(parent_span_id, '?'), op, NULL, NULL,
                     source_file, source_offset, start_ts
              FROM otel_span WHERE op NOT IN {_OPS} OR op IS NULL)
        WHERE trace_id IS NOT NULL AND trace_id <> '?' AND span_id IS NOT NULL AND span_id <> '?'
        GROUP BY trace_id, span_id"""
    )
    # quarantine the spans that cannot become rows, then keep only what resolution needs
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE otel_bad_span AS
        SELECT source_file, source_offset,
               CASE WHEN trace_id IS NULL OR trace_id = '?' THEN 'bad or missing traceId'
                    WHEN span_id IS NULL OR span_id = '?' THEN 'bad or missing spanId'
                    ELSE 'bad or missing startTimeUnixNano' END AS reason,
               otel_redact(regexp_replace(CAST(raw AS VARCHAR),
                   ',"(stringValue|intValue|boolValue|doubleValue|arrayValue)":null', '', 'g'))
                 AS raw
        FROM otel_span
        WHERE op IN {_OPS} AND (trace_id IS NULL OR trace_id = '?' OR span_id IS NULL
                                OR span_id = '?' OR start_ts IS NULL)"""
    )
    con.execute("DROP TABLE otel_span")


def _awaited(con: duckdb.DuckDBPyConnection) -> None:
    """``otel_awaited``: the spans of this batch that are no GenAI span but may stand between a
    GenAI span and its agent run (a model call, a framework's loop span): those that rows
    already in the lake wait for (``ancestor_span_id``), and those with a parent in a trace
    that has GenAI spans in this batch. Their owner is resolved like a GenAI span's and kept as
    a span link, so a tool call exported before or after the loop span above it finds its
    agent either way."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE otel_awaited AS
        SELECT n.trace_id, n.span_id, n.parent_span_id, n.source_file, n.source_offset,
               n.start_ts
        FROM otel_node AS n
        WHERE (n.op IS NULL OR n.op NOT IN {_OPS}) AND n.start_ts IS NOT NULL
          AND ((n.parent_span_id IS NOT NULL
                AND n.trace_id IN (SELECT trace_id FROM otel_gen))
               OR EXISTS (
                 SELECT 1 FROM (SELECT trace_id, ancestor_span_id FROM uses
                                WHERE source = '{NAME}' AND ancestor_span_id IS NOT NULL
                                UNION ALL SELECT trace_id, ancestor_span_id FROM tasks
                                WHERE source = '{NAME}' AND ancestor_span_id IS NOT NULL
                                UNION ALL SELECT trace_id, ancestor_span_id FROM span_links
                                WHERE ancestor_span_id IS NOT NULL) AS w
                 WHERE w.trace_id = n.trace_id AND w.ancestor_span_id = n.span_id))"""
    )


def _links(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Span links of the awaited spans (see :func:`_awaited`), new to the lake."""
    return con.sql(
        f"""SELECT '{NAME}' AS source, a.source_file, a.source_offset,
                   a.trace_id || ':' || a.span_id AS event_id, a.start_ts AS event_time,
                   a.trace_id, a.span_id, o.owner_agent AS agent_id, o.owner_task AS task_id,
                   o.ancestor_span_id
            FROM otel_awaited AS a LEFT JOIN otel_owner AS o USING (trace_id, span_id)
            WHERE NOT EXISTS (SELECT 1 FROM span_links AS l
                              WHERE l.event_id = a.trace_id || ':' || a.span_id)"""
    )


def _table(
    con: duckdb.DuckDBPyConnection, table: str, op: str
) -> tuple[duckdb.DuckDBPyRelation, int]:
    """The rows of ``table`` from ``op`` spans, de-duplicated by event id within the batch and
    against the lake, and how many spans were dropped as repeats.

    The pipeline de-duplicates by (source, event_id) too, but it counts repeats per
    (file, offset), and one export line carries many spans."""
    cols = mapping.select(NAME, table)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE otel_{table} AS
        SELECT '{NAME}' AS source, g.source_file, g.source_offset,
               g.trace_id || ':' || g.span_id AS event_id, {cols}
        FROM otel_gen AS g LEFT JOIN otel_owner AS o USING (trace_id, span_id)
        WHERE g.op = '{op}'
          AND NOT EXISTS (SELECT 1 FROM "{table}" AS l WHERE l.source = '{NAME}'
                          AND l.event_id = g.trace_id || ':' || g.span_id)
        QUALIFY row_number() OVER (PARTITION BY g.trace_id, g.span_id
                                   ORDER BY g.source_file, g.source_offset) = 1"""
    )
    total = _scalar(con, f"SELECT count(*) FROM otel_gen WHERE op = '{op}'")
    return con.table(f"otel_{table}"), total - _scalar(con, f"SELECT count(*) FROM otel_{table}")


def _quarantine(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(
        f"""SELECT '{NAME}' AS source, source_file, source_offset,
                   CASE WHEN ok THEN 'not an OTLP ExportTraceServiceRequest: no resourceSpans with spans'
                        ELSE 'not JSON (an OTLP export request per line expected)' END AS reason,
                   otel_redact(line) AS raw
            FROM otel_empty
        UNION ALL
        SELECT '{NAME}', source_file, source_offset, reason, raw FROM otel_bad_span"""
    )


INGESTER = OtelIngester()
