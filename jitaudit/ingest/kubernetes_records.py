"""JSON records from JSON-lines files or whole JSON documents (used by kubernetes and gcp).

Both sources write one JSON object per line, but their other transports wrap records in a
document: the Kubernetes webhook backend posts an ``EventList`` (``{"kind":"EventList",
"items":[…]}``), ``gcloud logging read --format=json`` prints a pretty-printed JSON array. A
file whose first line is not JSON on its own but opens a document (``[`` or a lone ``{``) is
read as one document; every other file is read line by line, and a line that is itself a
wrapper is expanded. Everything happens in DuckDB over the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from jitaudit.ingest.files import InputFile, lines_table


def load_records(
    con: duckdb.DuckDBPyConnection, files: Sequence[InputFile], table: str, unwrap: str
) -> None:
    """Create temp table ``table`` (source_file, source_offset, rec, reason).

    ``unwrap`` is a SQL expression over a valid JSON text ``j`` that yields the JSON[] list of
    records a wrapper holds, or NULL when ``j`` is itself a record. ``reason`` is NULL for a
    JSON record and says why otherwise (those rows go to quarantine). ``source_offset`` is the
    0-based line for line files and the record index for documents and for line files with a
    wrapper on a line (records numbered through the file).
    """
    lines = f"_{table}_lines"
    con.register(lines, lines_table(files))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW _{table}_units AS
        WITH firsts AS (
          SELECT source_file, arg_min(line, source_offset) AS first FROM {lines} GROUP BY ALL),
        docs AS (
          SELECT source_file FROM firsts
          WHERE NOT json_valid(first) AND (ltrim(first) LIKE '[%' OR trim(first) = '{{'))
        SELECT l.source_file, l.source_offset, l.line AS text, false AS doc
        FROM {lines} AS l ANTI JOIN docs USING (source_file)
        UNION ALL
        SELECT l.source_file, 0 AS source_offset,
               string_agg(l.line, chr(10) ORDER BY l.source_offset) AS text, true AS doc
        FROM {lines} AS l SEMI JOIN docs USING (source_file) GROUP BY l.source_file
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _{table}_w AS
        WITH u AS (SELECT *, text AS j, json_valid(text) AS ok FROM _{table}_units)
        SELECT *, CASE WHEN ok THEN {unwrap} END AS items FROM u
        """
    )
    # a wrapper on one line of a line file (a webhook's EventList, a one-line entries array)
    # holds many records: records are then numbered through the file, so that each has its own
    # offset (repeats are counted per file and offset); a line that wraps one record (an AKS
    # diagnostic record) keeps its line number
    wrapped_lines = con.execute(
        f"SELECT count(*) FROM _{table}_w WHERE items IS NOT NULL AND NOT doc AND len(items) <> 1"
    ).fetchall()[0][0]
    if wrapped_lines:
        numbered = f"""SELECT *, coalesce(sum(coalesce(len(items), 1)) OVER (
                         PARTITION BY source_file ORDER BY source_offset
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS base,
                       bool_or(items IS NOT NULL) OVER (PARTITION BY source_file) AS by_record
                       FROM _{table}_w"""
    else:
        numbered = f"SELECT *, 0 AS base, doc AS by_record FROM _{table}_w"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        WITH w AS ({numbered})
        SELECT source_file, CASE WHEN by_record THEN base ELSE source_offset END AS source_offset,
               text AS rec,
               CASE WHEN NOT ok THEN CASE WHEN doc THEN 'not a valid JSON document'
                                          ELSE 'not valid JSON' END END AS reason
        FROM w WHERE items IS NULL
        UNION ALL
        SELECT source_file, CASE WHEN by_record THEN base + idx ELSE source_offset END,
               CAST(item AS VARCHAR) AS rec, NULL AS reason
        FROM (SELECT source_file, source_offset, base, by_record, unnest(items) AS item,
                     unnest(range(len(items))) AS idx
              FROM w WHERE items IS NOT NULL)
        """
    )
    con.execute(f"DROP TABLE _{table}_w")
    con.execute(f"DROP VIEW _{table}_units")
    con.unregister(lines)
