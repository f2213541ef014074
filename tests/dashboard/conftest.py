"""Dashboard fixtures: the sample data ingested, an empty lake, a lake of hostile strings, and
AppTest runs of the router with the lake and suppressions file set through the environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from jitaudit.lake import Lake
from tests.conftest import ROOT
from tests.e2e.conftest import SAMPLE, ingested, log_dirs
from tests.report.hostile import write_log

APP = ROOT / "dashboards" / "app.py"
PAGES = ("overview", "findings", "timeline", "controls", "sources")


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return ingested(log_dirs(SAMPLE), tmp_path_factory.mktemp("dash-sample") / "lake")


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("dash-hostile")
    log = write_log(root / "logs" / "envoy")
    return ingested([log.parent], root / "lake")


@pytest.fixture
def empty(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "empty-lake")


Open = Callable[..., AppTest]


@pytest.fixture
def open_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Open:
    """``open_app(lake, page, **query)``: the app run on ``page`` of ``lake`` (a lake or a
    directory that may not exist)."""

    def run(lake: Lake | Path, page: str = "overview", **query: str) -> AppTest:
        monkeypatch.setenv("JITAUDIT_LAKE", str(lake if isinstance(lake, Path) else lake.root))
        monkeypatch.setenv("JITAUDIT_SUPPRESSIONS", str(tmp_path / "suppressions.yaml"))
        at = AppTest.from_file(str(APP), default_timeout=120)
        for k, v in query.items():
            at.query_params[k] = v
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run
