"""The HTML report in headless Chromium, offline: it requests nothing, and its charts and
executive summary are visible (a screenshot is taken)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jitaudit.report import model

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def test_html_report_renders_offline_with_charts(
    html_file: Path, full_report: model.Report, tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (CI installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    url = html_file.as_uri()
    attempted: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()

            def block(route: object) -> None:
                request = route.request  # type: ignore[attr-defined]
                if request.url != url:
                    attempted.append(request.url)
                    route.abort()  # type: ignore[attr-defined]
                else:
                    route.continue_()  # type: ignore[attr-defined]

            context.route("**/*", block)
            page.on("request", lambda r: None if r.url == url else attempted.append(r.url))
            page.goto(url, wait_until="load")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            charts = page.locator("figure.chart svg")
            assert charts.count() == 3
            for i in range(charts.count()):
                chart = charts.nth(i)
                assert chart.is_visible()
                box = chart.bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 50
                assert chart.locator("path, rect").count() > 0  # bars were drawn
            body = page.inner_text("body")
            assert "Executive summary" in body
            assert full_report.summary[0] in body
        finally:
            browser.close()
    assert attempted == []
    assert shot.stat().st_size > 10_000
    # PNG signature: a real screenshot
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
