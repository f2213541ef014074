"""Findings: filter, page through, open one (evidence, controls, remediation), suppress it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cache
import streamlit as st

from jitaudit import dashboard

k, a = cache.loaded()
st.title("Findings")
opts = dashboard.filter_options(a.findings)


def picked(name: str) -> list[str]:
    value = cache.query(name)
    return [value] if value and value in opts[name] else []


c = st.columns(5)
sev = c[0].multiselect("severity", opts["severity"], default=picked("severity"), key="f_sev")
det = c[1].multiselect("detection", opts["detection"], default=picked("detection"), key="f_det")
agent = c[2].multiselect("agent", opts["agent"], default=picked("agent"), key="f_agent")
ctrl = c[3].multiselect("control", opts["control"], default=picked("control"), key="f_ctrl")
status = c[4].multiselect("status", opts["status"], default=picked("status"), key="f_status")
days = sorted({t.date() for f in a.findings for t in (f.first_seen, f.last_seen) if t is not None})
start = end = None
if days:
    span = st.date_input(
        "seen between", (days[0], days[-1]), min_value=days[0], max_value=days[-1], key="f_when"
    )
    if isinstance(span, tuple) and len(span) == 2:
        start, end = span
filters = dashboard.Filters(
    tuple(sev), tuple(det), tuple(agent), tuple(ctrl), tuple(status), start, end
)
page_no = st.number_input("page", min_value=1, value=1, step=1, key="f_page")
page = cache.findings(k, filters, int(page_no) - 1)
st.caption(f"{page.total} finding(s) · page {page.page + 1} of {page.pages}")
st.dataframe(list(page.rows), hide_index=True)
if not page.rows:
    st.stop()

ids = [r["finding_id"] for r in page.rows]
wanted = cache.query("finding")
choice = st.selectbox(
    "finding",
    ids,
    index=ids.index(wanted) if wanted in ids else 0,
    format_func=lambda i: next(
        f"{r['detection']} · {r['summary']}"[:120] for r in page.rows if r["finding_id"] == i
    ),
    key="f_pick",
)
detail = dashboard.finding_detail(a.findings, choice)
if detail is None:
    st.stop()
f = detail.finding
st.subheader(f"{f.detection_id} — {f.title}")
st.text(f.summary)
st.text(
    f"severity {f.severity} · status {f.status} · agent {f.agent_id} · credential "
    f"{f.credential_id} · task {f.task_id} · {f.first_seen} → {f.last_seen} · {f.events} event(s)"
)
if f.suppression:
    st.text(
        f"suppressed by {f.suppression['owner']} until {f.suppression['expires']}: "
        f"{f.suppression['reason']}"
    )
st.markdown("**Evidence** (table, event, source file and offset of each row)")
st.dataframe(list(detail.evidence), hide_index=True)
st.markdown("**Controls whose gap this evidences**")
st.dataframe(list(detail.controls), hide_index=True)
st.markdown("**Remediation**")
st.text(detail.remediation or "—")
for kind in ("agent", "credential", "task"):
    value = getattr(f, f"{kind}_id")
    if value:
        st.page_link(
            "views/timeline.py",
            label=f"{kind} timeline →",
            query_params={"kind": kind, "key": value},
        )

with st.form("suppress"):
    st.markdown("**Suppress this finding**")
    owner = st.text_input("owner", key="s_owner")
    reason = st.text_input("reason", key="s_reason")
    expires = st.date_input(
        "expires", datetime.now(UTC).date() + timedelta(days=30), key="s_expires"
    )
    match = st.selectbox(
        "match on",
        [m for m in ("finding_id", "agent_id", "credential_id", "task_id") if getattr(f, m)],
        key="s_match",
    )
    if st.form_submit_button("Suppress"):
        try:
            entry = dashboard.suppress(Path(k.suppressions), f, owner, reason, expires, match)
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.success(f"Suppression written to {k.suppressions} (expires {entry.expires}).")
