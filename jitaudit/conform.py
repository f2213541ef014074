"""Fit rows to a canonical schema: cast, check required and enumerated columns, reject with a reason."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from jitaudit.schema import spec

_RAW_LIMIT = 4000


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB type name for an Arrow type used in the canonical schemas."""
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_list(t):
        return duckdb_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        inner = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in t)
        return f"STRUCT({inner})"
    raise TypeError(f"no DuckDB mapping for Arrow type {t}")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Conformed:
    """The rows that fit (canonical columns, canonical order) and the rejected ones as quarantine rows."""

    good: duckdb.DuckDBPyRelation
    rejected: duckdb.DuckDBPyRelation


def conform(
    con: duckdb.DuckDBPyConnection,
    table: str,
    relation: duckdb.DuckDBPyRelation,
    materialise: str | None = None,
) -> Conformed:
    """Cast ``relation`` to the canonical schema of ``table``.

    Columns it lacks become NULL; a value that does not cast, a missing required value or a
    value outside an enumeration rejects the row with a reason naming the column. Extra
    columns are an error: they mean an ingester and the schema disagree. With
    ``materialise``, the checked rows are computed once into that temp table and both results
    read it (one pass over the input instead of one per result).
    """
    checked_sql = check_sql(con, table, relation)
    if materialise:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {materialise} AS {checked_sql}")
        checked = con.table(materialise)
    else:
        checked = con.sql(checked_sql)
    return split(table, checked)


def check_sql(con: duckdb.DuckDBPyConnection, table: str, relation: duckdb.DuckDBPyRelation) -> str:
    """SELECT of ``relation``'s rows checked against ``table``: its canonical columns, cast,
    plus ``_reason`` (why the row does not fit; NULL when it does) and ``_raw`` (the row as
    JSON when it does not fit). :func:`split` divides such rows into the two results."""
    ts = spec(table)
    present = set(relation.columns)
    types = dict(zip(relation.columns, (str(t) for t in relation.types), strict=True))
    extra = present - set(ts.schema.names)
    if extra:
        raise ValueError(f"{table}: columns not in the canonical schema: {sorted(extra)}")
    name = f"_conform_{table}_{id(relation)}"
    relation.create_view(name, replace=True)
    casts: list[str] = []
    checks: list[str] = []
    for field in ts.schema:
        col = _q(field.name)
        typ = duckdb_type(field.type)
        if field.name not in present:
            casts.append(f"CAST(NULL AS {typ}) AS {col}")
            if field.name in ts.required or not field.nullable:
                checks.append(f"'missing {field.name}'")
            continue
        if types[field.name] == typ:
            # already the canonical type: nothing to cast, nothing that could fail to cast
            casts.append(col)
        else:
            casts.append(f"TRY_CAST({col} AS {typ}) AS {col}")
            checks.append(
                f"CASE WHEN {col} IS NOT NULL AND TRY_CAST({col} AS {typ}) IS NULL "
                f"THEN 'bad {field.name}: ' || left(CAST({col} AS VARCHAR), 80) END"
            )
        if field.name in ts.required or not field.nullable:
            checks.append(f"CASE WHEN {col} IS NULL THEN 'missing {field.name}' END")
    for column, allowed in ts.enums:
        if column in present:
            values = ", ".join(_lit(v) for v in allowed)
            checks.append(
                f"CASE WHEN {_q(column)} IS NOT NULL AND CAST({_q(column)} AS VARCHAR) "
                f"NOT IN ({values}) THEN 'bad {column}: ' || left(CAST({_q(column)} AS VARCHAR), 80) END"
            )
    reason = f"coalesce({', '.join(checks)})" if checks else "CAST(NULL AS VARCHAR)"
    return (
        f"SELECT {', '.join(casts)}, {reason} AS _reason, "
        f"CASE WHEN {reason} IS NOT NULL THEN left(to_json(_src), {_RAW_LIMIT}) END AS _raw "
        f"FROM {name} AS _src"
    )


def split(table: str, checked: duckdb.DuckDBPyRelation) -> Conformed:
    """The fitting and the rejected rows of ``checked`` (rows as :func:`conform` checks them:
    canonical columns plus ``_reason`` and ``_raw``, e.g. a subset of a materialised check)."""
    ts = spec(table)
    cols = ", ".join(_q(n) for n in ts.schema.names)
    good = checked.filter("_reason IS NULL").project(cols)
    rejected = checked.filter("_reason IS NOT NULL").project(
        f"coalesce(source, 'unknown') AS source, source_file, source_offset, "
        f"coalesce(event_id, 'rejected') AS event_id, event_time, logged_time, "
        f"coalesce(ingested_at, CAST(now() AS TIMESTAMP)) AS ingested_at, "
        f"{_lit(table + ': ')} || _reason AS reason, _raw AS raw"
    )
    return Conformed(good=good, rejected=rejected)
