"""Dashboard: first render of Overview and Timeline on a 10M-use lake, after the cold load.

Builds the same synthetic lake as ``bench_scan`` (JITAUDIT_BENCH_USES scales it) and persists
one scan, as a scheduled ``jitaudit scan`` would. The cold load is what the dashboard does once
per lake version: open the connection (grants, tasks and delegations replayed into tables) and
load the audit (the persisted findings and the report model). After it, the first render of a
page computes that page's data from the cached connection and audit: timed both through the
library and through Streamlit's AppTest (the whole page script, charts included).
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.bench_scan import GRANTS, USES, _commit
from benchmarks.harness import Result, timed
from jitaudit import dashboard
from jitaudit.lake import Lake
from jitaudit.scan import scan

APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
TARGET_S = 2.0


def _page(name: str, **query: str) -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=600)
    for k, v in query.items():
        at.query_params[k] = v
    seconds, _ = timed(lambda: at.switch_page(f"views/{name}.py").run())
    if at.exception:
        raise RuntimeError(f"{name}: {at.exception[0].value}")
    return seconds


def run(workdir: Path) -> list[Result]:
    lake = Lake(workdir / "lake")
    build, _ = timed(lambda: _commit(lake, "base", (0, GRANTS), (0, USES)))
    scan_s, _ = timed(lambda: scan(lake))
    root = str(lake.root)
    connect_s, con = timed(lambda: dashboard.connect(root))
    audit_s, audit = timed(lambda: dashboard.load_audit(root))
    assert con is not None
    overview_s, _ = timed(lambda: dashboard.overview(con, audit))
    agent = dashboard.timeline_keys(con, "agent", limit=1)[0]
    timeline_s, t = timed(lambda: dashboard.timeline(con, "agent", agent, audit.findings))
    cred = dashboard.timeline_keys(con, "credential", limit=1)[0]
    cred_s, _ = timed(lambda: dashboard.timeline(con, "credential", cred, audit.findings))
    con.close()

    # the app: the first page run pays the cold load, the next ones only their own data
    os.environ["JITAUDIT_LAKE"] = root
    os.environ["JITAUDIT_SUPPRESSIONS"] = str(workdir / "suppressions.yaml")
    cold_s = _page("findings")
    app_overview = _page("overview")
    app_timeline = _page("timeline", kind="agent", key=agent)
    return [
        Result(f"lake built: {USES:,} uses, {GRANTS:,} grants", build, "s"),
        Result("scan persisted (setup, not the dashboard)", scan_s, "s"),
        Result("cold: connection (grants, tasks replayed)", connect_s, "s"),
        Result("cold: audit (persisted findings + report model)", audit_s, "s"),
        Result("cold: first page run in the app (Findings)", cold_s, "s"),
        Result("Overview data after the cold load", overview_s, "s"),
        Result(
            "Overview first render after the cold load (app)",
            app_overview,
            "s",
            f"< {TARGET_S:g} s",
            app_overview < TARGET_S,
        ),
        Result(f"Timeline data, agent ({t.uses_total:,} uses)", timeline_s, "s"),
        Result("Timeline data, credential", cred_s, "s"),
        Result(
            "Timeline first render after the cold load (app)",
            app_timeline,
            "s",
            f"< {TARGET_S:g} s",
            app_timeline < TARGET_S,
        ),
    ]
