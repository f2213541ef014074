"""The Parquet lake: atomic commits with a manifest, integrity verification, DuckDB views.

Layout (ARCHITECTURE §8)::

    LAKE/<table>/source=<src>/event_date=YYYY-MM-DD/part-<uuid>.parquet
    LAKE/_manifest/commits/<seq>.json   one file per commit: files, hashes, rows, inputs
    LAKE/_meta/key                      per-lake key for secret fingerprints
    LAKE/_staging/<commit-id>/          a commit's files before they are published

A commit writes its files under ``_staging``, fsyncs them, renames them into place and only
then writes its manifest entry (temp file, fsync, rename). Readers see only files that a
manifest entry lists, so a crash at any point exposes no partial batch; inputs are recorded by
fingerprint, so committing the same input twice adds nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from jitaudit.conform import duckdb_type
from jitaudit.schema import TABLES, spec

DEFAULT_LAKE = Path("jitaudit-lake")
MANIFEST_DIR = "_manifest"
COMMITS_DIR = "commits"
STAGING_DIR = "_staging"
META_DIR = "_meta"
FORMAT_VERSION = 1
#: zstd level of lake files: level 1 writes about a third faster than DuckDB's default (3)
#: and, on audit logs, compresses as well
ZSTD_LEVEL = 1
_PLAIN_SOURCE = re.compile(r"[A-Za-z0-9_.-]+")


class LakeError(Exception):
    """A lake that cannot be opened or written, with a message for the user."""


@dataclass(frozen=True)
class InputRef:
    """An input a commit came from: its fingerprint decides whether it was already committed."""

    fingerprint: str
    path: str
    format: str
    size: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "path": self.path,
            "format": self.format,
            "size": self.size,
        }


@dataclass(frozen=True)
class FileEntry:
    """A committed Parquet file as the manifest records it."""

    path: str  # relative to the lake root, POSIX separators
    table: str
    source: str
    event_date: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class Commit:
    """One manifest entry."""

    seq: int
    commit_id: str
    committed_at: str
    inputs: list[dict[str, Any]]
    files: list[FileEntry]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


@dataclass
class VerifyReport:
    """What `jitaudit verify` found: files the manifest lists that are gone or changed, and
    Parquet files on disk that no manifest entry lists."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.modified or self.unlisted)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as fh:
        os.fsync(fh.fileno())


def replace_durably(tmp: Path, final: Path) -> None:
    """Make the written file ``tmp`` the file ``final``, surviving a crash at any point: the
    data is synced before the rename, and the rename (its directory) after it."""
    _fsync_file(tmp)
    os.replace(tmp, final)
    _fsync_dir(final.parent)


class Lake:
    """A jitaudit lake rooted at a directory."""

    def __init__(self, root: str | os.PathLike[str] = DEFAULT_LAKE, *, create: bool = True):
        self.root = Path(root).absolute()
        if not self.root.exists():
            if not create:
                raise LakeError(f"no lake at {self.root}")
            self.root.mkdir(parents=True)
        elif not self.root.is_dir():
            raise LakeError(f"{self.root} is not a directory")
        self._commits_dir = self.root / MANIFEST_DIR / COMMITS_DIR
        if create:
            self._commits_dir.mkdir(parents=True, exist_ok=True)
            (self.root / META_DIR).mkdir(exist_ok=True)

    # ------------------------------------------------------------------ key
    @property
    def key(self) -> bytes:
        """The per-lake key for secret fingerprints (JITAUDIT_FINGERPRINT_KEY overrides it,
        so that several lakes can share one and still join)."""
        env = os.environ.get("JITAUDIT_FINGERPRINT_KEY")
        if env:
            return env.encode()
        path = self.root / META_DIR / "key"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # first writer wins; a racing writer reads the winner's key
            tmp.unlink()
        return path.read_text().strip().encode()

    # ------------------------------------------------------------- manifest
    def commits(self) -> list[Commit]:
        """Every committed manifest entry, in commit order."""
        out: list[Commit] = []
        if not self._commits_dir.exists():
            return out
        for p in sorted(self._commits_dir.glob("*.json")):
            data = json.loads(p.read_text())
            out.append(
                Commit(
                    seq=data["seq"],
                    commit_id=data["commit_id"],
                    committed_at=data["committed_at"],
                    inputs=data["inputs"],
                    files=[FileEntry(**f) for f in data["files"]],
                    stats=data.get("stats", {}),
                )
            )
        return out

    def files(self, table: str | None = None) -> list[FileEntry]:
        return [f for c in self.commits() for f in c.files if table is None or f.table == table]

    def committed_inputs(self) -> set[str]:
        return {i["fingerprint"] for c in self.commits() for i in c.inputs}

    def watermark(self) -> int:
        """The sequence number of the newest commit (0 for an empty lake)."""
        names = sorted(self._commits_dir.glob("*.json")) if self._commits_dir.exists() else []
        return int(names[-1].stem) if names else 0

    def digest(self) -> str:
        """SHA-256 over the manifest: one value that names the lake's committed content."""
        h = hashlib.sha256()
        for c in self.commits():
            for f in sorted(c.files, key=lambda f: f.path):
                h.update(f"{f.path}\0{f.sha256}\0{f.rows}\n".encode())
        return h.hexdigest()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        lock_path = self.root / MANIFEST_DIR / ".lock"
        with lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --------------------------------------------------------------- commit
    def commit(
        self,
        con: duckdb.DuckDBPyConnection,
        tables: Mapping[str, duckdb.DuckDBPyRelation | pa.Table],
        inputs: Sequence[InputRef],
        stats: Mapping[str, Any] | None = None,
        partitions: Mapping[str, tuple[str, date]] | None = None,
    ) -> Commit | None:
        """Publish ``tables`` (canonical columns) atomically, recording ``inputs``.

        Returns None, writing nothing, when every input was already committed. A commit
        whose tables are empty still records its inputs, so they are skipped next time.
        ``partitions`` names the one (source, event_date) partition of tables the caller
        knows fill only one (which saves a pass over them); others are looked at.
        """
        with self._lock():
            self._clean_staging()
            done = self.committed_inputs()
            if inputs and all(i.fingerprint in done for i in inputs):
                return None
            commit_id = uuid.uuid4().hex
            staging = self.root / STAGING_DIR / commit_id
            staging.mkdir(parents=True)
            try:
                staged = [
                    (name, path)
                    for name, data in tables.items()
                    for path in self._stage(
                        con, name, data, staging / name, (partitions or {}).get(name)
                    )
                ]
                files = [self._publish(name, path, staging / name) for name, path in staged]
                seq = self.watermark() + 1
                entry = Commit(
                    seq=seq,
                    commit_id=commit_id,
                    committed_at=datetime.now(UTC).replace(tzinfo=None).isoformat(),
                    inputs=[i.to_json() for i in inputs],
                    files=files,
                    stats=dict(stats or {}),
                )
                self._write_manifest(entry)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            return entry

    def _clean_staging(self) -> None:
        """Drop what a crashed commit left in staging (we hold the lock: no commit is live)."""
        shutil.rmtree(self.root / STAGING_DIR, ignore_errors=True)

    def _stage(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        data: duckdb.DuckDBPyRelation | pa.Table,
        out: Path,
        partition: tuple[str, date] | None = None,
    ) -> list[Path]:
        ts = spec(table)
        view = f"_stage_{table}"
        if isinstance(data, pa.Table):
            if data.num_rows == 0:
                return []
            con.register(view, data)
        else:
            data.create_view(view, replace=True)
        try:
            date_expr = f'CAST(coalesce("{ts.date_column}", ingested_at) AS DATE)'
            # the common batch fills one partition: then one plain COPY (parallel, no
            # partitioning buffers) writes the file DuckDB's partitioned COPY would have written
            parts = (
                [partition]
                if partition is not None
                else con.execute(
                    f"SELECT source, {date_expr} AS d FROM {view} GROUP BY ALL LIMIT 2"
                ).fetchall()
            )
            if not parts:
                return []
            options = f"FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL}"
            if len(parts) == 1 and _plain_partition(parts[0][0], parts[0][1]):
                source, day = parts[0]
                folder = out / f"source={source}" / f"event_date={day.isoformat()}"
                folder.mkdir(parents=True)
                cols = ", ".join(f'"{n}"' for n in ts.schema.names if n != "source")
                target = folder / f"part-{uuid.uuid4()}.parquet"
                con.execute(f"COPY (SELECT {cols} FROM {view}) TO '{target}' ({options})")
                return [target]
            cols = ", ".join(f'"{n}"' for n in ts.schema.names)
            con.execute(
                f"COPY (SELECT {cols}, {date_expr} AS event_date FROM {view}) TO '{out}' "
                f"({options}, PARTITION_BY (source, event_date), "
                "FILENAME_PATTERN 'part-{uuid}', OVERWRITE_OR_IGNORE)"
            )
        finally:
            if isinstance(data, pa.Table):
                con.unregister(view)
        return sorted(out.rglob("*.parquet")) if out.exists() else []

    def _publish(self, table: str, staged: Path, staging_root: Path) -> FileEntry:
        rel_inside = staged.relative_to(staging_root)  # source=…/event_date=…/part-….parquet
        source = rel_inside.parts[0].split("=", 1)[1]
        event_date = rel_inside.parts[1].split("=", 1)[1]
        _fsync_file(staged)
        digest = sha256_file(staged)
        rows = pq.read_metadata(staged).num_rows
        size = staged.stat().st_size
        final = self.root / table / rel_inside
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        _fsync_dir(final.parent)
        return FileEntry(
            path=final.relative_to(self.root).as_posix(),
            table=table,
            source=source,
            event_date=event_date,
            rows=rows,
            bytes=size,
            sha256=digest,
        )

    def _write_manifest(self, entry: Commit) -> None:
        body = {
            "format_version": FORMAT_VERSION,
            "seq": entry.seq,
            "commit_id": entry.commit_id,
            "committed_at": entry.committed_at,
            "inputs": entry.inputs,
            "files": [f.__dict__ for f in entry.files],
            "stats": entry.stats,
        }
        final = self._commits_dir / f"{entry.seq:010d}.json"
        tmp = self._commits_dir / f".{entry.seq:010d}.{entry.commit_id}.tmp"
        with tmp.open("w") as fh:
            json.dump(body, fh, indent=1, sort_keys=True, default=str)
        replace_durably(tmp, final)

    # --------------------------------------------------------------- verify
    def verify(self) -> VerifyReport:
        """Recompute every listed file's hash; list missing, modified and unlisted files."""
        report = VerifyReport()
        listed: set[str] = set()
        for f in self.files():
            listed.add(f.path)
            report.checked += 1
            path = self.root / f.path
            if not path.exists():
                report.missing.append(f.path)
            elif path.stat().st_size != f.bytes or sha256_file(path) != f.sha256:
                report.modified.append(f.path)
        for table in TABLES:
            tdir = self.root / table
            if tdir.exists():
                for p in sorted(tdir.rglob("*.parquet")):
                    rel = p.relative_to(self.root).as_posix()
                    if rel not in listed:
                        report.unlisted.append(rel)
        return report

    # ---------------------------------------------------------------- views
    def connect(self, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per canonical table over the committed files."""
        con = con if con is not None else duckdb.connect()
        by_table: dict[str, list[str]] = {t: [] for t in TABLES}
        for f in self.files():
            by_table[f.table].append((self.root / f.path).as_posix())
        for table, paths in by_table.items():
            con.execute(view_sql(table, paths))
        return con


def _plain_partition(source: object, day: object) -> bool:
    """A partition whose folder names need no escaping (an ingester name, a 4-digit year)."""
    return (
        isinstance(source, str)
        and _PLAIN_SOURCE.fullmatch(source) is not None
        and isinstance(day, date)
        and 1 <= day.year <= 9999
    )


def view_sql(table: str, paths: Sequence[str], name: str | None = None) -> str:
    """CREATE VIEW ``name`` (default: ``table``) for ``table`` over ``paths`` in canonical
    column order (empty when none)."""
    ts = spec(table)
    name = name or table
    typed = ", ".join(f'CAST(NULL AS {duckdb_type(f.type)}) AS "{f.name}"' for f in ts.schema)
    empty = f"SELECT {typed}, CAST(NULL AS DATE) AS event_date WHERE false"
    if not paths:
        return f'CREATE OR REPLACE VIEW "{name}" AS {empty}'
    files = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    cols = ", ".join(f'"{n}"' for n in ts.schema.names)
    # a column added to the schema after these files were written reads as NULL: the empty,
    # typed relation supplies every column by name
    return (
        f'CREATE OR REPLACE VIEW "{name}" AS SELECT {cols}, event_date FROM ('
        f"SELECT * FROM read_parquet([{files}], hive_partitioning = true, union_by_name = true, "
        "hive_types = {'source': VARCHAR, 'event_date': DATE}) "
        f"UNION ALL BY NAME {empty})"
    )


def open_lake(root: str | os.PathLike[str] = DEFAULT_LAKE) -> duckdb.DuckDBPyConnection:
    """Open an existing lake read-only and return a connection with its views."""
    return Lake(root, create=False).connect()
