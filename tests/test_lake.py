"""The lake: atomic commits, idempotence, views, and verify."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from jitaudit import lake as lake_mod
from jitaudit import schema
from jitaudit.lake import InputRef, Lake, LakeError
from tests.conftest import rows


def _uses(n: int, day: int = 1, source: str = "test") -> object:
    return rows(
        "uses",
        *[
            {
                "source": source,
                "event_id": f"e{day}-{i}",
                "event_time": datetime(2026, 11, day, 10, 0, i % 60),
                "action": "s3:GetObject",
                "outcome": "success",
                "credential_id": "ASIA1",
            }
            for i in range(n)
        ],
    )


def _count(lake: Lake, table: str) -> int:
    return int(lake.connect().execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def test_commit_publishes_hive_partitioned_zstd_parquet(
    lake: Lake, con: duckdb.DuckDBPyConnection
) -> None:
    data = rows(
        "uses",
        *[
            {
                "source": "cloudtrail",
                "event_id": "a",
                "event_time": datetime(2026, 11, 1, 1),
                "action": "s3:GetObject",
                "outcome": "success",
            },
            {
                "source": "cloudtrail",
                "event_id": "b",
                "event_time": datetime(2026, 11, 2, 1),
                "action": "s3:GetObject",
                "outcome": "denied",
            },
            {
                "source": "envoy",
                "event_id": "c",
                "event_time": datetime(2026, 11, 2, 1),
                "action": "GET /x",
                "outcome": "success",
            },
        ],
    )
    commit = lake.commit(con, {"uses": data}, [InputRef("fp1", "in.json", "test")])
    assert commit is not None
    paths = sorted(f.path for f in commit.files)
    assert len(paths) == 3
    for p in paths:
        assert p.startswith("uses/source=")
        assert "/event_date=2026-11-0" in p
        assert Path(p).name.startswith("part-") and p.endswith(".parquet")
        meta = con.sql(
            f"SELECT DISTINCT compression FROM parquet_metadata('{lake.root / p}')"
        ).fetchall()
        assert meta == [("ZSTD",)]
    view = lake.connect()
    got = view.execute(
        "SELECT source, event_id, event_date, outcome FROM uses ORDER BY event_id"
    ).fetchall()
    assert [g[:2] for g in got] == [("cloudtrail", "a"), ("cloudtrail", "b"), ("envoy", "c")]
    assert str(got[1][2]) == "2026-11-02"
    assert commit.rows == 3


def test_every_table_has_a_view_even_when_empty(lake: Lake) -> None:
    con = lake.connect()
    for table in ("grants", "grant_events", "uses", "decisions", "tasks", "quarantine", "findings"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
    cols = [c[0] for c in con.execute("DESCRIBE grants").fetchall()]
    assert {
        "grant_id",
        "credential_id",
        "scope",
        "expires_at",
        "source_file",
        "ingested_at",
    } <= set(cols)


def test_files_written_before_a_column_was_added_read_it_as_null(
    lake: Lake, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lake outlives schema versions: its old files lack the columns added since."""
    lake.commit(con, {"uses": _uses(3)}, [InputRef("old", "old.json", "test")])
    uses = schema.TABLES["uses"]
    wider = dataclasses.replace(uses, schema=uses.schema.append(pa.field("added", pa.string())))
    monkeypatch.setitem(schema.TABLES, "uses", wider)
    got = lake.connect().execute("SELECT count(*), count(added), min(action) FROM uses")
    assert got.fetchall() == [(3, 0, "s3:GetObject")]


def test_recommitting_the_same_input_adds_nothing(
    lake: Lake, con: duckdb.DuckDBPyConnection
) -> None:
    ref = InputRef("same-fingerprint", "in.json", "test")
    assert lake.commit(con, {"uses": _uses(5)}, [ref]) is not None
    assert lake.commit(con, {"uses": _uses(5)}, [ref]) is None
    assert _count(lake, "uses") == 5
    assert len(lake.commits()) == 1


def test_crash_between_publish_and_manifest_exposes_no_rows(
    lake: Lake, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.commit(con, {"uses": _uses(3, day=1)}, [InputRef("first", "a", "test")])

    def crash(self: Lake, entry: object) -> None:
        raise OSError("disk full (injected)")

    monkeypatch.setattr(Lake, "_write_manifest", crash)
    with pytest.raises(OSError, match="injected"):
        lake.commit(con, {"uses": _uses(7, day=2)}, [InputRef("second", "b", "test")])
    monkeypatch.undo()
    # the lake stays readable and shows exactly the first batch
    assert _count(lake, "uses") == 3
    report = lake.verify()
    assert report.missing == [] and report.modified == []
    assert len(report.unlisted) == 1  # the published-but-uncommitted file, reported
    # the input was never committed, so retrying it works and adds its rows once
    lake.commit(con, {"uses": _uses(7, day=2)}, [InputRef("second", "b", "test")])
    assert _count(lake, "uses") == 10


def test_crash_during_staging_leaves_nothing_visible(
    lake: Lake, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: Lake, table: str, staged: Path, root: Path) -> object:
        raise OSError("killed while staging (injected)")

    monkeypatch.setattr(Lake, "_publish", crash)
    with pytest.raises(OSError):
        lake.commit(con, {"uses": _uses(4)}, [InputRef("x", "x", "test")])
    monkeypatch.undo()
    assert _count(lake, "uses") == 0
    assert lake.verify().ok
    assert list(lake.root.glob("uses/**/*.parquet")) == []


def test_verify_catches_modified_deleted_and_unlisted_files(
    lake: Lake, con: duckdb.DuckDBPyConnection
) -> None:
    for day in (1, 2, 3):
        lake.commit(con, {"uses": _uses(4, day=day)}, [InputRef(f"in{day}", "x", "test")])
    assert lake.verify().ok
    files = sorted(lake.files(), key=lambda f: f.event_date)
    modified, deleted = lake.root / files[0].path, lake.root / files[1].path
    data = bytearray(modified.read_bytes())
    data[len(data) // 2] ^= 0xFF
    modified.write_bytes(bytes(data))
    deleted.unlink()
    stray = lake.root / "uses" / "source=test" / "event_date=2026-11-09" / "part-stray.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"PAR1")
    report = lake.verify()
    assert report.modified == [files[0].path]
    assert report.missing == [files[1].path]
    assert report.unlisted == [stray.relative_to(lake.root).as_posix()]
    assert not report.ok


def test_manifest_records_hash_rows_and_input(lake: Lake, con: duckdb.DuckDBPyConnection) -> None:
    commit = lake.commit(
        con,
        {"uses": _uses(6)},
        [InputRef("abc", "/logs/in.json", "test", 42)],
        stats={"test": {"read": 6}},
    )
    assert commit is not None
    again = lake.commits()[0]
    assert again.inputs == [
        {"fingerprint": "abc", "path": "/logs/in.json", "format": "test", "size": 42}
    ]
    assert again.stats == {"test": {"read": 6}}
    f = again.files[0]
    assert f.rows == 6 and len(f.sha256) == 64
    assert lake_mod.sha256_file(lake.root / f.path) == f.sha256
    assert lake.watermark() == 1
    assert len(lake.digest()) == 64


def test_key_is_stable_and_private(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JITAUDIT_FINGERPRINT_KEY", raising=False)
    k1 = lake.key
    assert k1 == Lake(lake.root).key and len(k1) == 64
    assert (lake.root / "_meta" / "key").stat().st_mode & 0o077 == 0


def test_opening_a_missing_lake_read_only_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match="no lake at"):
        Lake(tmp_path / "nope", create=False)
