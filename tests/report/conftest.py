"""Report fixtures: the sample data ingested (whole, and without its gcp and otel logs), a
lake of hostile strings, and each lake's report model built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from jitaudit.lake import Lake
from jitaudit.report import model
from tests.e2e.conftest import SAMPLE, ingested, log_dirs
from tests.report.hostile import write_log

#: sources whose absence the "not assessable" test simulates
MISSING_SOURCES = ("gcp", "otel")


@pytest.fixture(scope="session")
def full_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return ingested(log_dirs(SAMPLE), tmp_path_factory.mktemp("report-full") / "lake")


@pytest.fixture(scope="session")
def partial_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    dirs = [d for d in log_dirs(SAMPLE) if d.name not in MISSING_SOURCES]
    return ingested(dirs, tmp_path_factory.mktemp("report-partial") / "lake")


@pytest.fixture(scope="session")
def hostile_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("report-hostile")
    log = write_log(root / "logs" / "envoy")
    return ingested([log.parent], root / "lake")


@pytest.fixture(scope="session")
def full_report(full_lake: Lake) -> model.Report:
    return model.build(full_lake)


@pytest.fixture(scope="session")
def partial_report(partial_lake: Lake) -> model.Report:
    return model.build(partial_lake)


@pytest.fixture(scope="session")
def hostile_report(hostile_lake: Lake) -> model.Report:
    return model.build(hostile_lake)


@pytest.fixture(scope="session")
def html_file(full_report: model.Report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from jitaudit.report.html import html

    path = tmp_path_factory.mktemp("report-html") / "report.html"
    path.write_text(html(full_report), encoding="utf-8")
    return path
