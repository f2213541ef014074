"""Strings from logs are inert in every report format: no script, no javascript: link, no
Markdown link or image, no spreadsheet formula at the start of a table cell."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from jitaudit.report import charts, model, render
from jitaudit.report.markdown import escape
from tests.report.hostile import FILE_NAME, FORMULA, HOSTILE_AGENTS, MD_LINK, SCRIPT
from tests.report.test_formats import tags

ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "ul", "li", "table",
    "thead", "tbody", "tr", "th", "td", "span", "code", "details", "summary", "br", "figure",
    "a", "svg", "g", "path", "text", "rect", "line", "defs", "clippath",
}  # fmt: skip


MARKDOWN_TAGS = {
    "h1",
    "h2",
    "h3",
    "p",
    "ul",
    "li",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "strong",
}


def test_hostile_lake_has_hostile_findings(hostile_report: model.Report) -> None:
    assert set(HOSTILE_AGENTS) <= set(hostile_report.scope.agents)
    assert any(SCRIPT in f.summary for f in hostile_report.findings)
    assert any(
        FILE_NAME in str(e["source_file"]) for f in hostile_report.findings for e in f.evidence
    )


def test_html_escapes_log_strings(hostile_report: model.Report) -> None:
    text = render(hostile_report, "html").decode()
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text  # lineage: the log file name
    found = tags(text)
    assert {t for t, _ in found} <= ALLOWED_TAGS
    for _, attrs in found:
        assert not any(k.startswith("on") for k in attrs)
        href = attrs.get("href")
        assert href is None or href.startswith("https://")
    # a table cell never starts with a formula, even when copied into a spreadsheet
    cells = re.findall(r"<td[^>]*>(?:<code>)?([^<]*)", text)
    assert not [c for c in cells if c.startswith(("=", "+", "@"))]
    assert "&#x27;=HYPERLINK" in text


def test_markdown_escapes_log_strings(hostile_report: model.Report) -> None:
    text = render(hostile_report, "md").decode()
    assert escape(MD_LINK) in text and escape(SCRIPT) in text and escape(FILE_NAME) in text
    assert "](javascript" not in text
    assert "'=HYPERLINK" in text  # cells are neutralised like CSV
    assert_inert_markdown(text)


def assert_inert_markdown(text: str) -> None:
    """Rendered as GitHub renders it, with raw HTML allowed: no tag, link or image from a log
    (the only tags are those Markdown syntax makes)."""
    cmark = pytest.importorskip("cmarkgfm")
    from cmarkgfm.cmark import Options

    rendered = cmark.github_flavored_markdown_to_html(text, options=Options.CMARK_OPT_UNSAFE)
    assert {t for t, _ in tags(rendered)} <= MARKDOWN_TAGS, rendered[:2000]
    assert "&lt;script&gt;" in rendered or "&lt;script" in rendered


def test_markdown_escape_covers_table_and_link_syntax() -> None:
    assert escape("a|b") == r"a\|b"
    assert escape("![i](x)") == r"\!\[i\]\(x\)"
    assert escape("`c` *e* _u_ # h") == r"\`c\` \*e\* \_u\_ \# h"
    assert escape("line\nbreak") == "line break"
    assert escape("http://x www.y") == r"http\://x www\.y"


def test_json_keeps_log_strings_as_data(hostile_report: model.Report) -> None:
    doc = json.loads(render(hostile_report, "json"))
    assert set(HOSTILE_AGENTS) <= set(doc["scope"]["agents"])
    assert any(SCRIPT in f["summary"] for f in doc["findings"])


def test_oscal_escapes_markdown_descriptions(hostile_report: model.Report) -> None:
    ar = pytest.importorskip("trestle.oscal.assessment_results")
    raw = render(hostile_report, "oscal").decode()
    doc = json.loads(raw)
    ar.AssessmentResults.model_validate(doc["assessment-results"])
    descriptions = [
        o["description"] for r in doc["assessment-results"]["results"] for o in r["observations"]
    ]
    assert any(escape(SCRIPT) in d for d in descriptions)
    assert_inert_markdown("\n\n".join(descriptions))  # OSCAL descriptions are Markdown
    props = [
        p["value"]
        for r in doc["assessment-results"]["results"]
        for o in r["observations"]
        for p in o["props"]
    ]
    assert not [v for v in props if v.startswith("=")]
    assert FORMULA not in [v for v in props]


def test_pdf_has_no_active_content(hostile_report: model.Report) -> None:
    pytest.importorskip("weasyprint")
    data = render(hostile_report, "pdf")
    assert data.startswith(b"%PDF-")
    assert b"/JavaScript" not in data and b"/JS " not in data and b"javascript:" not in data


def test_chart_labels_from_logs_are_escaped(hostile_report: model.Report) -> None:
    # the hostile lake has no grants: give its agents exposure so their ids label a chart
    per_agent = tuple(
        model.AgentExposure(agent, 1, 1, 2.0 + i, 0, 0) for i, agent in enumerate(HOSTILE_AGENTS)
    )
    exposure = dataclasses.replace(hostile_report.exposure, per_agent=per_agent)
    report = dataclasses.replace(hostile_report, exposure=exposure)
    svg = charts.exposure_by_agent(report)
    assert svg is not None and "&lt;script&gt;" in svg and "<script" not in svg
    text = render(report, "html").decode()
    assert "<script" not in text.lower()
    assert {t for t, _ in tags(text)} <= ALLOWED_TAGS
