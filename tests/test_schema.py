"""Canonical schemas and conformance: rows that do not fit are rejected with a reason."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from jitaudit.conform import conform
from jitaudit.schema import LINEAGE, TABLES


def test_every_table_carries_the_lineage_columns() -> None:
    names = [f.name for f in LINEAGE]
    assert names == [
        "source",
        "source_file",
        "source_offset",
        "event_id",
        "event_time",
        "logged_time",
        "ingested_at",
    ]
    for spec in TABLES.values():
        assert spec.schema.names[: len(names)] == names, spec.name
        for col in spec.required:
            assert col in spec.schema.names


def test_conform_casts_fills_and_rejects_with_reasons(con: duckdb.DuckDBPyConnection) -> None:
    src = pa.table(
        {
            "source": ["t", "t", "t", "t"],
            "event_id": ["ok", "bad-time", "bad-outcome", None],
            "event_time": [
                "2026-11-01 10:00:00",
                "not a time",
                "2026-11-01 10:00:00",
                "2026-11-01 10:00:00",
            ],
            "ingested_at": ["2026-11-01 11:00:00"] * 4,
            "action": ["read"] * 4,
            "outcome": ["success", "success", "maybe", "denied"],
        }
    )
    out = conform(con, "uses", con.from_arrow(src))
    good = out.good.fetchall()
    assert len(good) == 1 and good[0][3] == "ok"
    assert out.good.columns == TABLES["uses"].schema.names
    reasons = dict(out.rejected.project("event_id, reason").fetchall())
    assert reasons["bad-time"].startswith("uses: bad event_time")
    assert reasons["bad-outcome"] == "uses: bad outcome: maybe"
    assert reasons["rejected"] == "uses: missing event_id"
    raw = out.rejected.project("raw").fetchall()
    assert all('"action":"read"' in r[0] for r in raw)


def test_conform_refuses_columns_outside_the_schema(con: duckdb.DuckDBPyConnection) -> None:
    import pytest

    with pytest.raises(ValueError, match="not in the canonical schema"):
        conform(con, "uses", con.sql("SELECT 'x' AS source, 1 AS bogus"))
