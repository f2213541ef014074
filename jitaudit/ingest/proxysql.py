"""Small SQL helpers shared by the proxy ingesters (envoy, squid)."""

from __future__ import annotations

import duckdb


def sql_str(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def quarantine(con: duckdb.DuckDBPyConnection, source: str, table: str) -> duckdb.DuckDBPyRelation:
    """The rows of ``table`` that carry a ``reason``, as quarantine rows (the pipeline redacts
    and truncates ``raw``)."""
    return con.sql(
        f"""SELECT {sql_str(source)} AS source, source_file, source_offset, reason, raw
            FROM {table} WHERE reason IS NOT NULL"""
    )
