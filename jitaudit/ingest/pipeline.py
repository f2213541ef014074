"""The ingest run: group inputs by format, normalise in batches, de-duplicate, conform, commit."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from jitaudit.conform import conform, split
from jitaudit.ingest import registry, transforms
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputFile, expand
from jitaudit.lake import InputRef, Lake, view_sql
from jitaudit.schema import INGEST_TABLES, empty

#: a batch holds at most this many bytes of (estimated decompressed) input, which bounds memory
BATCH_BYTES = int(os.environ.get("JITAUDIT_INGEST_BATCH_BYTES", str(256 << 20)))
GZIP_RATIO = 10

Progress = Callable[[str], None]


@dataclass
class SourceStats:
    """Per-format counts of one run. ``read = normalised + quarantined + duplicates``."""

    files: int = 0
    skipped_files: int = 0
    read: int = 0
    quarantined: int = 0
    duplicates: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def normalised(self) -> int:
        return self.read - self.quarantined - self.duplicates

    def add(self, other: SourceStats) -> None:
        self.files += other.files
        self.skipped_files += other.skipped_files
        self.read += other.read
        self.quarantined += other.quarantined
        self.duplicates += other.duplicates
        self.seconds += other.seconds
        for k, v in other.rows.items():
            self.rows[k] = self.rows.get(k, 0) + v

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "skipped_files": self.skipped_files,
            "read": self.read,
            "normalised": self.normalised,
            "quarantined": self.quarantined,
            "duplicates": self.duplicates,
            "rows": dict(self.rows),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class IngestReport:
    sources: dict[str, SourceStats] = field(default_factory=dict)
    commits: int = 0

    def render(self) -> str:
        head = f"{'source':<12}{'files':>7}{'skipped':>9}{'read':>10}{'normalised':>12}"
        head += f"{'quarantined':>13}{'duplicates':>12}{'seconds':>9}"
        lines = [head]
        for name, s in sorted(self.sources.items()):
            lines.append(
                f"{name:<12}{s.files:>7}{s.skipped_files:>9}{s.read:>10}{s.normalised:>12}"
                f"{s.quarantined:>13}{s.duplicates:>12}{s.seconds:>9.2f}"
            )
        return "\n".join(lines)


def connection(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A connection for ingest: UTC, bounded memory, transforms, views over the lake."""
    con = duckdb.connect(
        config={
            "memory_limit": os.environ.get("JITAUDIT_MEMORY_LIMIT", "1GB"),
            "temp_directory": str(lake.root / "_spill"),
        }
    )
    con.execute("SET TimeZone = 'UTC'")
    transforms.register(con, lake.key)
    lake.connect(con)
    return con


def _batches(files: Sequence[InputFile]) -> Iterable[list[InputFile]]:
    batch: list[InputFile] = []
    size = 0
    for f in files:
        est = f.size * (GZIP_RATIO if f.gzipped else 1)
        if batch and size + est > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(f)
        size += est
    if batch:
        yield batch


def ingest(
    paths: Iterable[str | os.PathLike[str]],
    lake: Lake,
    fmt: str = "auto",
    *,
    options: Mapping[str, Any] | None = None,
    enrichment: Sequence[Path] = (),
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest ``paths`` into ``lake``. Raises InputError (exit 2) before writing anything when
    a path is unreadable or a file's format is unknown."""
    files = expand(paths)
    formats = {
        f.path: (registry.get(fmt).name if fmt != "auto" else registry.detect(f)) for f in files
    }
    done = lake.committed_inputs()
    report = IngestReport()
    by_format: dict[str, list[InputFile]] = {}
    for f in files:
        stats = report.sources.setdefault(formats[f.path], SourceStats())
        if f.fingerprint in done:
            stats.skipped_files += 1
        else:
            by_format.setdefault(formats[f.path], []).append(f)
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    for name, group in by_format.items():
        batches = list(_batches(group))
        for i, batch in enumerate(batches, 1):
            if progress:
                progress(f"{name}: batch {i}/{len(batches)} ({len(batch)} files)")
            stats = _ingest_batch(lake, name, batch, ingested_at, options or {}, enrichment)
            report.sources[name].add(stats)
            report.commits += 1
    return report


def _ingest_batch(
    lake: Lake,
    name: str,
    batch: list[InputFile],
    ingested_at: datetime,
    options: Mapping[str, Any],
    enrichment: Sequence[Path],
) -> SourceStats:
    started = time.perf_counter()
    con = connection(lake)
    try:
        ctx = Context(con=con, ingested_at=ingested_at, options=options, enrichment=enrichment)
        out = registry.get(name).normalise(ctx, batch)
        stats = SourceStats(files=len(batch), read=out.read, duplicates=out.duplicates)
        tables, rejected, lake_dups = _finish(con, out, ingested_at, lake)
        stats.duplicates += lake_dups
        quarantine = _quarantine(con, name, out, rejected, ingested_at)
        stats.quarantined = _count(quarantine)
        stats.rows = {t: _count(r) for t, r in tables.items()}
        stats.seconds = time.perf_counter() - started
        lake.commit(
            con,
            {**tables, "quarantine": quarantine},
            [InputRef(f.fingerprint, f.name, name, f.size) for f in batch],
            stats={name: stats.to_json()},
        )
        stats.seconds = time.perf_counter() - started
        return stats
    finally:
        con.close()


def _count(rel: duckdb.DuckDBPyRelation) -> int:
    row = rel.aggregate("count(*)").fetchall()
    return int(row[0][0])


def _finish(
    con: duckdb.DuckDBPyConnection, out: Normalised, ingested_at: datetime, lake: Lake
) -> tuple[dict[str, duckdb.DuckDBPyRelation], list[duckdb.DuckDBPyRelation], int]:
    """Conform each table, then de-duplicate it within the batch and against the lake.

    Returns the tables to commit, the rows conform rejected, and how many input records were
    dropped because every row they produced was already present. The normaliser's relation
    is evaluated once: conformance materialises it, and the repeat check, the row counts, the
    commit's COPY and the rejects all read that table. Repeats are rare, so the common path is
    one hash aggregate over the ids and no further copy: rows are only ranked (a sort) when
    some id repeats, and the lake is only consulted for the files of the batch's sources.
    """
    ts_sql = f"TIMESTAMP '{ingested_at.isoformat(sep=' ')}'"
    kept: list[str] = []
    dropped: list[str] = []
    redelivered: list[str] = []
    tables: dict[str, duckdb.DuckDBPyRelation] = {}
    rejected: list[duckdb.DuckDBPyRelation] = []
    for table, rel in out.tables.items():
        if table not in INGEST_TABLES:
            raise ValueError(f"an ingester may not write table {table!r}")
        # the normaliser's relation is read as a view, not copied, and evaluated once: into
        # the checked table that everything after reads
        raw = f"_src_{table}"
        rel.create_view(raw, replace=True)
        rel_d = (
            con.sql(f"SELECT * REPLACE ({ts_sql} AS ingested_at) FROM {raw}")
            if ("ingested_at" in rel.columns)
            else con.sql(f"SELECT *, {ts_sql} AS ingested_at FROM {raw}")
        )
        checked = f"_checked_{table}"
        c = conform(con, table, rel_d, materialise=checked)
        in_lake = _lake_ids(con, lake, table, checked)
        known = (
            f"""UNION SELECT DISTINCT r.source, r.event_id FROM {checked} AS r
                JOIN {in_lake} AS l ON l.source = r.source AND l.event_id = r.event_id"""
            if in_lake
            else ""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _rep_{table} AS
            SELECT source, event_id FROM {checked} GROUP BY source, event_id HAVING count(*) > 1
            {known}"""
        )
        if _count(con.table(f"_rep_{table}")):
            lake_filter = (
                f"AND NOT EXISTS (SELECT 1 FROM {in_lake} AS l "
                "WHERE l.source = r.source AND l.event_id = r.event_id)"
                if in_lake
                else ""
            )
            source = f"_dedup_{table}"
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {source} AS
                SELECT * FROM {checked} AS r
                WHERE NOT EXISTS (SELECT 1 FROM _rep_{table} AS d
                                  WHERE d.source = r.source AND d.event_id = r.event_id)
                UNION ALL
                (SELECT * FROM {checked} AS r
                 WHERE EXISTS (SELECT 1 FROM _rep_{table} AS d
                               WHERE d.source = r.source AND d.event_id = r.event_id)
                 {lake_filter}
                 QUALIFY row_number() OVER (PARTITION BY source, event_id
                                            ORDER BY source_file, source_offset) = 1)"""
            )
            kept.append(f"SELECT source_file, source_offset FROM {source}")
            dropped.append(f"SELECT source_file, source_offset FROM {checked}")
            lineage = "source, source_file, source_offset, event_id, event_time, logged_time"
            redelivered.append(
                f"""SELECT {lineage}, '{table}' AS table_name FROM {checked}
                EXCEPT SELECT {lineage}, '{table}' FROM {source}"""
            )
            c = split(table, con.table(source))
        else:
            kept.append(f"SELECT source_file, source_offset FROM {checked}")
        tables[table] = c.good
        rejected.append(c.rejected)
    lake_dups = 0
    if dropped:
        # records all of whose rows were repeats (a record may feed several tables)
        row = con.execute(
            f"SELECT count(*) FROM (({' UNION '.join(dropped)}) EXCEPT ({' UNION '.join(kept)}))"
        ).fetchall()
        lake_dups = int(row[0][0])
        # the dropped copies stay as lineage: their delivery time counts for completeness
        redeliveries = con.sql(
            f"SELECT *, {ts_sql} AS ingested_at FROM ({' UNION ALL '.join(redelivered)})"
        )
        tables["redeliveries"] = conform(
            con, "redeliveries", redeliveries, "_checked_redeliveries"
        ).good
    return tables, rejected, lake_dups


def _lake_ids(con: duckdb.DuckDBPyConnection, lake: Lake, table: str, checked: str) -> str:
    """A view over the lake's ``table`` restricted to the files of the sources in ``checked``
    (a repeat has the same source: other sources' files cannot hold one); "" when none."""
    files = lake.files(table)
    if not files:
        return ""
    sources = {r[0] for r in con.execute(f"SELECT DISTINCT source FROM {checked}").fetchall()}
    paths = [(lake.root / f.path).as_posix() for f in files if f.source in sources]
    if not paths:
        return ""
    view = f"_lake_{table}"
    con.execute(view_sql(table, paths, view))
    return view


def _quarantine(
    con: duckdb.DuckDBPyConnection,
    name: str,
    out: Normalised,
    rejected: list[duckdb.DuckDBPyRelation],
    ingested_at: datetime,
) -> duckdb.DuckDBPyRelation:
    ts_sql = f"TIMESTAMP '{ingested_at.isoformat(sep=' ')}'"
    parts: list[str] = []
    if out.quarantine is not None:
        out.quarantine.create_view("_q_norm", replace=True)
        parts.append(
            f"SELECT coalesce(source, '{name}') AS source, source_file, "
            "CAST(source_offset AS BIGINT) AS source_offset, "
            "content_id(coalesce(source_file, '') || ':' || CAST(source_offset AS VARCHAR)) AS event_id, "
            f"CAST(NULL AS TIMESTAMP) AS event_time, CAST(NULL AS TIMESTAMP) AS logged_time, "
            f"{ts_sql} AS ingested_at, reason, left(redact_raw(raw), 4000) AS raw FROM _q_norm"
        )
    for i, r in enumerate(rejected):
        r.create_view(f"_q_rej{i}", replace=True)
        parts.append(f"SELECT * FROM _q_rej{i}")
    if not parts:
        return con.from_arrow(empty("quarantine"))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _quarantine AS {' UNION ALL BY NAME '.join(parts)}")
    return conform(con, "quarantine", con.table("_quarantine")).good
