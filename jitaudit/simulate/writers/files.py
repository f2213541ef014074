"""Sinks that hold rendered records until their time is final, then write them in file order.

Every sink receives frames with ``ts`` (the logged time in µs, the order records are written in)
and ``seq`` (a tie-breaker fixed at creation) and writes everything older than the watermark
passed to ``flush``. Output is byte-identical per seed: files are appended in time order and
gzip members carry mtime 0.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import polars as pl

from jitaudit.simulate.organisation import MINUTE


def gzip_bytes(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=1) as gz:
        gz.write(payload)
    return buf.getvalue()


class Sink:
    """Pending records of one source; subclasses decide files and grouping."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._parts: list[pl.DataFrame] = []
        self._seq = 0
        self.files_written: set[str] = set()

    def add(self, frame: pl.DataFrame) -> None:
        """Queue rendered records (``ts``, ``line``, …); arrival order breaks ties."""
        if not frame.height:
            return
        seq = pl.int_range(self._seq, self._seq + frame.height, dtype=pl.Int64)
        self._seq += frame.height
        self._parts.append(frame.with_columns(seq.alias("seq")))

    def _take(self, final: pl.Expr | None) -> pl.DataFrame:
        if not self._parts:
            return pl.DataFrame()
        pending = pl.concat(self._parts, how="vertical")
        if final is None:
            ready, self._parts = pending, []
        else:
            ready = pending.filter(final)
            rest = pending.filter(~final)
            self._parts = [rest] if rest.height else []
        return ready.sort(["ts", "seq"])

    def _append(self, name: str, payload: str) -> None:
        path = self.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8", newline="\n") as fh:
            fh.write(payload)
        self.files_written.add(name)

    def _write_bytes(self, name: str, payload: bytes) -> None:
        path = self.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        self.files_written.add(name)

    def flush(self, upto: int | None) -> None:
        raise NotImplementedError


class LineSink(Sink):
    """JSON lines appended to files named by a polars expression over ``ts``."""

    def __init__(self, out: Path, file_of: pl.Expr) -> None:
        super().__init__(out)
        self._file_of = file_of

    def flush(self, upto: int | None) -> None:
        ready = self._take(None if upto is None else pl.col("ts") < upto)
        if not ready.height:
            return
        ready = ready.with_columns(self._file_of.alias("file"))
        grouped = ready.group_by("file", maintain_order=True).agg(pl.col("line").str.join("\n"))
        for name, lines in grouped.iter_rows():
            self._append(name, lines + "\n")


def daily(prefix: str, suffix: str) -> pl.Expr:
    """A file per UTC day of the record's logged time."""
    day = pl.col("ts").cast(pl.Datetime("us")).dt.strftime("%Y-%m-%d")
    return pl.concat_str([pl.lit(prefix), day, pl.lit(suffix)])


BATCH_5MIN = 5 * MINUTE
