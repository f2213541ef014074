"""Detection specifications as data: load the YAML cases, build their tables, run, compare.

A spec file ``specs/JIT-xxx.yaml`` is a list of cases::

    - name: use 6 s after expiry
      boundary: grace_seconds          # optional: the parameter(s) whose boundary this pins
      config: {JIT-002: {grace_seconds: 0}}    # optional, as jitaudit.toml's [detections]
      inputs:
        grants: [{credential_id: c1, agent_id: a, issued_at: '2026-03-01 10:00:00', ...}]
        uses:   [{credential_id: c1, event_time: '2026-03-01 11:00:06', action: x, outcome: success}]
      expect: [{credential_id: c1, agent_id: a, task_id: null, events: 1}]
      coverage: {verifiable: 1, unverifiable: 0}   # optional

Rows list only the columns that matter; the rest are NULL, except the lineage defaults below.
A row may carry ``_repeat: {times: N, every_seconds: S}``: it then stands for N rows whose
timestamps advance by S seconds each (for detections that need a history, like JIT-014).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml

from jitaudit import replay
from jitaudit.detections import registry
from jitaudit.detections.runner import Coverage, Finding, run_detection
from jitaudit.lake import view_sql
from jitaudit.schema import TABLES, spec

SPECS = Path(__file__).parent / "specs"
CASE_KEYS = {"name", "boundary", "config", "inputs", "expect", "coverage"}
#: finding fields every expectation states (absent = null: unknown is null, never guessed)
ALWAYS_COMPARED = ("agent_id", "credential_id", "task_id", "events")
OPTIONAL_COMPARED = ("subject", "principal_id", "first_seen", "last_seen", "summary_contains")
INGESTED_AT = datetime(2026, 12, 31)
#: the column a table's event_time defaults to (the instant the row describes)
EVENT_TIME_FROM = {"grants": "issued_at", "tasks": "started_at"}


class SpecError(Exception):
    """A spec case that is malformed (unknown keys, columns or tables)."""


@dataclass(frozen=True)
class Case:
    detection_id: str
    name: str
    inputs: dict[str, list[dict[str, Any]]]
    expect: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, int] | None = None
    boundary: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.detection_id}::{self.name}"

    @property
    def positive(self) -> bool:
        return bool(self.expect)


def load_specs(detection_id: str) -> list[Case]:
    """The cases of one detection's spec file (empty when there is none)."""
    path = SPECS / f"{detection_id}.yaml"
    if not path.exists():
        return []
    raw = yaml.safe_load(path.read_text()) or []
    if not isinstance(raw, list):
        raise SpecError(f"{path.name}: a spec file is a list of cases")
    cases = []
    for item in raw:
        unknown = set(item) - CASE_KEYS
        if unknown or "name" not in item or "expect" not in item:
            raise SpecError(f"{path.name}: case {item.get('name')!r} keys {sorted(item)}")
        boundary = item.get("boundary") or ()
        cases.append(
            Case(
                detection_id=detection_id,
                name=str(item["name"]),
                inputs=dict(item.get("inputs") or {}),
                expect=list(item["expect"] or []),
                config=dict(item.get("config") or {}),
                coverage=item.get("coverage"),
                boundary=(boundary,) if isinstance(boundary, str) else tuple(boundary),
            )
        )
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SpecError(f"{path.name}: duplicate case names {sorted(dupes)}")
    return cases


def all_cases() -> list[Case]:
    return [c for did in registry.load() for c in load_specs(did)]


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def _expand(table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ``_repeat`` unrolled and timestamps parsed."""
    schema = spec(table).schema
    ts_cols = {f.name for f in schema if pa.types.is_timestamp(f.type)}
    out: list[dict[str, Any]] = []
    for row in rows:
        row = dict(row)
        repeat = row.pop("_repeat", None) or {"times": 1, "every_seconds": 0}
        unknown = set(row) - set(schema.names)
        if unknown:
            raise SpecError(f"{table} has no columns {sorted(unknown)}")
        base = {k: (_timestamp(v) if k in ts_cols else v) for k, v in row.items()}
        step = timedelta(seconds=float(repeat["every_seconds"]))
        for i in range(int(repeat["times"])):
            out.append(
                {
                    k: (v + i * step if k in ts_cols and isinstance(v, datetime) else v)
                    for k, v in base.items()
                }
            )
    return out


def _with_lineage(table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill lineage (and the few keys a canonical row cannot lack) the way ingest would."""
    out = []
    for i, row in enumerate(rows, start=1):
        full = {
            "source": "spec",
            "source_file": f"spec/{table}",
            "source_offset": i,
            "event_id": f"{table}-{i}",
            "ingested_at": INGESTED_AT,
            **row,
        }
        if full.get("event_time") is None and table in EVENT_TIME_FROM:
            full["event_time"] = full.get(EVENT_TIME_FROM[table])
        if table == "grants" and full.get("grant_id") is None:
            full["grant_id"] = full.get("credential_id")
        if table == "decisions" and full.get("decision_id") is None:
            full["decision_id"] = full["event_id"]
        out.append(full)
    return out


def connect(inputs: Mapping[str, list[dict[str, Any]]]) -> duckdb.DuckDBPyConnection:
    """An in-memory connection whose canonical views hold exactly ``inputs``, plus replay."""
    unknown = set(inputs) - set(TABLES)
    if unknown:
        raise SpecError(f"unknown tables {sorted(unknown)}")
    con = duckdb.connect()
    # a handful of rows: planning the replay views dominates, and one thread plans faster
    con.execute("SET threads = 1")
    for table, ts in TABLES.items():
        rows = _with_lineage(table, _expand(table, inputs.get(table) or []))
        if not rows:
            con.execute(view_sql(table, []))  # the lake's own view of an empty table
            continue
        data = pa.Table.from_pylist(rows, schema=ts.schema)
        con.register(f"_spec_{table}", data)
        cols = ", ".join(f'"{n}"' for n in ts.schema.names)
        con.execute(
            f'CREATE OR REPLACE VIEW "{table}" AS SELECT {cols}, '
            f'CAST(coalesce("{ts.date_column}", ingested_at) AS DATE) AS event_date '
            f'FROM "_spec_{table}"'
        )
    replay.register(con)
    return con


def run(case: Case) -> tuple[list[Finding], Coverage | None]:
    det = registry.load()[case.detection_id]
    con = connect(case.inputs)
    try:
        return run_detection(con, det, case.config)
    finally:
        con.close()


def observed(finding: Finding, expected: Mapping[str, Any]) -> dict[str, Any]:
    """The finding's fields that ``expected`` is compared on, in the expectation's terms."""
    unknown = set(expected) - set(ALWAYS_COMPARED) - set(OPTIONAL_COMPARED)
    if unknown:
        raise SpecError(f"cannot compare findings on {sorted(unknown)}")
    got: dict[str, Any] = {k: getattr(finding, k) for k in ALWAYS_COMPARED}
    for key in OPTIONAL_COMPARED:
        if key not in expected:
            continue
        if key == "summary_contains":
            got[key] = expected[key] if expected[key] in finding.summary else finding.summary
        else:
            got[key] = getattr(finding, key)
    return got


def normalised(expected: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: expected.get(k) for k in ALWAYS_COMPARED}
    for key in OPTIONAL_COMPARED:
        if key in expected:
            value = expected[key]
            out[key] = _timestamp(value) if key in ("first_seen", "last_seen") else value
    return out


def unmatched(findings: list[Finding], expect: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """Expectations no finding meets, and findings no expectation names (both empty = pass)."""
    left = list(findings)
    missing = []
    for item in expect:
        want = normalised(item)
        hit = next((f for f in left if observed(f, item) == want), None)
        if hit is None:
            missing.append(want)
        else:
            left.remove(hit)
    extra = [{**observed(f, {}), "subject": f.subject, "summary": f.summary} for f in left]
    return missing, extra
