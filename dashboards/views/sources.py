"""Sources: volume over time, delivery delay, silent windows, quarantine reasons."""

from __future__ import annotations

import altair as alt
import cache
import pandas as pd
import streamlit as st

k, a = cache.loaded()
s = cache.sources(k)
st.title("Sources")
st.dataframe(
    [
        {
            "source": src,
            "records": n,
            "first event": first,
            "last event": last,
            "p95 delay (s)": p95,
            "max delay (s)": mx,
            "quarantined": q,
        }
        for src, n, first, last, p95, mx, q in s.summary
    ],
    hide_index=True,
)
st.subheader("Volume per hour")
volume = [{"source": src, "hour": h, "records": n} for src, h, n in s.volume]
if volume:
    st.altair_chart(
        alt.Chart(pd.DataFrame(volume))
        .mark_line(point=True)
        .encode(
            x="hour:T", y="records:Q", color="source:N", tooltip=["source:N", "hour:T", "records:Q"]
        ),
        width="stretch",
    )
st.subheader("Delivery delay (p95 per hour)")
delay = [{"source": src, "hour": h, "p95 delay (s)": d} for src, h, d in s.delay]
if delay:
    st.altair_chart(
        alt.Chart(pd.DataFrame(delay))
        .mark_line(point=True)
        .encode(x="hour:T", y="p95 delay (s):Q", color="source:N"),
        width="stretch",
    )
else:
    st.text("No source records its delivery time.")
st.subheader("Late deliveries and silent windows (JIT-014)")
if s.silent:
    st.dataframe([{"source": src, "finding": t} for src, t in s.silent], hide_index=True)
else:
    st.text("none found")
st.subheader("Quarantine reasons")
if s.quarantine:
    st.dataframe(
        [{"source": src, "reason": r, "records": n} for src, r, n in s.quarantine],
        hide_index=True,
    )
else:
    st.text("No record was quarantined.")
