"""Options and helpers shared by the commands, defined once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from jitaudit.lake import DEFAULT_LAKE


def add_lake(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lake",
        type=Path,
        default=DEFAULT_LAKE,
        metavar="DIR",
        help=f"lake directory (default: ./{DEFAULT_LAKE})",
    )


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def progress(args: argparse.Namespace) -> Callable[[str], None] | None:
    """A progress printer for stderr when it is a terminal and --quiet was not given."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None

    def say(message: str) -> None:
        print(f"  … {message}", file=sys.stderr, flush=True)

    return say
