"""The report as PDF: the HTML report laid out by WeasyPrint, with every URL fetch refused."""

from __future__ import annotations

from typing import Any, NoReturn

from jitaudit.report.html import html
from jitaudit.report.model import Report

PAGE_CSS = "@page{size:A4;margin:15mm}body{max-width:none;margin:0;font-size:10px}"


class PdfUnavailable(RuntimeError):
    """WeasyPrint (the ``report`` extra) or its system libraries are missing."""


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    # the HTML report references nothing external; refuse anything that would still be fetched
    raise ValueError(f"the PDF report fetches nothing (refused {url[:80]!r})")


def pdf(report: Report) -> bytes:
    try:
        from weasyprint import CSS, HTML
    except (ImportError, OSError) as exc:
        raise PdfUnavailable(
            "PDF reports need WeasyPrint: pip install 'jitaudit[report]' "
            f"(and the system's pango) — {exc}"
        ) from None
    doc = HTML(string=html(report), url_fetcher=_no_fetch)
    out: bytes = doc.write_pdf(stylesheets=[CSS(string=PAGE_CSS)])
    return out
