"""Shared fixtures: a fresh lake per test, and a small helper to build canonical rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from jitaudit.lake import Lake
from jitaudit.schema import spec

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    yield c
    c.close()


def rows(table: str, *records: dict[str, Any]) -> pa.Table:
    """An Arrow table with the canonical schema of ``table``; unspecified columns are NULL."""
    base = {"source": "test", "ingested_at": datetime(2026, 11, 1)}
    data = [{**base, **r} for r in records]
    return pa.Table.from_pylist(data, schema=spec(table).schema)


def query_rows(lake: Lake, sql: str) -> list[dict[str, Any]]:
    """The rows of ``sql`` over the lake's views, as dicts."""
    cur = lake.connect().execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def one_row(lake: Lake, table: str, event_id: str) -> dict[str, Any]:
    """The single row of ``table`` with ``event_id`` (fails when there is not exactly one)."""
    found = query_rows(lake, f"SELECT * FROM {table} WHERE event_id = '{event_id}'")
    assert len(found) == 1, (table, event_id, found)
    return found[0]
