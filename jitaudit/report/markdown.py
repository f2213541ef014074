"""The report as Markdown: every log string escaped, so it can never form a link, an image,
raw HTML, emphasis, a heading or a table cell boundary."""

from __future__ import annotations

import re
from collections.abc import Sequence

from jitaudit.report import text
from jitaudit.report.model import Report

#: characters with a meaning in CommonMark/GFM inline syntax (links, images, raw HTML,
#: emphasis, code, table cells, entities, strikethrough) or at the start of a heading
_SPECIAL = re.compile(r"([\\`*_\[\]()<>#!|~&])")
#: a URI scheme's colon (``javascript:``, ``http:``) and ``www.``: never an autolink
_AUTOLINK = re.compile(r"(?<=[A-Za-z])(:)|(?<=www)(\.)", re.IGNORECASE)


def escape(value: object) -> str:
    """``value`` as inert Markdown text on one line: every special character backslash-
    escaped, so no log string can form a link, image, HTML tag, emphasis or table cell."""
    once = _SPECIAL.sub(r"\\\1", " ".join(str(value).split()))
    return _AUTOLINK.sub(lambda m: "\\" + (m.group(1) or m.group(2)), once)


def esc_cell(value: object) -> str:
    return escape(text.cell(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


def markdown(report: Report) -> str:
    r = report
    out = [f"# {escape(r.title)}", ""]
    out += ["## Scope", ""]
    out += [
        f"- Time range: {escape(text.ts(r.scope.start))} to {escape(text.ts(r.scope.end))}",
        f"- Sources ({len(r.scope.sources)}): " + ", ".join(esc_cell(s) for s in r.scope.sources),
        f"- Agents ({len(r.scope.agents)}): " + ", ".join(esc_cell(a) for a in r.scope.agents),
        "",
        "## Executive summary",
        "",
    ]
    out += [f"- {escape(line)}" for line in r.summary] + [""]
    for sec in r.frameworks:
        fw = sec.framework
        out += [f"## {escape(fw.name)} {escape(fw.version)}", ""]
        out += [
            f"{sec.count('gap evidenced')} gap evidenced, {sec.count('no gap found')} no gap "
            f"found, {sec.count('not assessable')} not assessable.",
            "",
        ]
        out += _table(
            ("Control", "Title", "State", "Detections", "Why"),
            [
                (
                    escape(c.control_id),
                    escape(c.title),
                    f"**{escape(c.state)}**",
                    escape(", ".join(c.detections)) or "none",
                    escape(c.reason),
                )
                for c in sec.controls
            ],
        )
    out += ["## Findings", ""]
    if not r.findings:
        out += ["No findings.", ""]
    for f in r.findings:
        out += [
            f"### {escape(f.detection_id)} {escape(f.title)} ({escape(f.severity)}, "
            f"{escape(f.status)})",
            "",
            escape(f.summary),
            "",
            f"- Finding: {escape(f.finding_id)}",
            f"- Agent: {esc_cell(f.agent_id)}; principal: {esc_cell(f.principal_id)}; "
            f"credential: {esc_cell(f.credential_id)}; task: {esc_cell(f.task_id)}",
            f"- Seen: {escape(text.ts(f.first_seen))} to {escape(text.ts(f.last_seen))}, "
            f"{f.events} event(s)",
            "- Evidences: "
            + (
                "; ".join(escape(f"{c['framework']} {c['control_id']}") for c in f.controls)
                or "no catalogued control"
            ),
            "",
        ]
        shown = f.evidence[: text.EVIDENCE_SHOWN]
        out += _table(
            ("Table", "Event", "Source", "Lineage (file:offset)"),
            [
                (
                    esc_cell(e.get("table")),
                    esc_cell(e.get("event_id")),
                    esc_cell(e.get("source")),
                    esc_cell(text.lineage(e)),
                )
                for e in shown
            ],
        )
        if len(f.evidence) > len(shown):
            out += [f"{len(f.evidence) - len(shown)} more evidence row(s) in the JSON report.", ""]
    e = r.exposure
    out += ["## Standing-privilege exposure", ""]
    out += [
        f"{e.total_hours:,.1f} privilege-hours over {e.measured_grants} of {e.grants} grant(s); "
        f"unverifiable: {e.unknown_scope} with unknown scope, {e.unknown_expiry} with unknown "
        "expiry.",
        "",
    ]
    out += _table(
        ("Agent", "Grants", "Measured", "Privilege-hours", "Unknown scope", "Unknown expiry"),
        [
            (
                esc_cell(a.agent_id),
                str(a.grants),
                str(a.measured_grants),
                f"{a.privilege_hours:,.1f}",
                str(a.unknown_scope),
                str(a.unknown_expiry),
            )
            for a in e.per_agent
        ],
    )
    out += _table(("Day", "Privilege-hours"), [(d.isoformat(), f"{h:,.1f}") for d, h in e.per_day])
    c = r.completeness
    out += ["## Log completeness", ""]
    out += _table(
        text.COMPLETENESS_HEADERS, text.completeness_rows(c.sources, esc_cell, escape, "; ")
    )
    if c.quarantine:
        out += _table(
            ("Source", "Quarantine reason", "Records"),
            [(esc_cell(s), esc_cell(reason), str(n)) for s, reason, n in c.quarantine],
        )
    out += ["## Detections", ""]
    out += _table(
        ("Detection", "Title", "State", "Verifiable", "Unverifiable", "Why"),
        [
            (
                escape(d.detection_id),
                escape(d.title),
                escape(d.state),
                text.cell(d.verifiable),
                text.cell(d.unverifiable),
                escape(d.reason),
            )
            for d in r.detections
        ],
    )
    out += ["## Method and limits", ""]
    out += [f"- {escape(m)}" for m in r.method] + [""]
    out += [f"- {escape(m)}" for m in r.limits] + [""]
    s = r.stamp
    out += ["## Reproducibility", ""]
    out += [
        f"- Lake manifest digest: {escape(s.lake_digest)} (watermark {s.watermark})",
        f"- jitaudit {escape(s.jitaudit_version)}, scan {escape(s.scan_id)} ({escape(s.scan_mode)}), "
        f"generated {escape(text.ts(s.generated_at))}",
        "- Catalogue: " + ", ".join(escape(f"{i} {v}") for i, v in s.catalogue),
        "- Detections: " + ", ".join(escape(f"{i}@{h}") for i, h in s.detections),
        "",
    ]
    return "\n".join(out)
