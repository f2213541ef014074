"""The ingest pipeline, driven by a toy JSON-lines ingester: detection, quarantine,
de-duplication, reconciliation, idempotence and redaction."""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from jitaudit.ingest import ingest, registry
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputError, InputFile, lines_table
from jitaudit.lake import Lake


class ToyIngester:
    """{"toy": 1, "id": ..., "t": ..., "cred": ..., "token": ...} lines."""

    name = "toy"
    description = "test format"

    def sniff(self, head: str) -> bool:
        return head.lstrip().startswith('{"toy"')

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        con.register("lines", lines_table(files))
        con.execute("CREATE OR REPLACE TEMP TABLE toy_raw AS SELECT * FROM lines")
        uses = con.sql(
            """SELECT 'toy' AS source, source_file, source_offset,
                      json_extract_string(line, '$.id') AS event_id,
                      parse_ts(json_extract_string(line, '$.t')) AS event_time,
                      json_extract_string(line, '$.cred') AS credential_id,
                      fp(json_extract_string(line, '$.token')) AS request_id,
                      'read' AS action, 'success' AS outcome
               FROM toy_raw WHERE json_valid(line)"""
        )
        bad = con.sql(
            """SELECT 'toy' AS source, source_file, source_offset,
                      'not JSON' AS reason, line AS raw FROM toy_raw WHERE NOT json_valid(line)"""
        )
        n = int(con.execute("SELECT count(*) FROM toy_raw").fetchall()[0][0])
        return Normalised(tables={"uses": uses}, quarantine=bad, read=n)


@pytest.fixture(autouse=True)
def toy_format(monkeypatch: pytest.MonkeyPatch) -> None:
    module = type(sys)("toy_ingest_module")
    module.INGESTER = ToyIngester()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "toy_ingest_module", module)
    monkeypatch.setattr(registry, "MODULES", {"toy": "toy_ingest_module"})
    registry._cache.clear()


def _write(path: Path, records: list[object], gz: bool = False) -> Path:
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def _rec(i: int, token: str = "s3cr3t-canary") -> dict[str, object]:
    return {
        "toy": 1,
        "id": f"r{i}",
        "t": f"2026-11-01T10:00:{i:02d}Z",
        "cred": "c1",
        "token": token,
    }


def test_counts_reconcile_and_bad_records_are_quarantined(tmp_path: Path, lake: Lake) -> None:
    f = _write(tmp_path / "a.log", [_rec(0), "{broken json", _rec(1), _rec(1)], gz=True)
    report = ingest([f], lake)
    s = report.sources["toy"]
    assert (s.read, s.normalised, s.quarantined, s.duplicates) == (4, 2, 1, 1)
    assert s.read == s.normalised + s.quarantined + s.duplicates
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM uses").fetchall() == [(2,)]
    q = con.execute("SELECT reason, raw, source_offset, source_file FROM quarantine").fetchall()
    assert q == [("not JSON", "{broken json", 1, str(f))]
    assert lake.commits()[0].stats["toy"]["quarantined"] == 1


def test_reingesting_a_file_adds_nothing_and_repeats_across_files_dedupe(
    tmp_path: Path, lake: Lake
) -> None:
    a = _write(tmp_path / "a.log", [_rec(0), _rec(1)])
    ingest([a], lake)
    again = ingest([a], lake)
    assert again.sources["toy"].skipped_files == 1 and again.commits == 0
    b = _write(tmp_path / "b.log", [_rec(1), _rec(2)])  # r1 delivered twice
    report = ingest([b], lake)
    assert report.sources["toy"].duplicates == 1
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM uses").fetchall() == [(3,)]


def test_secrets_are_fingerprinted_before_the_lake(tmp_path: Path, lake: Lake) -> None:
    broken = [
        '{"toy": 1, "id": "q1", "client_token": "CANARY-7f3a9"',
        '{"toy": 1, "headers": "Authorization: Bearer CANARY-7f3a9',
        '{"toy": 1, "url": "https://b.s3.amazonaws.com/k?X-Amz-Signature=CANARY-7f3a9&x=1"',
        '{"toy": 1, "vault": "hvs.CANARY7f3a9xyz"',
    ]
    f = _write(tmp_path / "a.log", [_rec(0, token="CANARY-7f3a9"), *broken])
    report = ingest([f], lake)
    assert report.sources["toy"].quarantined == 4
    fp = lake.connect().execute("SELECT request_id FROM uses").fetchall()[0][0]
    assert fp.startswith("fp:") and len(fp) == 35
    parquet = list(lake.root.rglob("*.parquet"))
    assert any("quarantine" in p.as_posix() for p in parquet)
    for p in parquet:
        text = lake.connect().execute(f"SELECT * FROM read_parquet('{p}')").fetchall()
        assert "CANARY" not in repr(text), p


def test_unknown_format_and_missing_path_are_input_errors(tmp_path: Path, lake: Lake) -> None:
    other = tmp_path / "other.txt"
    other.write_text("hello world\n")
    with pytest.raises(InputError, match="unknown log format"):
        ingest([other], lake)
    with pytest.raises(InputError, match="no such file"):
        ingest([tmp_path / "missing.log"], lake)
    assert lake.commits() == []


def test_a_file_of_unknown_format_does_not_hold_back_the_others(tmp_path: Path, lake: Lake) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    _write(d / "a.log", [_rec(0), _rec(1)])
    (d / "notes.txt").write_text("hello world\n")
    (d / "rotated.log").write_text("")  # log rotation leaves empty files: nothing to ingest
    report = ingest([d], lake)
    assert report.sources["toy"].normalised == 2
    assert (
        len(report.unrecognised) == 1 and "notes.txt: unknown log format" in report.unrecognised[0]
    )
    # an empty directory (a scheduled job with nothing new): nothing to do, no error
    (tmp_path / "none").mkdir()
    assert ingest([tmp_path / "none"], lake).commits == 0
    # only empty files or only unknown ones: an input error, nothing written
    other = Lake(tmp_path / "other")
    with pytest.raises(InputError, match="none of 2 files"):
        ingest([d / "notes.txt", d / "rotated.log"], other)
    assert other.commits() == []


def test_directories_and_globs_expand_recursively(tmp_path: Path, lake: Lake) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    _write(tmp_path / "d" / "sub" / "x.log.gz", [_rec(0)], gz=True)
    _write(tmp_path / "d" / "y.log", [_rec(1)])
    report = ingest([tmp_path / "d"], lake)
    assert report.sources["toy"].files == 2
    report = ingest([str(tmp_path / "d" / "**" / "*.gz")], lake)
    assert report.sources["toy"].skipped_files == 1
