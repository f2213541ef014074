"""Audit reports over one report model: html, md, json, oscal (Assessment Results) and pdf.

:func:`model.build` computes everything once from a lake; each format is one module that
renders that model and treats every string from a log as hostile (escaped for its format).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jitaudit.report.model import Report

#: the ``--format`` choices of ``jitaudit report``, in the order ``--help`` shows them
FORMATS = ("html", "md", "json", "oscal", "pdf")


def render(report: Report, fmt: str) -> bytes:
    """``report`` in format ``fmt`` (one of :data:`FORMATS`), as the bytes of the file."""
    if fmt == "html":
        from jitaudit.report.html import html

        return html(report).encode("utf-8")
    if fmt == "md":
        from jitaudit.report.markdown import markdown

        return markdown(report).encode("utf-8")
    if fmt == "json":
        from jitaudit.report.json import json_text

        return json_text(report).encode("utf-8")
    if fmt == "oscal":
        from jitaudit.report.oscal import oscal_text

        return oscal_text(report).encode("utf-8")
    if fmt == "pdf":
        from jitaudit.report.pdf import pdf

        return pdf(report)
    raise ValueError(f"unknown report format {fmt!r}; formats are {', '.join(FORMATS)}")
