"""Report charts: Altair specs rendered to SVG by vl-convert (no browser, no network)."""

from __future__ import annotations

from typing import Any

from jitaudit.report.model import Report

#: agents shown in the per-agent chart (the table lists them all)
TOP_AGENTS = 20


def _svg(spec: dict[str, Any]) -> str:
    import vl_convert as vlc

    svg: str = vlc.vegalite_to_svg(spec)
    return svg


def exposure_by_agent(report: Report) -> str | None:
    import altair as alt

    rows = [
        {"agent": a.agent_id or "(unknown agent)", "hours": round(a.privilege_hours, 2)}
        for a in report.exposure.per_agent
        if a.privilege_hours > 0
    ][:TOP_AGENTS]
    if not rows:
        return None
    chart = (
        alt.Chart({"values": rows})
        .mark_bar(color="#3b6ea5")
        .encode(
            x=alt.X("hours:Q", title="privilege-hours"),
            y=alt.Y("agent:N", sort="-x", title=None),
            tooltip=["agent:N", "hours:Q"],
        )
        .properties(width=520, title="Privilege-hours per agent")
    )
    return _svg(chart.to_dict())


def exposure_by_day(report: Report) -> str | None:
    import altair as alt

    rows = [{"day": d.isoformat(), "hours": round(h, 2)} for d, h in report.exposure.per_day]
    if not rows:
        return None
    chart = (
        alt.Chart({"values": rows})
        .mark_bar(color="#a5603b")
        .encode(
            x=alt.X("day:O", title="day (UTC)"),
            y=alt.Y("hours:Q", title="privilege-hours"),
        )
        .properties(width=520, height=200, title="Privilege-hours per day")
    )
    return _svg(chart.to_dict())


def control_states(report: Report) -> str | None:
    import altair as alt

    rows = [
        {"framework": sec.framework.id, "state": state, "controls": sec.count(state)}
        for sec in report.frameworks
        for state in ("gap evidenced", "no gap found", "not assessable")
        if sec.count(state)
    ]
    if not rows:
        return None
    chart = (
        alt.Chart({"values": rows})
        .mark_bar()
        .encode(
            x=alt.X("controls:Q", stack="zero", title="controls"),
            y=alt.Y("framework:N", title=None),
            color=alt.Color(
                "state:N",
                scale=alt.Scale(
                    domain=["gap evidenced", "no gap found", "not assessable"],
                    range=["#c0392b", "#2e8b57", "#999999"],
                ),
            ),
        )
        .properties(width=520, title="Control states per framework")
    )
    return _svg(chart.to_dict())
