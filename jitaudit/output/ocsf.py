"""Findings as OCSF Detection Findings (class 2004), for SIEMs and security data lakes.

The output is one JSON array with one Detection Finding object per line, so it is a single
valid JSON document and still greps line by line (``jq -c '.[]'`` turns it into JSON lines).
It validates against the OCSF schema version :data:`OCSF_VERSION` (tests use pydantic-ocsf).

Mapping: ``finding_id`` → ``finding_info.uid``; the detection → ``finding_info.analytic``
(a rule); the summary → ``finding_info.desc`` and ``message``; ``first_seen``/``last_seen`` →
``finding_info.first_seen_time``/``last_seen_time`` and ``start_time``/``end_time``;
``time`` = last_seen (the scan time when unknown), epoch milliseconds; status new/open/
suppressed/resolved → New/In Progress/Suppressed/Resolved, and activity Create/Update/Update/
Close. The credential, task or agent a finding is about are ``resources`` (a credential's
``owner`` is the agent, as a service account user). The event-level ``actor`` is not set: a
finding may span several agents' events (a shared credential) and its evidence lineage does not
say which agent logged each event. Each evidence lineage entry is one ``evidences`` item
(``uid`` = event id, ``name`` = table, ``data`` = source, file and offset). What OCSF has no
attribute for (subject key, controls, suppression) is under ``unmapped``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jitaudit import __version__
from jitaudit.output.records import nulls_for_blanks

if TYPE_CHECKING:
    from jitaudit.detections.runner import Finding
    from jitaudit.scan import ScanResult

OCSF_VERSION = "1.7.0"
CLASS_UID = 2004
CATEGORY_UID = 2
SEVERITY_IDS = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
SEVERITY_NAMES = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
#: finding status → (status_id, status, activity_id, activity_name)
STATUSES = {
    "new": (1, "New", 1, "Create"),
    "open": (2, "In Progress", 2, "Update"),
    "suppressed": (3, "Suppressed", 2, "Update"),
    "resolved": (4, "Resolved", 3, "Close"),
}
PRODUCT = {"name": "jitaudit", "vendor_name": "jitaudit", "version": __version__}
_EPOCH = datetime(1970, 1, 1)


def epoch_ms(ts: datetime) -> int:
    """Epoch milliseconds of ``ts`` (naive timestamps are UTC, as everywhere in the lake)."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return (ts - _EPOCH) // timedelta(milliseconds=1)


def _identity(f: Finding) -> dict[str, Any] | None:
    if f.agent_id is None and f.principal_id is None:
        return None
    user: dict[str, Any] = {
        "uid": f.principal_id or f.agent_id,
        "name": f.agent_id,
        "type_id": 4,
        "type": "Service",
    }
    if f.credential_id is not None:
        user["credential_uid"] = f.credential_id
    return user


def _resources(f: Finding) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    owner = _identity(f)
    if f.credential_id is not None:
        cred: dict[str, Any] = {"type": "credential", "uid": f.credential_id}
        if owner is not None:
            cred["owner"] = owner
        out.append(cred)
    elif f.agent_id is not None:
        out.append({"type": "agent", "uid": f.agent_id, "name": f.agent_id})
    if f.task_id is not None:
        out.append({"type": "task", "uid": f.task_id})
    if not out:  # a source and time window (audit-log delay)
        out.append({"type": "log source", "uid": f.subject})
    return out


def _evidences(f: Finding) -> list[dict[str, Any]]:
    return [
        {
            "uid": e.get("event_id"),
            "name": e.get("table"),
            "data": {
                "table": e.get("table"),
                "event_id": e.get("event_id"),
                "source": e.get("source"),
                "source_file": e.get("source_file"),
                "source_offset": e.get("source_offset"),
            },
        }
        for e in f.evidence
    ]


def detection_finding(f: Finding, result: ScanResult) -> dict[str, Any]:
    """One finding as an OCSF 1.7.0 Detection Finding (a JSON-ready dict; no null members)."""
    from jitaudit.detections import registry

    det = registry.load().get(f.detection_id)
    severity_id = SEVERITY_IDS[f.severity]
    status_id, status, activity_id, activity = STATUSES[f.status]
    sources = sorted({str(e["source"]) for e in f.evidence if e.get("source")})
    info: dict[str, Any] = {
        "uid": f.finding_id,
        "title": f.title,
        "desc": f.summary,
        "analytic": {
            "uid": f.detection_id,
            "name": det.name if det else f.detection_id,
            "type_id": 1,
            "type": "Rule",
        },
        "first_seen_time": epoch_ms(f.first_seen) if f.first_seen else None,
        "last_seen_time": epoch_ms(f.last_seen) if f.last_seen else None,
        "data_sources": sources or None,
    }
    event: dict[str, Any] = {
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": f"Detection Finding: {activity}",
        "severity_id": severity_id,
        "severity": SEVERITY_NAMES[severity_id],
        "status_id": status_id,
        "status": status,
        "time": epoch_ms(f.last_seen or result.scanned_at),
        "start_time": epoch_ms(f.first_seen) if f.first_seen else None,
        "end_time": epoch_ms(f.last_seen) if f.last_seen else None,
        "count": f.events,
        "message": f.summary,
        "finding_info": info,
        "resources": _resources(f),
        "evidences": _evidences(f) or None,
        "remediation": {"desc": det.remediation} if det else None,
        "metadata": {
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "uid": f"{result.scan_id}:{f.finding_id}",
            "log_name": "jitaudit findings",
        },
        "unmapped": {
            "subject": f.subject,
            "controls": f.controls or None,
            "suppression": f.suppression,
            "scan_id": result.scan_id,
        },
    }
    compact: dict[str, Any] = _compact(nulls_for_blanks(event))
    return compact


def _compact(value: Any) -> Any:
    """``value`` without null members: OCSF omits an attribute it does not know."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def ocsf(result: ScanResult) -> str:
    """Every finding of ``result`` as a JSON array of Detection Findings, one per line."""
    lines = [
        json.dumps(detection_finding(f, result), ensure_ascii=False, separators=(",", ":"))
        for f in result.findings
    ]
    return "[\n" + ",\n".join(lines) + ("\n" if lines else "") + "]\n"
