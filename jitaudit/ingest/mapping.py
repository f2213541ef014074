"""Field mappings as data: ``mappings/<format>.yaml`` maps canonical columns to SQL expressions.

A mapping file has one section per canonical table; each section maps a column to a DuckDB
expression over the ingester's parsed record relation (named transformations from
:mod:`jitaudit.ingest.transforms` are available). Ingesters build their SELECTs from it, so a
reviewer can read how a source's field becomes a canonical column without reading Python.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from jitaudit.schema import spec


@cache
def load(fmt: str) -> dict[str, dict[str, str]]:
    """The mapping of format ``fmt``; every table and column must exist in the schema."""
    text = resources.files("jitaudit.ingest.mappings").joinpath(f"{fmt}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    for table, columns in data.items():
        names = set(spec(table).schema.names)
        unknown = set(columns) - names
        if unknown:
            raise ValueError(f"mappings/{fmt}.yaml: {table} has unknown columns {sorted(unknown)}")
    return {t: {c: str(e) for c, e in cols.items()} for t, cols in data.items()}


def select(fmt: str, table: str, **overrides: str) -> str:
    """``expr AS "column", …`` for ``table`` of ``fmt`` (``overrides`` replace or add columns)."""
    columns = {**load(fmt).get(table, {}), **overrides}
    return ", ".join(f'{expr} AS "{col}"' for col, expr in columns.items())
