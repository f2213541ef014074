"""Run detections on a connection that has the lake and replay views; aggregate into findings.

A detection returns one row per offending event; a finding aggregates them per subject
(``subject`` column: a grant, an agent, or a source and window), keeping every row as evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from jitaudit.detections.evidence import Evidence
from jitaudit.detections.params import render
from jitaudit.detections.registry import Detection

EVIDENCE_LIMIT = 500


def finding_id(detection_id: str, subject: str) -> str:
    """Stable across rescans: a hash of the detection and the subject key only."""
    return "jit-" + hashlib.sha256(f"{detection_id}\0{subject}".encode()).hexdigest()[:24]


@dataclass
class Finding:
    """One finding (ARCHITECTURE §5). Unknown values are None."""

    finding_id: str
    detection_id: str
    title: str
    severity: str
    subject: str
    agent_id: str | None
    principal_id: str | None
    credential_id: str | None
    task_id: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    summary: str
    events: int
    #: rows ``{table, event_id, source, source_file, source_offset}``; a list of them or their
    #: JSON text is taken as well
    evidence: Evidence
    controls: list[dict[str, str]] = field(default_factory=list)
    status: str = "new"
    suppression: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.evidence = Evidence.of(self.evidence)

    def to_json(self) -> dict[str, Any]:
        return {
            "finding_id": self.finding_id,
            "detection_id": self.detection_id,
            "title": self.title,
            "severity": self.severity,
            "agent_id": self.agent_id,
            "principal_id": self.principal_id,
            "credential_id": self.credential_id,
            "task_id": self.task_id,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "summary": self.summary,
            "events": self.events,
            "evidence": list(self.evidence),
            "controls": self.controls,
            "status": self.status,
            "subject": self.subject,
        }


@dataclass
class Coverage:
    """How many subjects a detection could check, and how many it could not (unknown facts)."""

    detection_id: str
    verifiable: int
    unverifiable: int
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "detection_id": self.detection_id,
            "verifiable": self.verifiable,
            "unverifiable": self.unverifiable,
            "note": self.note,
        }


class _SafeDict(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "unknown"


def _summary(det: Detection, row: Mapping[str, Any]) -> str:
    values = _SafeDict({k: ("unknown" if v is None else v) for k, v in row.items()})
    return det.summary.format_map(values).strip()


_AGG = f"""
SELECT subject,
       min(agent_id) AS agent_id, min(principal_id) AS principal_id,
       min(credential_id) AS credential_id, min(task_id) AS task_id,
       min(event_time) AS first_seen, max(event_time) AS last_seen,
       count(*) AS events,
       arg_min(detail, event_time) AS detail,
       to_json(list({{'table': event_table, 'event_id': event_id, 'source': source,
                      'source_file': source_file,
                      'source_offset': CAST(source_offset AS BIGINT)}}
                    ORDER BY event_time, event_id)[1:{EVIDENCE_LIMIT}]) AS evidence
FROM _detection_rows
GROUP BY subject
ORDER BY subject
"""


def _normalise_rows(
    con: duckdb.DuckDBPyConnection, rel: duckdb.DuckDBPyRelation, row_filter: str | None = None
) -> None:
    cols = set(rel.columns)

    def col(name: str, typ: str = "VARCHAR") -> str:
        return (
            f'CAST("{name}" AS {typ}) AS "{name}"'
            if name in cols
            else f'CAST(NULL AS {typ}) AS "{name}"'
        )

    rel.create_view("_detection_raw", replace=True)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _detection_rows AS SELECT DISTINCT "
        + ", ".join(
            [
                col("subject"),
                col("event_table"),
                col("event_id"),
                col("event_time", "TIMESTAMP"),
                col("agent_id"),
                col("principal_id"),
                col("credential_id"),
                col("task_id"),
                col("source"),
                col("source_file"),
                col("source_offset", "BIGINT"),
                col("detail"),
            ]
        )
        # a row without a subject cannot become a finding: the detection must name one
        + " FROM _detection_raw WHERE subject IS NOT NULL"
    )
    if row_filter:
        # applied to the computed rows, so that it cannot reshape the detection's own plan
        con.execute(f"DELETE FROM _detection_rows WHERE NOT coalesce(({row_filter}), FALSE)")


def run_detection(
    con: duckdb.DuckDBPyConnection,
    det: Detection,
    config: Mapping[str, Any],
    row_filter: str | None = None,
    coverage: bool = True,
) -> tuple[list[Finding], Coverage | None]:
    """Findings of one detection, and its coverage figure (None when it declares none).

    ``row_filter`` (SQL over the detection's rows) keeps only the subjects a caller can judge,
    as an incremental scan does; ``coverage=False`` skips the coverage query.
    """
    rel = con.sql(render(det, config))
    _normalise_rows(con, rel, row_filter)
    # through Arrow, with the evidence as DuckDB's JSON text (decoded only when read)
    rows = con.sql(_AGG).to_arrow_table().to_pylist()
    findings: list[Finding] = []
    for row in rows:
        findings.append(
            Finding(
                finding_id=finding_id(det.id, row["subject"]),
                detection_id=det.id,
                title=det.title,
                severity=det.severity,
                subject=row["subject"],
                agent_id=row["agent_id"],
                principal_id=row["principal_id"],
                credential_id=row["credential_id"],
                task_id=row["task_id"],
                first_seen=row["first_seen"],
                last_seen=row["last_seen"],
                summary=_summary(det, row),
                events=int(row["events"]),
                evidence=Evidence(text=row["evidence"]),
            )
        )
    return findings, (coverage_of(con, det, config) if coverage else None)


def coverage_of(
    con: duckdb.DuckDBPyConnection, det: Detection, config: Mapping[str, Any]
) -> Coverage | None:
    """The detection's coverage figure (None when it declares none)."""
    if not det.coverage:
        return None
    got = con.execute(render(det, config, det.coverage)).fetchall()
    verifiable, unverifiable = (int(got[0][0] or 0), int(got[0][1] or 0)) if got else (0, 0)
    return Coverage(det.id, verifiable, unverifiable)
