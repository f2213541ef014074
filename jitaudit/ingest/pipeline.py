"""The ingest run: group inputs by format, normalise in batches, de-duplicate, conform, commit."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from jitaudit.conform import check_sql, conform, split
from jitaudit.ingest import registry, transforms
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import EmptyInput, InputError, InputFile, expand
from jitaudit.lake import InputRef, Lake, view_sql
from jitaudit.schema import INGEST_TABLES, empty, spec

#: a batch holds at most this many bytes of (estimated decompressed) input, which bounds memory;
#: an ingester whose reader streams files from disk inside DuckDB (so their text is never held
#: in Python) may allow more with a ``batch_bytes`` attribute: fewer, larger batches cost less
#: per record. JITAUDIT_INGEST_BATCH_BYTES sets one budget for every format.
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
    #: why each file that no ingester recognised (format ``auto``) was left out, one line each
    unrecognised: list[str] = field(default_factory=list)

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


def _batch_budget(name: str) -> int:
    if "JITAUDIT_INGEST_BATCH_BYTES" in os.environ:
        return BATCH_BYTES
    return int(getattr(registry.get(name), "batch_bytes", BATCH_BYTES))


def _batches(files: Sequence[InputFile], budget: int = BATCH_BYTES) -> Iterable[list[InputFile]]:
    """Consecutive groups of ``files`` of at most ``budget`` estimated bytes each (a bigger
    file goes alone), as many as that takes and of about equal size (no small last batch)."""
    sizes = [f.size * (GZIP_RATIO if f.gzipped else 1) for f in files]
    target = sum(sizes) / max(1, math.ceil(sum(sizes) / budget))
    batch: list[InputFile] = []
    size = 0
    for f, est in zip(files, sizes, strict=True):
        if batch and (size + est > budget or size >= target):
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
    a path is unreadable or no file's format is known. With format ``auto``, files that no
    ingester recognises (or that are empty) are left out and the others ingested; the report's
    ``unrecognised`` says which and why, so one stray file does not hold back a directory."""
    files = expand(paths)
    formats: dict[Path, str] = {}
    empty_files: list[str] = []
    report = IngestReport()
    for f in files:
        if fmt != "auto":
            formats[f.path] = registry.get(fmt).name
            continue
        try:
            formats[f.path] = registry.detect(f)
        except EmptyInput as exc:
            empty_files.append(str(exc))
        except InputError as exc:
            report.unrecognised.append(str(exc))
    if files and not formats:  # nothing to ingest: nothing is written
        first = (report.unrecognised or empty_files)[0]
        raise InputError(first if len(files) == 1 else f"none of {len(files)} files: {first}")
    files = [f for f in files if f.path in formats]
    done = lake.committed_inputs()
    by_format: dict[str, list[InputFile]] = {}
    for f in files:
        stats = report.sources.setdefault(formats[f.path], SourceStats())
        if f.fingerprint in done:
            stats.skipped_files += 1
        else:
            by_format.setdefault(formats[f.path], []).append(f)
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    for name, group in by_format.items():
        batches = list(_batches(group, _batch_budget(name)))
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
        done = _finish(con, out, ingested_at, lake)
        stats.duplicates += done.lake_duplicates
        quarantine = _quarantine(con, name, out, done.rejected, ingested_at)
        stats.quarantined = _count(quarantine)
        stats.rows = done.rows
        stats.seconds = time.perf_counter() - started
        lake.commit(
            con,
            {**done.tables, "quarantine": quarantine},
            [InputRef(f.fingerprint, f.name, name, f.size) for f in batch],
            stats={name: stats.to_json()},
            partitions=done.partitions,
        )
        stats.seconds = time.perf_counter() - started
        return stats
    finally:
        con.close()


def _count(rel: duckdb.DuckDBPyRelation) -> int:
    row = rel.aggregate("count(*)").fetchall()
    return int(row[0][0])


@dataclass
class _Finished:
    """What :func:`_finish` hands to the commit."""

    tables: dict[str, duckdb.DuckDBPyRelation] = field(default_factory=dict)
    rejected: list[duckdb.DuckDBPyRelation] = field(default_factory=list)
    #: input records dropped because every row they produced was already present
    lake_duplicates: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    #: tables known to fill one (source, event_date) partition
    partitions: dict[str, tuple[str, date]] = field(default_factory=dict)


def _finish(
    con: duckdb.DuckDBPyConnection, out: Normalised, ingested_at: datetime, lake: Lake
) -> _Finished:
    """Conform each table and de-duplicate it within the batch and against the lake.

    The common batch has no misfit, no repeated id and nothing the lake already holds: one
    pass over the checked rows (an aggregate over their ids and the columns conformance
    checks) shows that, and the commit's COPY then streams the normaliser's rows straight into
    Parquet, with no copy in between. Otherwise the checked rows are materialised once and
    the repeats, the rejects and the rows to commit are all read from that table; rows are
    only ranked (a sort) when some id repeats.
    """
    ts_sql = f"TIMESTAMP '{ingested_at.isoformat(sep=' ')}'"
    kept: list[str] = []
    dropped: list[str] = []
    redelivered: list[str] = []
    done = _Finished()
    for table, rel in out.tables.items():
        if table not in INGEST_TABLES:
            raise ValueError(f"an ingester may not write table {table!r}")
        # the normaliser's relation is read as a view, not copied
        raw = f"_src_{table}"
        rel.create_view(raw, replace=True)
        rel_d = (
            con.sql(f"SELECT * REPLACE ({ts_sql} AS ingested_at) FROM {raw}")
            if ("ingested_at" in rel.columns)
            else con.sql(f"SELECT *, {ts_sql} AS ingested_at FROM {raw}")
        )
        view = f"_check_{table}"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {check_sql(con, table, rel_d)}")
        profile, in_lake = _profile(con, lake, table, view)
        if not (profile.misfits or profile.repeats or profile.in_lake):
            done.tables[table] = split(table, con.table(view)).good
            done.rows[table] = profile.rows
            if profile.partition is not None:
                done.partitions[table] = profile.partition
            kept.append(f"SELECT source_file, source_offset FROM {raw}")
            continue
        checked = f"_checked_{table}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {checked} AS SELECT * FROM {view}")
        source = checked
        if profile.repeats or profile.in_lake:
            known = (
                f"""UNION SELECT DISTINCT r.source, r.event_id FROM {checked} AS r
                    JOIN {in_lake} AS l ON l.source = r.source AND l.event_id = r.event_id"""
                if in_lake
                else ""
            )
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _rep_{table} AS
                SELECT source, event_id FROM {checked} GROUP BY source, event_id
                HAVING count(*) > 1 {known}"""
            )
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
        else:
            kept.append(f"SELECT source_file, source_offset FROM {checked}")
        c = split(table, con.table(source))
        done.tables[table] = c.good
        done.rows[table] = _count(c.good)
        done.rejected.append(c.rejected)
    if dropped:
        # records all of whose rows were repeats (a record may feed several tables)
        row = con.execute(
            f"SELECT count(*) FROM (({' UNION '.join(dropped)}) EXCEPT ({' UNION '.join(kept)}))"
        ).fetchall()
        done.lake_duplicates = int(row[0][0])
        # the dropped copies stay as lineage: their delivery time counts for completeness
        redeliveries = con.sql(
            f"SELECT *, {ts_sql} AS ingested_at FROM ({' UNION ALL '.join(redelivered)})"
        )
        done.tables["redeliveries"] = conform(
            con, "redeliveries", redeliveries, "_checked_redeliveries"
        ).good
        done.rows["redeliveries"] = _count(done.tables["redeliveries"])
    return done


@dataclass(frozen=True)
class _Profile:
    rows: int
    misfits: int
    #: ids (source, event_id) that more than one row of the batch carries
    repeats: int
    #: ids the lake already holds
    in_lake: int
    #: the one (source, event_date) partition of the rows, when they fill one
    partition: tuple[str, date] | None


def _profile(
    con: duckdb.DuckDBPyConnection, lake: Lake, table: str, view: str
) -> tuple[_Profile, str]:
    """One pass over the checked rows of ``view``: a hash aggregate over their ids, from which
    the counts, the repeats and the ids the lake holds are read. Also returns the view over
    the lake's files of those sources ("" when there are none)."""
    ts = spec(table)
    day = f'CAST(coalesce("{ts.date_column}", ingested_at) AS DATE)'
    ids = f"_ids_{table}"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {ids} AS
        SELECT source, event_id, count(*) AS n, count(_reason) AS misfits,
               min({day}) AS d0, max({day}) AS d1
        FROM {view} GROUP BY source, event_id"""
    )
    in_lake = _lake_ids(con, lake, table, ids)
    lake_hits = (
        f"""(SELECT count(*) FROM {ids} AS g SEMI JOIN {in_lake} AS l
             ON l.source = g.source AND l.event_id = g.event_id)"""
        if in_lake
        else "0"
    )
    row = con.execute(
        f"""SELECT coalesce(sum(n), 0), coalesce(sum(misfits), 0),
                   count(*) FILTER (n > 1 AND source IS NOT NULL AND event_id IS NOT NULL),
                   {lake_hits}, min(source), max(source), min(d0), max(d1)
            FROM {ids}"""
    ).fetchall()[0]
    rows, misfits, repeats, hits, s0, s1, d0, d1 = row
    one = s0 is not None and s0 == s1 and d0 is not None and d0 == d1
    profile = _Profile(
        rows=int(rows),
        misfits=int(misfits),
        repeats=int(repeats),
        in_lake=int(hits),
        partition=(str(s0), d0) if one else None,
    )
    return profile, in_lake


def _lake_ids(con: duckdb.DuckDBPyConnection, lake: Lake, table: str, ids: str) -> str:
    """A view over the lake's ``table`` restricted to the files of the sources in ``ids``
    (a repeat has the same source: other sources' files cannot hold one); "" when none."""
    files = lake.files(table)
    if not files:
        return ""
    sources = {r[0] for r in con.execute(f"SELECT DISTINCT source FROM {ids}").fetchall()}
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
    if rejected:
        # one record whose rows several tables reject (a Vault entry gives a use and a
        # decision) is one quarantined record, with every table's reason
        union = " UNION ALL ".join(f"SELECT * FROM _q_rej{i}" for i in range(len(rejected)))
        parts.append(
            f"""SELECT source, source_file, source_offset, event_id, min(event_time) AS event_time,
                       min(logged_time) AS logged_time, min(ingested_at) AS ingested_at,
                       string_agg(reason, '; ' ORDER BY reason) AS reason, min(raw) AS raw
                FROM ({union}) GROUP BY source, source_file, source_offset, event_id"""
        )
    if not parts:
        return con.from_arrow(empty("quarantine"))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _quarantine AS {' UNION ALL BY NAME '.join(parts)}")
    return conform(con, "quarantine", con.table("_quarantine")).good
