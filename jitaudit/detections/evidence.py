"""A finding's evidence rows, kept as the JSON text they arrive in until someone reads them.

A scan of a large lake carries tens of thousands of findings with up to
:data:`~jitaudit.detections.runner.EVIDENCE_LIMIT` rows each (a million rows in all). Most of
them are only passed along: from DuckDB (which writes the JSON, ``to_json``) to the scan state
and the findings history, and back from the scan state at the next scan. Turning each row into
a Python dict and back costs seconds on each of those hops; :class:`Evidence` holds the text
and decodes it only when a report, an output format or the dashboard reads the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import orjson

#: DuckDB ``from_json`` structure of one evidence list (``schema.EVIDENCE`` rows)
STRUCTURE = orjson.dumps(
    [
        {
            "table": "VARCHAR",
            "event_id": "VARCHAR",
            "source": "VARCHAR",
            "source_file": "VARCHAR",
            "source_offset": "BIGINT",
        }
    ]
).decode()


class Evidence(Sequence[dict[str, Any]]):
    """Evidence rows ``{table, event_id, source, source_file, source_offset}`` in event order.

    Built from rows or from their JSON text (a JSON array of those objects); either form is
    produced from the other on first use and kept.
    """

    __slots__ = ("_rows", "_text")

    def __init__(
        self, rows: Iterable[Mapping[str, Any]] | None = None, *, text: str | None = None
    ) -> None:
        if (rows is None) == (text is None):
            raise ValueError("Evidence takes rows or their JSON text, not both or neither")
        self._rows = None if rows is None else [dict(r) for r in rows]
        self._text = text

    @classmethod
    def of(cls, value: Evidence | str | Iterable[Mapping[str, Any]] | None) -> Evidence:
        """``value`` as Evidence: itself, JSON text, rows, or None for no rows."""
        if isinstance(value, Evidence):
            return value
        if isinstance(value, str):
            return cls(text=value)
        return cls(value or [])

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            assert self._text is not None
            self._rows = orjson.loads(self._text)
        return self._rows

    @property
    def text(self) -> str:
        """The rows as a compact JSON array."""
        if self._text is None:
            self._text = orjson.dumps(self._rows).decode()
        return self._text

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self.rows[i]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Evidence):
            if self._text is not None and self._text == other._text:
                return True
            return self.rows == other.rows
        if isinstance(other, list):
            return self.rows == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Evidence({self.rows!r})"
