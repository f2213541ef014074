"""Data behind the dashboard: findings, overview, timeline, controls and sources of a lake.

Every query the dashboard runs lives here; the Streamlit pages only call these functions and
draw what they return. Results are small (aggregates, or one page of rows) so that only they
reach the browser. Strings from logs are returned raw: Streamlit renders them as text.
"""

from __future__ import annotations

from jitaudit.dashboard.data import (
    PAGE_SIZE,
    Audit,
    Detail,
    Filters,
    Overview,
    Page,
    Sources,
    connect,
    control_findings,
    filter_options,
    finding_detail,
    findings,
    load_audit,
    overview,
    sources,
    suppress,
)
from jitaudit.dashboard.timeline import Timeline, timeline, timeline_keys

__all__ = [
    "PAGE_SIZE",
    "Audit",
    "Detail",
    "Filters",
    "Overview",
    "Page",
    "Sources",
    "Timeline",
    "connect",
    "control_findings",
    "filter_options",
    "finding_detail",
    "findings",
    "load_audit",
    "overview",
    "sources",
    "suppress",
    "timeline",
    "timeline_keys",
]
