"""Findings as records: the json document, JSON lines and CSV (ARCHITECTURE §5 fields)."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jitaudit.detections.runner import Finding
    from jitaudit.scan import ScanResult

CSV_COLUMNS = (
    "finding_id",
    "detection_id",
    "title",
    "severity",
    "status",
    "agent_id",
    "principal_id",
    "credential_id",
    "task_id",
    "first_seen",
    "last_seen",
    "events",
    "evidence_count",
    "summary",
    "controls",
    "subject",
    "suppressed_by",
)
#: a spreadsheet evaluates a cell starting with one of these as a formula (OWASP CSV injection)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def nulls_for_blanks(value: Any) -> Any:
    """``value`` with every empty string, at any depth, replaced by None (unknown is null)."""
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, dict):
        return {k: nulls_for_blanks(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nulls_for_blanks(v) for v in value]
    return value


def finding_record(f: Finding) -> dict[str, Any]:
    """One finding as a JSON-ready dict: the §5 fields, events, subject and its suppression."""
    return dict(nulls_for_blanks({**f.to_json(), "suppression": f.suppression}))


def scan_document(result: ScanResult) -> dict[str, Any]:
    """The whole scan: findings, coverage, expired suppressions (``ScanResult.to_json``)."""
    doc = result.to_json()
    doc["findings"] = [finding_record(f) for f in result.findings]
    return doc


def json_document(result: ScanResult) -> str:
    return json.dumps(scan_document(result), indent=2, ensure_ascii=False) + "\n"


def jsonl(result: ScanResult) -> str:
    return "".join(
        json.dumps(finding_record(f), ensure_ascii=False, separators=(",", ":")) + "\n"
        for f in result.findings
    )


def neutralise(cell: str) -> str:
    """A cell a spreadsheet shows as text: a leading formula character gets a quote before it."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def _csv_row(f: Finding) -> list[str | int]:
    rec = finding_record(f)
    controls = ";".join(
        f"{c.get('framework') or ''}:{c.get('control_id') or ''}" for c in rec["controls"] or []
    )
    suppression = rec["suppression"] or {}
    values: dict[str, Any] = {
        **rec,
        "evidence_count": len(rec["evidence"] or []),
        "controls": controls,
        "suppressed_by": suppression.get("owner"),
    }
    row: list[str | int] = []
    for column in CSV_COLUMNS:
        value = values[column]
        if isinstance(value, int) and not isinstance(value, bool):
            row.append(value)
        else:
            row.append(neutralise("" if value is None else str(value)))
    return row


def csv_text(result: ScanResult) -> str:
    """One row per finding; an unknown value is an empty cell; evidence as a count."""
    buf = io.StringIO()
    # CRLF rows (RFC 4180): the writer then quotes any cell holding a CR or LF of its own
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for f in result.findings:
        writer.writerow(_csv_row(f))
    return buf.getvalue()
