"""The report as OSCAL Assessment Results (oscal-version 1.1.2), for GRC tools to import.

One ``result`` per framework: its controls are the reviewed controls; each control's state is
an observation (``jitaudit`` namespace property ``control-state``); each jitaudit finding is an
observation whose relevant evidence is its lineage (table, event id, source file and offset);
each control with a gap evidenced is an OSCAL finding, target status ``not-satisfied``, related
to those observations. Controls with no gap found or not assessable get no OSCAL finding: the
schema knows only satisfied / not-satisfied, and the absence of findings is not a claim that a
control is satisfied (ARCHITECTURE §6). OSCAL descriptions are Markdown, so text from logs is
Markdown-escaped there. UUIDs are version 5, derived from the scan id, so one report is stable.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from jitaudit.detections.runner import Finding
from jitaudit.report import text
from jitaudit.report.markdown import escape
from jitaudit.report.model import GAP, ControlState, Report

OSCAL_VERSION = "1.1.2"
NS = "urn:jitaudit:oscal"
_UUID_NS = uuid.UUID("0b6f3a52-6a38-4b0c-9d7e-1f4c2a9e5d10")
_NIST_ENHANCEMENT = re.compile(r"^([A-Za-z]{2})-(\d+)(?:\((\d+)\))?$")


def control_token(framework_id: str, control_id: str) -> str:
    """A control id as an OSCAL token: SP 800-53 ids as in NIST's OSCAL catalogue
    (``AC-2(3)`` → ``ac-2.3``), others with their non-token characters replaced by ``-``."""
    if framework_id.startswith("nist-sp800-53"):
        m = _NIST_ENHANCEMENT.match(control_id)
        if m:
            family, number, enhancement = m.groups()
            return f"{family.lower()}-{number}" + (f".{enhancement}" if enhancement else "")
    token = re.sub(r"[^A-Za-z0-9._-]+", "-", control_id).strip("-")
    return token if re.match(r"^[A-Za-z_]", token) else f"_{token}"


def _aware(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat()


def _prop(name: str, value: object) -> dict[str, str]:
    return {"name": name, "ns": NS, "value": text.cell(value)}


class _Ids:
    def __init__(self, seed: str) -> None:
        self.seed = seed

    def __call__(self, *parts: str) -> str:
        return str(uuid.uuid5(_UUID_NS, "\0".join((self.seed, *parts))))


def _control_observation(c: ControlState, ids: _Ids, collected: str) -> dict[str, Any]:
    return {
        "uuid": ids("control", c.framework_id, c.control_id),
        "title": f"{c.control_id}: {c.state}",
        "description": escape(f"{c.control_id} {c.title}: {c.state} — {c.reason}."),
        "props": [
            _prop("control-state", c.state),
            _prop("framework", c.framework_id),
            _prop("control-id", c.control_id),
            *(_prop("detection-id", d) for d in c.detections),
        ],
        "methods": ["TEST"],
        "collected": collected,
    }


def _finding_observation(f: Finding, ids: _Ids, collected: str) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "uuid": ids("finding", f.finding_id),
        "title": f"{f.detection_id} {f.title}",
        "description": escape(f.summary),
        "props": [
            _prop("finding-id", f.finding_id),
            _prop("detection-id", f.detection_id),
            _prop("severity", f.severity),
            _prop("status", f.status),
            _prop("agent-id", f.agent_id),
            _prop("credential-id", f.credential_id),
            _prop("first-seen", text.ts(f.first_seen)),
            _prop("last-seen", text.ts(f.last_seen)),
        ],
        "methods": ["TEST"],
        "collected": collected,
    }
    evidence = [
        {
            "description": escape(
                f"{e.get('table') or text.UNKNOWN} event {e.get('event_id') or text.UNKNOWN} "
                f"from {e.get('source') or text.UNKNOWN} at {text.lineage(e)}"
            )
        }
        for e in f.evidence
    ]
    if evidence:
        obs["relevant-evidence"] = evidence
    return obs


def document(report: Report) -> dict[str, Any]:
    s = report.stamp
    ids = _Ids(f"{s.scan_id}\0{s.lake_digest}")
    collected = _aware(s.generated_at) or ""
    plan = ids("assessment-plan")
    results = []
    for sec in report.frameworks:
        fw = sec.framework
        wanted = fw.detection_ids
        fobs = {
            f.finding_id: _finding_observation(f, ids, collected)
            for f in report.findings
            if f.detection_id in wanted
        }
        observations = [_control_observation(c, ids, collected) for c in sec.controls]
        observations += list(fobs.values())
        findings = []
        for c in sec.controls:
            if c.state != GAP:
                continue
            related = [ids("control", c.framework_id, c.control_id)] + [
                o["uuid"]
                for f in report.findings
                if f.detection_id in c.detections and f.status in ("new", "open")
                for o in [fobs[f.finding_id]]
            ]
            findings.append(
                {
                    "uuid": ids("gap", c.framework_id, c.control_id),
                    "title": f"{c.control_id} {c.title}: gap evidenced",
                    "description": escape(
                        f"Findings of {', '.join(c.detections)} evidence a gap in {c.control_id} "
                        f"{c.title}: {c.reason}."
                    ),
                    "target": {
                        "type": "objective-id",
                        "target-id": control_token(fw.id, c.control_id),
                        "title": f"{c.control_id} {c.title}",
                        "status": {"state": "not-satisfied"},
                    },
                    "related-observations": [{"observation-uuid": u} for u in related],
                }
            )
        result: dict[str, Any] = {
            "uuid": ids("result", fw.id),
            "title": f"{fw.name} {fw.version}",
            "description": escape(
                f"jitaudit assessment of {fw.name} {fw.version}: {sec.count(GAP)} control(s) "
                f"with a gap evidenced, {sec.count('no gap found')} with no gap found where "
                f"coverage was measured, {sec.count('not assessable')} not assessable on these "
                "sources. " + " ".join(report.summary)
            ),
            "start": _aware(report.scope.start) or collected,
            "props": [_prop("framework", fw.id), _prop("framework-version", fw.version)],
            "reviewed-controls": {
                "control-selections": [
                    {
                        "include-controls": [
                            {"control-id": control_token(fw.id, c.control_id)} for c in sec.controls
                        ]
                    }
                ]
            },
            "observations": observations,
        }
        if report.scope.end is not None:
            result["end"] = _aware(report.scope.end)
        if findings:
            result["findings"] = findings
        results.append(result)
    return {
        "assessment-results": {
            "uuid": ids("assessment-results"),
            "metadata": {
                "title": report.title,
                "last-modified": collected,
                "version": s.jitaudit_version,
                "oscal-version": OSCAL_VERSION,
                "props": [
                    _prop("lake-digest", s.lake_digest),
                    _prop("lake-watermark", s.watermark),
                    _prop("scan-id", s.scan_id),
                    *(_prop("catalogue", f"{i} {v}") for i, v in s.catalogue),
                    *(_prop("detection", f"{i}@{h}") for i, h in s.detections),
                ],
            },
            "import-ap": {"href": f"#{plan}"},
            "results": results,
            "back-matter": {
                "resources": [
                    {
                        "uuid": plan,
                        "title": "jitaudit detection catalogue (the assessment method)",
                        "description": " ".join((*report.method, *report.limits)),
                    }
                ]
            },
        }
    }


def oscal_text(report: Report) -> str:
    return json.dumps(document(report), indent=2, ensure_ascii=False) + "\n"
