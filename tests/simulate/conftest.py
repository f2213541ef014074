"""One small generated organisation shared by the simulator tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from jitaudit.simulate import generate

SCALE = 3_000


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    generate(out, seed=7, scale=SCALE)
    return out
