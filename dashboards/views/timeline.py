"""Timeline: one agent's, task's or credential's grants, uses, decisions and findings."""

from __future__ import annotations

import altair as alt
import cache
import pandas as pd
import streamlit as st

#: drift and denials stand out; decisions and findings in their own hues
COLOURS = {
    "in scope": "#2e7d32",
    "drift": "#d32f2f",
    "denied": "#ef6c00",
    "unverifiable": "#9e9e9e",
    "allowed": "#1565c0",
    "unknown": "#bdbdbd",
    "renewal": "#6a1b9a",
    "critical": "#4a0000",
    "high": "#b71c1c",
    "medium": "#f9a825",
    "low": "#827717",
    "info": "#607d8b",
}

k, a = cache.loaded()
st.title("Timeline")
kinds = ["agent", "task", "credential"]
asked_kind = cache.query("kind")
kind = st.radio(
    "timeline of",
    kinds,
    index=kinds.index(asked_kind) if asked_kind in kinds else 0,
    horizontal=True,
    key="t_kind",
)
keys = cache.timeline_keys(k, kind)
asked = cache.query("key") if asked_kind == kind else None
if asked and asked not in keys:
    keys = [asked, *keys]
picked = st.selectbox(kind, keys, index=keys.index(asked) if asked in keys else 0, key="t_key")
typed = st.text_input(f"or type a {kind} id", key="t_typed")
key = typed.strip() or picked
if not key:
    st.info(f"No {kind} in this lake.")
    st.stop()
t = cache.timeline(k, kind, key)
st.text(f"{kind}: {key}")
if t.empty:
    st.info(f"Nothing recorded for {kind} {key}.")
    st.stop()
st.caption(
    f"{len(t.intervals)} interval(s); {t.uses_shown} of {t.uses_total} use(s) drawn (the most "
    "recent); uses coloured by verdict: in scope, drift (outside the grant's scope), denied, "
    "unverifiable (no grant or unknown scope)."
)
tooltip = ["lane:N", "kind:N", "label:N"]
layers = []
if t.intervals:
    layers.append(
        alt.Chart(pd.DataFrame(list(t.intervals)))
        .mark_bar(height=10, opacity=0.6)
        .encode(
            x=alt.X("start:T", title="time (UTC)"),
            x2="end:T",
            y=alt.Y("lane:N", title=None, axis=alt.Axis(labelLimit=320)),
            color=alt.Color("kind:N", legend=alt.Legend(title="interval")),
            tooltip=[*tooltip, "start:T", "end:T"],
        )
    )
if t.points:
    layers.append(
        alt.Chart(pd.DataFrame(list(t.points)))
        .mark_point(filled=True, size=60)
        .encode(
            x="time:T",
            y=alt.Y("lane:N", title=None, axis=alt.Axis(labelLimit=320)),
            color=alt.Color(
                "category:N",
                legend=alt.Legend(title="event"),
                scale=alt.Scale(domain=list(COLOURS), range=list(COLOURS.values())),
            ),
            shape=alt.Shape("kind:N"),
            tooltip=[*tooltip, "category:N", "time:T"],
        )
    )
st.altair_chart(
    alt.layer(*layers)
    .resolve_scale(color="independent")
    .properties(height=max(200, 24 * len({r["lane"] for r in (*t.intervals, *t.points)}))),
    width="stretch",
)
marked = [p for p in t.points if p["kind"] == "finding"]
if marked:
    st.subheader("Findings on this timeline")
    st.dataframe(marked, hide_index=True)
