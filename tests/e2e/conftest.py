"""End-to-end fixtures: the committed sample data and a second simulated seed, ingested."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import pytest

from jitaudit.detections.runner import Finding
from jitaudit.ingest import ingest
from jitaudit.lake import Lake
from jitaudit.simulate import generate
from tests.conftest import ROOT

SAMPLE = ROOT / "sample_data"
SECOND_SEED = 2
SECOND_SCALE = 3000


def log_dirs(root: Path) -> list[Path]:
    """The simulator's log directories (not its README and ground-truth files)."""
    return sorted(p for p in root.iterdir() if p.is_dir())


def log_files(root: Path) -> list[Path]:
    return sorted(f for d in log_dirs(root) for f in d.rglob("*") if f.is_file())


Key = tuple[str, str | None, str | None, str | None, str | None]


def expected(root: Path) -> set[Key]:
    """Ground truth keys: detection, agent, credential, task; per-source findings (no agent)
    are told apart by the source their `why` names."""
    with (root / "expected_findings.csv").open() as fh:
        return {
            (
                r["detection_id"],
                r["agent_id"] or None,
                r["credential_id"] or None,
                r["task_id"] or None,
                None if r["agent_id"] else r["why"].split(":", 1)[0],
            )
            for r in csv.DictReader(fh)
        }


def finding_key(f: Finding) -> Key:
    source = (
        f.subject.split("|", 1)[0][len("source:") :] if f.subject.startswith("source:") else None
    )
    return (f.detection_id, f.agent_id, f.credential_id, f.task_id, source)


def ingested(paths: Iterable[Path], lake_root: Path) -> Lake:
    lake = Lake(lake_root)
    ingest(list(paths), lake)
    return lake


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return ingested(log_dirs(SAMPLE), tmp_path_factory.mktemp("sample") / "lake")


@pytest.fixture(scope="session")
def second_seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Lake]:
    root = tmp_path_factory.mktemp("seed2")
    generate(root / "logs", seed=SECOND_SEED, scale=SECOND_SCALE)
    return root / "logs", ingested(log_dirs(root / "logs"), root / "lake")
