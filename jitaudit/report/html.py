"""The report as one self-contained HTML file: inline CSS and inline SVG charts, no script,
no external URL to fetch. A Content-Security-Policy forbids every fetch and every script, so
even a string that escaped escaping could not run or call out.

Every dynamic string goes through :func:`esc`; the only links are the catalogue's control
URLs (validated ``https:`` when the catalogue loads), never a value from a log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from jitaudit.report import charts, text
from jitaudit.report.model import GAP, NO_GAP, NOT_ASSESSABLE, Report

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
STATE_CLASS = {GAP: "gap", NO_GAP: "nogap", NOT_ASSESSABLE: "na"}
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right}code{font-size:.9em;word-break:break-all}
.state{font-weight:600;white-space:nowrap}.gap{color:#b03a2e}.nogap{color:#1e7b4a}.na{color:#666}
.summary li{margin:.25rem 0}.chart{margin:1rem 0}.chart svg{max-width:100%;height:auto}
details{margin:.3rem 0 1rem}.muted{color:#666}
@media print{details{display:block}body{margin:0}}
"""


def esc(value: object) -> str:
    """Any value as HTML text (quotes too, so it is safe inside an attribute)."""
    return escape(str(value), quote=True)


def _cell(value: object) -> str:
    return esc(text.cell(value))


def _table(
    header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _state(state: str) -> str:
    return f'<span class="state {STATE_CLASS[state]}">{esc(state)}</span>'


def _link(url: str, label: str) -> str:
    # only catalogue URLs reach here; they are validated https: on load — checked again
    if not url.startswith("https://"):
        return esc(label)
    return f'<a href="{esc(url)}" rel="noreferrer noopener">{esc(label)}</a>'


def _chart(svg: str | None, caption: str) -> str:
    if svg is None:
        return f'<p class="muted">{esc(caption)}: no data.</p>'
    # vl-convert's SVG escapes its text; it holds no script and no external reference
    return f'<figure class="chart" aria-label="{esc(caption)}">{svg}</figure>'


def _frameworks(report: Report) -> list[str]:
    out = []
    for sec in report.frameworks:
        fw = sec.framework
        out.append(f'<h2 id="fw-{esc(fw.id)}">{esc(fw.name)} {esc(fw.version)}</h2>')
        out.append(
            f"<p>{sec.count(GAP)} gap evidenced, {sec.count(NO_GAP)} no gap found, "
            f"{sec.count(NOT_ASSESSABLE)} not assessable. Source: "
            f"{_link(fw.source_url, fw.publisher)}.</p>"
        )
        out.append(
            _table(
                ("Control", "Title", "State", "Detections", "Why"),
                (
                    (
                        _link(c.url, c.control_id),
                        esc(c.title),
                        _state(c.state),
                        esc(", ".join(c.detections) or "none"),
                        esc(c.reason),
                    )
                    for c in sec.controls
                ),
            )
        )
    return out


def _findings(report: Report) -> list[str]:
    out = ['<h2 id="findings">Findings</h2>']
    if not report.findings:
        return [*out, "<p>No findings.</p>"]
    out.append(
        _table(
            ("Severity", "Detection", "Status", "Agent", "Credential / subject", "Summary"),
            (
                (
                    esc(f.severity),
                    esc(f.detection_id),
                    esc(f.status),
                    _cell(f.agent_id),
                    f"<code>{_cell(text.subject(f))}</code>",
                    _cell(f.summary),
                )
                for f in report.findings
            ),
        )
    )
    for f in report.findings:
        shown = f.evidence[: text.EVIDENCE_SHOWN]
        controls = "; ".join(esc(f"{c['framework']} {c['control_id']}") for c in f.controls)
        more = len(f.evidence) - len(shown)
        out.append(
            f"<details><summary>{esc(f.detection_id)} {esc(f.title)} — "
            f"<code>{esc(f.finding_id)}</code></summary>"
            f"<p>{_cell(f.summary)}</p>"
            f"<p>Agent {_cell(f.agent_id)}; principal {_cell(f.principal_id)}; credential "
            f"<code>{_cell(f.credential_id)}</code>; task {_cell(f.task_id)}. Seen "
            f"{esc(text.ts(f.first_seen))} to {esc(text.ts(f.last_seen))}, {f.events} event(s). "
            f"Evidences: {controls or 'no catalogued control'}.</p>"
            + _table(
                ("Table", "Event", "Source", "Lineage (file:offset)"),
                (
                    (
                        _cell(e.get("table")),
                        f"<code>{_cell(e.get('event_id'))}</code>",
                        _cell(e.get("source")),
                        f"<code>{_cell(text.lineage(e))}</code>",
                    )
                    for e in shown
                ),
            )
            + (
                f"<p class='muted'>{more} more evidence row(s) in the JSON report.</p>"
                if more
                else ""
            )
            + "</details>"
        )
    return out


def _exposure(report: Report) -> list[str]:
    e = report.exposure
    return [
        '<h2 id="exposure">Standing-privilege exposure</h2>',
        f"<p>{e.total_hours:,.1f} privilege-hours (hours valid × scope items) over "
        f"{e.measured_grants} of {e.grants} grant(s). Unverifiable, not guessed: "
        f"{e.unknown_scope} grant(s) with unknown scope, {e.unknown_expiry} with unknown "
        "expiry.</p>",
        _chart(charts.exposure_by_agent(report), "Privilege-hours per agent"),
        _chart(charts.exposure_by_day(report), "Privilege-hours per day"),
        _table(
            ("Agent", "Grants", "Measured", "Privilege-hours", "Unknown scope", "Unknown expiry"),
            (
                (
                    _cell(a.agent_id),
                    str(a.grants),
                    str(a.measured_grants),
                    f"{a.privilege_hours:,.1f}",
                    str(a.unknown_scope),
                    str(a.unknown_expiry),
                )
                for a in e.per_agent
            ),
            numeric=(1, 2, 3, 4, 5),
        ),
    ]


def _completeness(report: Report) -> list[str]:
    c = report.completeness
    out = [
        '<h2 id="completeness">Log completeness</h2>',
        _table(
            text.COMPLETENESS_HEADERS,
            text.completeness_rows(c.sources, _cell, esc, "<br>"),
            numeric=(1, 4, 7),
        ),
    ]
    if c.quarantine:
        out.append(
            _table(
                ("Source", "Quarantine reason", "Records"),
                ((_cell(s), _cell(r), str(n)) for s, r, n in c.quarantine),
                numeric=(2,),
            )
        )
    else:
        out.append("<p>No record was quarantined.</p>")
    return out


def html(report: Report) -> str:
    r, s = report, report.stamp
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(r.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(r.title)}</h1>",
        '<h2 id="scope">Scope</h2>',
        f"<p>Time range {esc(text.ts(r.scope.start))} to {esc(text.ts(r.scope.end))}.</p>",
        f"<p>Sources ({len(r.scope.sources)}): "
        + ", ".join(f"<code>{_cell(x)}</code>" for x in r.scope.sources)
        + "</p>",
        f"<p>Agents ({len(r.scope.agents)}): "
        + ", ".join(f"<code>{_cell(x)}</code>" for x in r.scope.agents)
        + "</p>",
        '<h2 id="summary">Executive summary</h2><ul class="summary">',
        *(f"<li>{esc(line)}</li>" for line in r.summary),
        "</ul>",
        _chart(charts.control_states(r), "Control states per framework"),
        *_frameworks(r),
        *_findings(r),
        *_exposure(r),
        *_completeness(r),
        '<h2 id="detections">Detections</h2>',
        _table(
            ("Detection", "Title", "State", "Verifiable", "Unverifiable", "Why"),
            (
                (
                    esc(d.detection_id),
                    esc(d.title),
                    _state(d.state),
                    _cell(d.verifiable),
                    _cell(d.unverifiable),
                    esc(d.reason),
                )
                for d in r.detections
            ),
            numeric=(3, 4),
        ),
        '<h2 id="method">Method and limits</h2><ul>',
        *(f"<li>{esc(m)}</li>" for m in (*r.method, *r.limits)),
        "</ul>",
        '<h2 id="stamp">Reproducibility</h2><ul>',
        f"<li>Lake manifest digest <code>{esc(s.lake_digest)}</code> (watermark {s.watermark})</li>",
        f"<li>jitaudit {esc(s.jitaudit_version)}, scan <code>{esc(s.scan_id)}</code> "
        f"({esc(s.scan_mode)}), generated {esc(text.ts(s.generated_at))}</li>",
        "<li>Catalogue: " + ", ".join(esc(f"{i} {v}") for i, v in s.catalogue) + "</li>",
        "<li>Detections: "
        + ", ".join(f"<code>{esc(i)}@{esc(h)}</code>" for i, h in s.detections)
        + "</li></ul>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
