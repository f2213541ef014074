"""Controls: per framework, the report's control states, with drill-down to findings."""

from __future__ import annotations

import cache
import streamlit as st

from jitaudit import dashboard

k, a = cache.loaded()
assert a.report is not None
st.title("Controls")
st.caption(
    "gap evidenced: a mapped detection has a new or open finding · no gap found: some mapped "
    "detection verified a subject and found nothing · not assessable: none could verify any "
    "subject on these sources. No state says a control is met."
)
sections = {s.framework.id: s for s in a.report.frameworks}
fw_id = st.selectbox(
    "framework",
    list(sections),
    format_func=lambda i: f"{sections[i].framework.name} {sections[i].framework.version}",
    key="c_fw",
)
section = sections[fw_id]
cols = st.columns(3)
for col, state in zip(cols, ("gap evidenced", "no gap found", "not assessable"), strict=True):
    col.metric(state, section.count(state))
st.dataframe(
    [
        {
            "control": c.control_id,
            "title": c.title,
            "state": c.state,
            "active findings": c.active_findings,
            "detections": ", ".join(c.detections),
            "reason": c.reason,
        }
        for c in section.controls
    ],
    hide_index=True,
)
ids = [c.control_id for c in section.controls]
asked = cache.query("control")
cid = st.selectbox("control", ids, index=ids.index(asked) if asked in ids else 0, key="c_control")
rows = dashboard.control_findings(a.findings, fw_id, cid)
st.subheader(f"Findings evidencing a gap in {fw_id} {cid}")
if rows:
    st.dataframe(list(rows), hide_index=True)
    st.page_link(
        "views/findings.py",
        label=f"{len(rows)} finding(s) in Findings →",
        query_params={"control": f"{fw_id} {cid}"},
    )
else:
    st.text("none")
