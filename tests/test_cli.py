"""The command line: --help lists the commands, every command is documented, exit codes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jitaudit.cli import COMMANDS, main
from tests.conftest import FIXTURES, ROOT


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jitaudit.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s", out, re.M), command


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in COMMANDS:
        assert f"jitaudit {command}" in readme, command


def test_readme_quickstart_is_the_two_make_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quickstart", 1)[1].split("```", 2)[1]
    commands = [ln.split("#")[0].strip() for ln in block.splitlines()[1:] if ln.strip()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--lake", str(tmp_path / "missing")]) == 2
    assert "no lake at" in capsys.readouterr().err
    (tmp_path / "lake").mkdir()
    assert main(["verify", "--lake", str(tmp_path / "lake")]) == 0
    stray = tmp_path / "lake" / "uses" / "source=x" / "event_date=2026-11-01" / "part-x.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"PAR1")
    assert main(["verify", "--lake", str(tmp_path / "lake")]) == 1
    assert "unlisted  uses/source=x" in capsys.readouterr().out


def test_ingest_of_a_missing_path_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ingest", str(tmp_path / "nope.log"), "--lake", str(tmp_path / "lake")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such file" in err[0]


def test_ingest_leaves_out_a_file_of_unknown_format_with_exit_2_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(FIXTURES / "squid" / "access.log", logs / "access.log")
    (logs / "notes.txt").write_text("hello world\n")
    code = main(["ingest", str(logs), "--lake", str(tmp_path / "lake")])
    out, err = capsys.readouterr()
    assert code == 2
    assert "squid" in out  # the summary of what was ingested
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "1 file not ingested, the rest were" in lines[0]
    assert "notes.txt: unknown log format" in lines[0]
    # the recognised file is in the lake: running again adds nothing and says the same
    assert main(["ingest", str(logs), "--lake", str(tmp_path / "lake")]) == 2
    assert "notes.txt" in capsys.readouterr().err
