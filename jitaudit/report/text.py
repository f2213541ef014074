"""Small formatting helpers the renderers share (numbers, times, durations, lineage)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from jitaudit.detections.runner import Finding
from jitaudit.output.records import neutralise

#: evidence rows shown per finding in human-readable formats (the json report has them all)
EVIDENCE_SHOWN = 20
UNKNOWN = "unknown"


def ts(value: datetime | None) -> str:
    return UNKNOWN if value is None else value.isoformat(sep=" ", timespec="seconds") + "Z"


def seconds(value: float | None) -> str:
    if value is None:
        return UNKNOWN
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def cell(value: Any) -> str:
    """A log value as table-cell text: unknown for None, one line, no spreadsheet formula
    (a table copied from a report into a spreadsheet must not run a formula planted in a log)."""
    if value is None or value == "":
        return UNKNOWN
    return neutralise(" ".join(str(value).split()))


def lineage(e: dict[str, Any]) -> str:
    """``file:offset`` of one evidence entry."""
    where = e.get("source_file") or UNKNOWN
    offset = e.get("source_offset")
    return f"{where}:{offset}" if offset is not None else str(where)


def subject(f: Finding) -> str:
    return f.credential_id or f.agent_id or f.subject


#: the log-completeness table's columns, the same in every format
COMPLETENESS_HEADERS = (
    "Source",
    "Records",
    "First event",
    "Last event",
    "With delivery time",
    "p95 delay",
    "Max delay",
    "Quarantined",
    "Late or silent (JIT-014)",
)


def completeness_rows(
    sources: Iterable[Any], log_cell: Callable[[str], str], plain: Callable[[str], str], joiner: str
) -> list[tuple[str, ...]]:
    """One row per source for :data:`COMPLETENESS_HEADERS`; ``log_cell`` escapes strings that
    came from logs, ``plain`` escapes our own text, for the output format at hand."""
    return [
        (
            log_cell(s.source),
            str(s.records),
            plain(ts(s.first_event)),
            plain(ts(s.last_event)),
            str(s.with_delivery_time),
            plain(seconds(s.p95_delay_seconds)),
            plain(seconds(s.max_delay_seconds)),
            str(s.quarantined),
            joiner.join(log_cell(x) for x in s.delay_findings) or "none",
        )
        for s in sources
    ]
