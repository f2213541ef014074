"""The report as one JSON document: the model as data (log strings stay data, unescaped)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from typing import Any

from jitaudit.output.records import finding_record
from jitaudit.report.model import Report

SCHEMA_VERSION = 1


def _data(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_data(v) for v in value]
    return value


def document(report: Report) -> dict[str, Any]:
    """The JSON-ready report: scope, summary, control states per framework, detections,
    findings (ARCHITECTURE §5 records), exposure, completeness, method, limits, stamp."""
    s, e, c = report.scope, report.exposure, report.completeness
    doc: dict[str, Any] = _data(
        {
            "report_version": SCHEMA_VERSION,
            "title": report.title,
            "framework_filter": report.framework_filter,
            "scope": dataclasses.asdict(s),
            "executive_summary": list(report.summary),
            "frameworks": [
                {
                    "id": sec.framework.id,
                    "name": sec.framework.name,
                    "version": sec.framework.version,
                    "source_url": sec.framework.source_url,
                    "counts": {
                        st: sec.count(st)
                        for st in ("gap evidenced", "no gap found", "not assessable")
                    },
                    "controls": [dataclasses.asdict(ctl) for ctl in sec.controls],
                }
                for sec in report.frameworks
            ],
            "detections": [dataclasses.asdict(d) for d in report.detections],
            "findings": [finding_record(f) for f in report.findings],
            "exposure": {
                "total_privilege_hours": round(e.total_hours, 3),
                "grants": e.grants,
                "measured_grants": e.measured_grants,
                "unknown_scope": e.unknown_scope,
                "unknown_expiry": e.unknown_expiry,
                "per_agent": [dataclasses.asdict(a) for a in e.per_agent],
                "per_day": [{"day": d, "privilege_hours": round(h, 3)} for d, h in e.per_day],
            },
            "completeness": {
                "sources": [dataclasses.asdict(src) for src in c.sources],
                "quarantine": [
                    {"source": src, "reason": reason, "records": n}
                    for src, reason, n in c.quarantine
                ],
            },
            "method": list(report.method),
            "limits": list(report.limits),
            "stamp": dataclasses.asdict(report.stamp),
        }
    )
    return doc


def json_text(report: Report) -> str:
    return json.dumps(document(report), indent=2, ensure_ascii=False) + "\n"
