"""The dashboard in headless Chromium: served by ``streamlit run`` on a free localhost port,
every page shows its key text (screenshots are saved), and a ``<script>`` planted in an agent
id is shown as text, never run."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from jitaudit.cli.dashboard import command
from jitaudit.lake import Lake
from tests.report.hostile import SCRIPT
from tests.report.test_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.browser

#: page → (text it must show once rendered, the last of the page; Altair charts it draws)
KEY_TEXT = {
    "overview": ("sources in detail", 3),
    "findings": ("Suppress this finding", 0),
    "timeline": ("uses coloured by verdict", 1),
    "controls": ("Findings evidencing a gap", 0),
    "sources": ("Quarantine reasons", 2),
}
#: true once the script has finished running (the status widget shows while it runs)
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(lake: Lake, tmp: Path, timeout: float = 60) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "JITAUDIT_LAKE": str(lake.root),
        "JITAUDIT_SUPPRESSIONS": str(tmp / "suppressions.yaml"),
    }
    log = (tmp / f"streamlit-{port}.log").open("w")
    proc = subprocess.Popen(
        command("127.0.0.1", port), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dashboard did not start: {(tmp / log.name).read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (CI installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def test_every_page_in_chromium(sample: Lake, browser: object, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with served(sample, tmp_path) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        # Vega warns of an infinite extent when a chart was given no rows: an empty chart
        warnings: list[str] = []
        page.on("console", lambda m: warnings.append(m.text))
        for name, (text, n_charts) in KEY_TEXT.items():
            # the default page is served at the root
            page.goto(f"{url}/{'' if name == 'overview' else name}", wait_until="domcontentloaded")
            page.get_by_text(text).first.wait_for(state="visible", timeout=60_000)
            page.wait_for_function(IDLE, timeout=60_000)
            charts = page.locator("[data-testid='stVegaLiteChart']")
            if n_charts:
                charts.nth(n_charts - 1).wait_for(state="attached", timeout=60_000)
            assert charts.count() == n_charts, name
            for i in range(n_charts):
                drawn = charts.nth(i).locator("canvas, svg").first
                drawn.scroll_into_view_if_needed()
                drawn.wait_for(state="visible", timeout=30_000)
            assert not [w for w in warnings if "Infinite extent" in w], (name, warnings)
            warnings.clear()
            page.wait_for_timeout(500)
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            assert page.locator("[data-testid='stException']").count() == 0, name
            assert page.get_by_text("Page not found").count() == 0, name
            nav = page.locator("[data-testid='stSidebarNav']")
            assert "Overview" in nav.inner_text() and "app" not in nav.inner_text().split()
    assert len(list(shots.glob("*.png"))) == len(KEY_TEXT)


def test_a_planted_script_shows_as_text(hostile: Lake, browser: object, tmp_path: Path) -> None:
    dialogs: list[str] = []
    with served(hostile, tmp_path) as url:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{url}/timeline?kind=agent&key={quote(SCRIPT)}", wait_until="domcontentloaded")
        shown = page.get_by_text(f"agent: {SCRIPT}", exact=True)
        shown.wait_for(state="visible", timeout=60_000)
        page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
        assert shown.is_visible()
        assert page.locator("script", has_text="alert(1)").count() == 0
    assert dialogs == []
