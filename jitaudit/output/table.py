"""Readable terminal tables: a scan's findings with coverage, and grants valid at an instant."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jitaudit.scan import ScanResult

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
UNKNOWN = "-"


def printable(text: str) -> str:
    """``text`` with control and format characters escaped, so a log string cannot move the
    cursor, recolour the terminal or reorder what a reviewer reads."""
    out = []
    for ch in text:
        if unicodedata.category(ch)[0] == "C":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _cell(value: Any, limit: int | None = None) -> str:
    text = UNKNOWN if value is None or value == "" else printable(str(value))
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 1)] + "…"
    return text


def grid(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; the last column is never padded."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    lines = []
    for r in [list(header), *rows]:
        cells = [
            c.rjust(w) if i in right else (c if i == len(r) - 1 else c.ljust(w))
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


FINDINGS_HEADER = ("SEVERITY", "DETECTION", "STATUS", "AGENT", "CREDENTIAL", "SUMMARY")


def _findings_rows(result: ScanResult, width: int | None) -> list[list[str]]:
    ordered = sorted(
        result.findings,
        key=lambda f: (SEVERITY_ORDER.index(f.severity), f.detection_id, f.finding_id),
    )
    rows = [
        [
            f.severity,
            f.detection_id,
            f.status,
            _cell(f.agent_id, 32),
            _cell(f.credential_id, 28),
            _cell(f.summary),
        ]
        for f in ordered
    ]
    if width is not None and rows:
        used = sum(max(len(FINDINGS_HEADER[i]), *(len(r[i]) for r in rows)) + 2 for i in range(5))
        room = max(width - used, 30)
        for r in rows:
            if len(r[5]) > room:
                r[5] = r[5][: room - 1] + "…"
    return rows


def table(result: ScanResult, *, width: int | None = None) -> str:
    """Findings (most severe first), a per-severity tally, coverage and expired suppressions.

    ``width`` (a terminal's columns) shortens summaries to fit; None keeps them whole.
    """
    statuses = Counter(f.status for f in result.findings)
    tally = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    out = [
        f"scan {result.scan_id} ({result.mode}, watermark {result.watermark}): "
        f"{len(result.findings)} finding(s)" + (f" — {tally}" if tally else ""),
        "",
    ]
    if result.findings:
        out.append(grid(FINDINGS_HEADER, _findings_rows(result, width)))
        severities = Counter(f.severity for f in result.findings)
        out += [
            "",
            "by severity: "
            + ", ".join(f"{s} {severities[s]}" for s in SEVERITY_ORDER if severities[s]),
        ]
    else:
        out.append("no findings")
    if result.coverage:
        rows = []
        for c in result.coverage:
            total = c.verifiable + c.unverifiable
            share = f"{100 * c.verifiable / total:.0f} %" if total else UNKNOWN
            rows.append([c.detection_id, str(c.verifiable), str(c.unverifiable), share])
        out += [
            "",
            "coverage (subjects each detection could check; unverifiable = facts the logs lack):",
            grid(("DETECTION", "VERIFIABLE", "UNVERIFIABLE", "CHECKED"), rows, right=(1, 2, 3)),
        ]
    if result.expired_suppressions:
        out += ["", "expired suppressions (no longer suppressing — review and renew or remove):"]
        for s in result.expired_suppressions:
            out.append("  " + printable(describe_suppression(s.to_json())))
    return "\n".join(out) + "\n"


def describe_suppression(s: dict[str, Any]) -> str:
    """One line naming a suppression entry: detection, match, owner, expiry."""
    match = ", ".join(f"{k}={v}" for k, v in s["match"].items())
    return f"{s['detection']} {match} (owner {s['owner']}, expired {s['expires']}: {s['reason']})"


def remaining(seconds: int | None) -> str:
    """A remaining TTL for people: ``1h 02m 05s``; ``unknown`` when the expiry is unknown."""
    if seconds is None:
        return "unknown"
    hours, rest = divmod(max(int(seconds), 0), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _items(values: Sequence[str] | None) -> str:
    return "unknown" if values is None else printable(",".join(values)) or UNKNOWN


def grants_table(grants: Sequence[dict[str, Any]], at: datetime) -> str:
    """Grants valid at ``at`` (rows of ``replay.as_of``): who, which task, scope, TTL left."""
    unknown = sum(1 for g in grants if g["remaining_seconds"] is None)
    out = [
        f"{len(grants)} grant(s) valid at {at.isoformat()}Z"
        + (f" ({unknown} with unknown expiry)" if unknown else "")
    ]
    if grants:
        rows = [
            [
                _cell(g["credential_id"] or g["grant_id"]),
                _cell(g["source"]),
                _cell(g["agent_id"]),
                _cell(g["task_id"]),
                _cell(g["issued_at"].isoformat() if g["issued_at"] else None),
                remaining(g["remaining_seconds"]),
                _items(g["scope"]),
            ]
            for g in grants
        ]
        header = ("CREDENTIAL", "SOURCE", "AGENT", "TASK", "ISSUED", "REMAINING", "SCOPE")
        out += ["", grid(header, rows, right=(5,))]
    return "\n".join(out) + "\n"
