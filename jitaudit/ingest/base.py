"""What an ingester is: content detection plus a normaliser from files to canonical relations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb

from jitaudit.ingest.files import InputFile


@dataclass
class Context:
    """What a normaliser gets besides its files.

    ``con`` has the transformation macros of :mod:`jitaudit.ingest.transforms` registered,
    ``TimeZone`` set to UTC, and a ``_ingested_at`` value available as ``ctx.ingested_at_sql``.
    """

    con: duckdb.DuckDBPyConnection
    ingested_at: datetime
    options: Mapping[str, Any] = field(default_factory=dict)
    enrichment: Sequence[Path] = ()

    @property
    def ingested_at_sql(self) -> str:
        return f"TIMESTAMP '{self.ingested_at.isoformat(sep=' ')}'"


@dataclass
class Normalised:
    """A normaliser's output for one batch of files.

    ``tables`` maps canonical table names to relations holding canonical columns (any subset:
    the pipeline fills the rest with NULL and rejects rows that do not fit). Every row carries
    ``source``, ``source_file``, ``source_offset``, ``event_id``. ``quarantine`` holds records
    that could not be normalised (``source``, ``source_file``, ``source_offset``, ``reason``,
    ``raw``). ``read`` counts input records; ``duplicates`` counts records the normaliser
    dropped as repeats of another record (the pipeline adds repeats of rows already in the lake).
    """

    tables: dict[str, duckdb.DuckDBPyRelation]
    quarantine: duckdb.DuckDBPyRelation | None
    read: int
    duplicates: int = 0


class Ingester(Protocol):
    """One log format. ``name`` is what ``--format`` accepts and what rows carry as ``source``."""

    name: str
    description: str

    def sniff(self, head: str) -> bool:
        """True when the first bytes of a (decompressed) file look like this format."""
        ...

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        """Turn ``files`` into canonical relations (vectorised: SQL over the whole batch)."""
        ...
