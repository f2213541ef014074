"""Overview: open findings, their trend, standing privilege, decision coverage, freshness."""

from __future__ import annotations

import altair as alt
import cache
import pandas as pd
import streamlit as st

k, a = cache.loaded()
o = cache.overview(k)
st.title("Overview")
for line in o.summary:
    st.text(line)

st.subheader("Open findings by severity")
cols = st.columns(max(len(o.by_severity), 1))
for col, (sev, n) in zip(cols, o.by_severity, strict=False):
    col.metric(sev, n)
    col.page_link(
        "views/findings.py", label=f"{n} {sev} →", query_params={"severity": sev, "status": "open"}
    )
if not o.by_severity:
    st.success("No new or open findings.")

left, right = st.columns(2)
with left:
    st.subheader("By detection")
    rows = [{"detection": d, "title": t, "findings": n} for d, t, n in o.by_detection]
    if rows:
        st.altair_chart(
            alt.Chart(pd.DataFrame(rows))
            .mark_bar()
            .encode(
                x=alt.X("findings:Q"),
                y=alt.Y("detection:N", sort="-x"),
                tooltip=["detection:N", "title:N", "findings:Q"],
            ),
            width="stretch",
        )
        for d, t, n in o.by_detection:
            st.page_link(
                "views/findings.py", label=f"{d}: {n} — {t}", query_params={"detection": d}
            )
with right:
    st.subheader("Trend (first seen per day)")
    trend = [{"day": d, "severity": s, "findings": n} for d, s, n in o.trend]
    if trend:
        st.altair_chart(
            alt.Chart(pd.DataFrame(trend))
            .mark_bar()
            .encode(
                x=alt.X("day:T", timeUnit="yearmonthdate"),
                y="findings:Q",
                color="severity:N",
                tooltip=["day:T", "severity:N", "findings:Q"],
            ),
            width="stretch",
        )

st.subheader("Standing privilege")
c1, c2, c3 = st.columns(3)
c1.metric("privilege-hours", f"{o.privilege_hours:,.1f}")
c2.metric("grants measured", f"{o.measured_grants} / {o.grants}")
c3.page_link("views/controls.py", label="controls affected →")
per_day = [{"day": d, "privilege_hours": h} for d, h in o.exposure_per_day]
if per_day:
    st.altair_chart(
        alt.Chart(pd.DataFrame(per_day))
        .mark_bar()
        .encode(x="day:T", y="privilege_hours:Q", tooltip=["day:T", "privilege_hours:Q"]),
        width="stretch",
    )
for agent, hours in o.top_agents:
    st.page_link(
        "views/timeline.py",
        label=f"{cache.label(agent)}: {hours:,.1f} privilege-hours",
        query_params={"kind": "agent", "key": agent},
    )

st.subheader("Decision coverage")
d1, d2 = st.columns(2)
d1.metric("grants with an approval decision", f"{o.grants_with_decision} / {o.grants}")
d2.metric("uses with a policy decision", f"{o.uses_with_decision} / {o.uses}")
# the details behind the two figures: ungoverned uses and delegated use without a decision
d1.page_link(
    "views/findings.py",
    label="delegation without re-authorisation →",
    query_params={"detection": "JIT-010"},
)
d2.page_link(
    "views/findings.py",
    label="uses without an allowing decision →",
    query_params={"detection": "JIT-011"},
)

st.subheader("Sources' freshness")
st.dataframe(
    [
        {"source": s, "last event": last, "hours behind newest": behind, "p95 delay (s)": p95}
        for s, last, behind, p95 in o.freshness
    ],
    hide_index=True,
)
st.page_link("views/sources.py", label="sources in detail →")
