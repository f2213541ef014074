"""Custom JSON-lines or CSV logs, normalised by a user's YAML mapping (``--mapping FILE``).

The mapping is loaded and validated by :func:`load_mapping` before any data is read; the
normaliser turns it into one SQL SELECT per canonical table over the whole batch. A record is
a line: ``source_offset`` is its 0-based line number (a CSV file's header is line 0).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import duckdb

from jitaudit.conform import duckdb_type
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.custom_mapping import (
    CustomMapping,
    column_sql,
    load_mapping,
    where_sql,
)
from jitaudit.ingest.files import InputError, InputFile, lines_table
from jitaudit.schema import spec

__all__ = ["INGESTER", "CustomIngester", "load_mapping"]


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _json_path(path: str) -> str:
    """``a.b[0]["x.y"]`` → ``$."a"."b"[0]."x.y"``."""
    out = "$"
    for m in re.finditer(r'\["([^"\]]+)"\]|\[([0-9]+)\]|([^.\[\]]+)', path):
        key, index, plain = m.groups()
        out += f"[{index}]" if index is not None else '."' + (key or plain) + '"'
    return out


class CustomIngester:
    name = "custom"
    description = "in-house JSON-lines or CSV log, normalised by a YAML mapping (--mapping)"

    def sniff(self, head: str) -> bool:
        return False  # chosen by --mapping, never detected

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        m = ctx.options.get("mapping")
        if not isinstance(m, CustomMapping):
            raise InputError("format custom needs a mapping: pass --mapping FILE")
        con = ctx.con
        con.register("custom_lines_arrow", lines_table(files))
        con.execute("CREATE OR REPLACE TEMP TABLE custom_lines AS SELECT * FROM custom_lines_arrow")
        con.unregister("custom_lines_arrow")
        reason = _parse_csv(con, m) if m.format == "csv" else _parse_jsonl(con, m)
        value = {p: f"nullif_empty(v[{i + 1}])" for i, p in enumerate(m.paths)}
        tables: dict[str, duckdb.DuckDBPyRelation] = {}
        for table, tm in m.tables.items():
            types = {f.name: duckdb_type(f.type) for f in spec(table).schema}
            cols = {c: column_sql(col, value, types[c]) for c, col in tm.columns.items()}
            cols.setdefault("event_id", "content_id(line)")
            select = ", ".join(f'{e} AS "{c}"' for c, e in cols.items())
            where = f" AND ({where_sql(tm.where, value)})" if tm.where else ""
            tables[table] = con.sql(
                f"SELECT {_lit(m.source)} AS source, source_file, source_offset, {select} "
                f"FROM custom_rec WHERE reason IS NULL{where}"
            )
        read = con.execute("SELECT count(*) FROM custom_rec").fetchall()[0][0]
        quarantine = con.sql(
            f"SELECT {_lit(m.source)} AS source, source_file, source_offset, reason, {reason} AS raw "
            "FROM custom_rec WHERE reason IS NOT NULL"
        )
        return Normalised(tables=tables, quarantine=quarantine, read=int(read))


def _parse_jsonl(con: duckdb.DuckDBPyConnection, m: CustomMapping) -> str:
    """``custom_rec``: each line, the text of every mapped path (``v``), a reason if unusable.
    Returns the SQL of the quarantine ``raw`` (secret fields masked)."""
    paths = ", ".join(_lit(_json_path(p)) for p in m.paths)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE custom_rec AS
        SELECT source_file, source_offset, line,
               CASE WHEN NOT json_valid(line) THEN 'not JSON'
                    WHEN json_type(line) <> 'OBJECT' THEN 'not a JSON object' END AS reason,
               CASE WHEN json_valid(line) AND json_type(line) = 'OBJECT'
                    THEN json_extract_string(line, [{paths}]) END AS v
        FROM custom_lines"""
    )
    secrets = "|".join(re.escape(n) for n in m.secret_fields())
    if not secrets:
        return "line"
    return (
        f"""regexp_replace(line, '("(?:{secrets})"\\s*:\\s*)("(\\\\.|[^"\\\\])*"?|[^,}}\\s]+)', """
        """'\\1"<redacted>"', 'g')"""
    )


def _parse_csv(con: duckdb.DuckDBPyConnection, m: CustomMapping) -> str:
    """Like :func:`_parse_jsonl` for CSV: the first line of each file is its header; fields are
    split by the delimiter outside double quotes (RFC 4180, one record per line)."""
    d = re.escape(m.delimiter)
    field = f'{d}("(?:[^"]|"")*"|[^{d}"]*)'
    names = ", ".join(_lit(p) for p in m.paths)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE custom_split AS
        SELECT source_file, source_offset, line,
               list_transform(regexp_extract_all({_lit(m.delimiter)} || line, {_lit(field)}, 1),
                 lambda x: CASE WHEN starts_with(x, '"') AND length(x) >= 2
                                THEN replace(substr(x, 2, length(x) - 2), '""', '"')
                                ELSE x END) AS f,
               row_number() OVER (PARTITION BY source_file ORDER BY source_offset) = 1 AS is_header
        FROM custom_lines"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE custom_rec AS
        WITH hdr AS (SELECT source_file, list_transform(f, lambda x: trim(x)) AS h
                     FROM custom_split WHERE is_header)
        SELECT s.source_file, s.source_offset, s.line,
               CASE WHEN NOT list_has_all(h.h, [{names}])
                         THEN 'CSV header lacks a mapped column'
                    WHEN len(s.f) <> len(h.h)
                         THEN 'expected ' || len(h.h) || ' fields, found ' || len(s.f) END AS reason,
               list_transform([{names}], lambda n: s.f[list_position(h.h, n)]) AS v
        FROM custom_split AS s JOIN hdr AS h USING (source_file)
        WHERE NOT s.is_header"""
    )
    # a CSV line that does not split right cannot show which field is secret: withhold it
    return "CASE WHEN false THEN line END" if m.secret_fields() else "line"


INGESTER = CustomIngester()
