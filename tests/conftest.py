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
