"""Settings and caches shared by the pages: the DuckDB connection is a resource (each query
takes its own cursor); results are data keyed by the lake's watermark and their arguments."""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import streamlit as st

from jitaudit import dashboard
from jitaudit.lake import Lake, LakeError


@dataclass(frozen=True)
class Key:
    """What the cached results depend on: the lake's content and the suppressions file."""

    root: str
    watermark: int
    suppressions: str
    suppressions_mtime: float


def _arg(name: str) -> str | None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(f"--{name}")
    known, _ = parser.parse_known_args(sys.argv[1:])
    value: str | None = getattr(known, name)
    return value


def key() -> Key:
    root = os.environ.get("JITAUDIT_LAKE") or _arg("lake") or "jitaudit-lake"
    root = str(Path(root).absolute())
    sup = os.environ.get("JITAUDIT_SUPPRESSIONS") or _arg("suppressions") or "suppressions.yaml"
    sup = str(Path(sup).absolute())
    try:
        watermark = Lake(root, create=False).watermark()
    except LakeError:
        watermark = -1
    mtime = Path(sup).stat().st_mtime if Path(sup).exists() else 0.0
    return Key(root, watermark, sup, mtime)


@st.cache_resource(show_spinner="Opening the lake…", max_entries=2)
def connection(root: str, watermark: int) -> duckdb.DuckDBPyConnection | None:
    return dashboard.connect(root)


# a resource, not data: the report model holds the control catalogue, which does not pickle;
# the audit is never mutated after it is built, so sharing one object is safe
@st.cache_resource(show_spinner="Loading findings…", max_entries=4)
def audit(k: Key) -> dashboard.Audit:
    return dashboard.load_audit(k.root, k.suppressions)


@st.cache_data(max_entries=4)
def overview(k: Key) -> dashboard.Overview:
    con = connection(k.root, k.watermark)
    assert con is not None
    return dashboard.overview(con, audit(k))


@st.cache_data(max_entries=64)
def findings(k: Key, filters: dashboard.Filters, page: int) -> dashboard.Page:
    return dashboard.findings(audit(k).findings, filters, page)


@st.cache_data(max_entries=4)
def timeline_keys(k: Key, kind: str) -> list[str]:
    con = connection(k.root, k.watermark)
    keys = dashboard.timeline_keys(con, kind) if con is not None else []
    report = audit(k).report
    if kind == "agent" and report is not None:
        # agents seen only in uses or decisions have no grant, but a timeline all the same
        known = set(keys)
        keys += [a for a in report.scope.agents[:1000] if a not in known]
    return keys


@st.cache_data(max_entries=64)
def timeline(k: Key, kind: str, key_: str) -> dashboard.Timeline:
    con = connection(k.root, k.watermark)
    assert con is not None
    return dashboard.timeline(con, kind, key_, audit(k).findings)


@st.cache_data(max_entries=4)
def sources(k: Key) -> dashboard.Sources:
    con = connection(k.root, k.watermark)
    assert con is not None
    return dashboard.sources(con, audit(k))


def loaded() -> tuple[Key, dashboard.Audit]:
    """The key and audit of the lake; on an empty lake, guidance and a stop."""
    k = key()
    a = audit(k)
    # the cold load happens once, on whichever page is opened first: the audit and the
    # connection (grants and tasks replayed); after it, a page computes only its own data
    connection(k.root, k.watermark)
    if a.empty:
        st.info(a.guidance or "No data.")
        st.stop()
    if a.stale:
        st.warning(
            "The lake has data newer than the last scan: run `jitaudit scan --lake "
            f"{k.root}` to refresh the findings."
        )
    return k, a


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~$:])")


def label(text: str) -> str:
    """A log string made literal for the places Streamlit reads as Markdown (link labels)."""
    return _MARKDOWN.sub(r"\\\1", text)


def query(name: str) -> str | None:
    value = st.query_params.get(name)
    return str(value) if value else None
