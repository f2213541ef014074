"""Render a scan's findings for people and machines: table, json, jsonl, csv, ocsf.

Each format is one function over a :class:`~jitaudit.scan.ScanResult` returning text; the
command line only chooses one and writes it. Log strings reach these renderers unchanged, so
every renderer treats them as hostile: control characters never reach a terminal, spreadsheet
formulas never reach a CSV cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jitaudit.scan import ScanResult

#: the ``--format`` choices of ``jitaudit scan``, in the order ``--help`` shows them
FORMATS = ("table", "json", "jsonl", "csv", "ocsf")


def render(result: ScanResult, fmt: str, *, width: int | None = None) -> str:
    """``result`` in format ``fmt`` (one of :data:`FORMATS`); ``width`` only shapes tables."""
    if fmt == "table":
        from jitaudit.output.table import table

        return table(result, width=width)
    if fmt == "ocsf":
        from jitaudit.output.ocsf import ocsf

        return ocsf(result)
    from jitaudit.output import records

    if fmt == "json":
        return records.json_document(result)
    if fmt == "jsonl":
        return records.jsonl(result)
    if fmt == "csv":
        return records.csv_text(result)
    raise ValueError(f"unknown output format {fmt!r}; formats are {', '.join(FORMATS)}")
