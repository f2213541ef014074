"""The ``jitaudit`` command: one thin module per command over the library.

Heavy libraries are imported inside each command's ``run`` so that ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from jitaudit import __version__

#: command → module; the order is the order of ``--help`` (ARCHITECTURE §7)
COMMANDS: dict[str, str] = {
    "ingest": "jitaudit.cli.ingest",
    "scan": "jitaudit.cli.scan",
    "report": "jitaudit.cli.report",
    "replay": "jitaudit.cli.replay",
    "sample": "jitaudit.cli.sample",
    "verify": "jitaudit.cli.verify",
    "demo": "jitaudit.cli.demo",
    "dashboard": "jitaudit.cli.dashboard",
}


class UsageError(Exception):
    """A usage or input error: one clear line on stderr, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jitaudit",
        description="Audit and replay just-in-time access of AI agents and non-human identities.",
    )
    parser.add_argument("--version", action="version", version=f"jitaudit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"jitaudit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`jitaudit scan | head`): not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 — flushed at exit, never read
        return 0
    return code


if __name__ == "__main__":
    raise SystemExit(main())
