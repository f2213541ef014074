"""``jitaudit dashboard``: serve the Streamlit dashboard over a lake (localhost by default)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from jitaudit.cli.common import add_lake

#: the router script: beside the package in a checkout or an editable install
APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "dashboard",
        help="serve the dashboard over a lake",
        description="Serve the Streamlit dashboard (overview, findings, timeline, controls, "
        "sources) over a lake, read-only; suppressions are written to --suppressions.",
    )
    add_lake(p)
    add_serve_options(p)
    p.set_defaults(func=run)


def add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address", default="127.0.0.1", help="address to bind (default: 127.0.0.1, localhost)"
    )
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default: 8501)")
    p.add_argument(
        "--suppressions",
        type=Path,
        default=Path("suppressions.yaml"),
        metavar="FILE",
        help="suppressions file the dashboard writes (default: ./suppressions.yaml)",
    )


def command(address: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]


def serve(lake: Path, address: str, port: int, suppressions: Path) -> int:
    """Run the dashboard until interrupted (Ctrl-C)."""
    from jitaudit.cli import UsageError

    if not APP.exists():
        raise UsageError(f"dashboard app not found at {APP} (install from a checkout)")
    env = {
        **os.environ,
        "JITAUDIT_LAKE": str(lake.absolute()),
        "JITAUDIT_SUPPRESSIONS": str(suppressions.absolute()),
    }
    print(f"[dashboard] serving {lake.absolute()} at http://{address}:{port} (Ctrl-C to stop)")
    proc = subprocess.Popen(command(address, port), env=env)
    # a terminated `jitaudit dashboard` takes its server down with it
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run(args: argparse.Namespace) -> int:
    return serve(args.lake, args.address, args.port, args.suppressions)
