"""What a scan leaves behind: the findings history in the lake and the state the next scan
starts from.

* The lake's ``findings`` table gets every finding of the scan (resolved included), one commit
  per scan: the history of scans.
* ``_meta/scan_state.json`` holds the watermark (the lake commit the scan saw), the digest of
  the detections and parameters that ran, and coverage; the open findings go beside it in
  ``_meta/scan_state-<scan id>.parquet``, which the JSON names. The JSON is replaced last
  (written, synced, renamed), so a crash leaves the previous state whole.

Both are written column by column, and a finding's evidence travels as the JSON text DuckDB
produced (:class:`~jitaudit.detections.evidence.Evidence`): a scan of a large lake carries a
million evidence rows, which would otherwise become Python dicts on every hop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from jitaudit.detections.evidence import STRUCTURE
from jitaudit.detections.runner import Coverage, Finding
from jitaudit.lake import InputRef, Lake, replace_durably
from jitaudit.schema import spec

if TYPE_CHECKING:
    from jitaudit.scan import ScanResult

STATE_FILE = "scan_state.json"
#: 4: open findings in Parquet beside the JSON, evidence as JSON text
STATE_VERSION = 4

_CONTROLS = orjson.dumps([{"framework": "VARCHAR", "control_id": "VARCHAR", "title": "VARCHAR"}])
#: Finding fields kept in the state's Parquet file, besides the evidence: controls are
#: attached again from the catalogue when the state is read, and suppressions are matched
#: again from their file by every scan
_KEPT = tuple(
    name
    for name in Finding.__dataclass_fields__
    if name not in ("evidence", "controls", "suppression")
)


@dataclass
class SavedScan:
    """The state the last persisted scan left."""

    scan_id: str
    scanned_at: datetime
    watermark: int
    digest: str
    findings: list[Finding]
    coverage: list[Coverage]


def _meta(lake: Lake) -> Path:
    return lake.root / "_meta"


def load(lake: Lake) -> SavedScan | None:
    """The last persisted scan's state; None when there is none, it is of an older version,
    or its findings file is gone or unreadable: the next scan is then a full one."""
    path = _meta(lake) / STATE_FILE
    if not path.exists():
        return None
    doc: dict[str, Any] = orjson.loads(path.read_bytes())
    if doc.get("version") != STATE_VERSION:
        return None
    findings: list[Finding] = []
    if doc.get("findings_file"):
        try:
            rows = pq.read_table(_meta(lake) / doc["findings_file"]).to_pylist()
        except (OSError, pa.ArrowException):
            return None
        findings = [Finding(**row) for row in rows]
    attach_controls(findings)
    return SavedScan(
        scan_id=str(doc["scan_id"]),
        scanned_at=datetime.fromisoformat(doc["scanned_at"]),
        watermark=int(doc["watermark"]),
        digest=str(doc["digest"]),
        findings=findings,
        coverage=[Coverage(**c) for c in doc.get("coverage", [])],
    )


def save(lake: Lake, result: ScanResult, digest: str) -> None:
    """Record ``result`` in the findings history and make it the state the next scan reads."""
    meta = _meta(lake)
    meta.mkdir(exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.register("_scan_findings", _columns(result))
        if result.findings:
            _record(con, lake, result)
        findings_file = None
        if any(f.status != "resolved" for f in result.findings):
            findings_file = f"scan_state-{result.scan_id}.parquet"
            tmp = meta / (findings_file + ".tmp")
            con.execute(
                f"""COPY (SELECT {", ".join(_KEPT)}, evidence_json AS evidence
                          FROM _scan_findings WHERE status <> 'resolved')
                    TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"""
            )
            replace_durably(tmp, meta / findings_file)
    finally:
        con.close()
    doc = {
        "version": STATE_VERSION,
        "digest": digest,
        "watermark": result.watermark,
        "scan_id": result.scan_id,
        "scanned_at": result.scanned_at.isoformat(),
        "findings_file": findings_file,
        "coverage": [c.to_json() for c in result.coverage],
    }
    path = meta / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(doc))
    replace_durably(tmp, path)
    for old in meta.glob("scan_state-*.parquet*"):
        if old.name != findings_file:
            old.unlink(missing_ok=True)


def attach_controls(findings: Sequence[Finding]) -> None:
    """Controls each finding evidences, from the control catalogue when it is installed (the
    findings of one detection share one list: nothing changes it after this)."""
    try:
        from jitaudit import catalog
    except ImportError:
        return
    by_detection: dict[str, list[dict[str, str]]] = {}
    for f in findings:
        if f.detection_id not in by_detection:
            by_detection[f.detection_id] = catalog.controls_for(f.detection_id)
        f.controls = by_detection[f.detection_id]


def _columns(result: ScanResult) -> pa.Table:
    """The findings as an Arrow table: the history's plain columns, ``subject`` and ``events``
    for the state, and the evidence and controls as JSON text."""
    fs = result.findings
    schema = spec("findings").schema
    n, at = len(fs), result.scanned_at
    columns: dict[str, list[Any]] = {
        "source": ["scan"] * n,
        "source_file": [result.scan_id] * n,
        "source_offset": list(range(n)),
        "event_id": [f"{result.scan_id}:{f.finding_id}" for f in fs],
        "event_time": [at] * n,
        "logged_time": [None] * n,  # a scan's findings are not delivered: no log time
        "ingested_at": [at] * n,
        "scan_id": [result.scan_id] * n,
    }
    for name in _KEPT:
        columns[name] = [getattr(f, name) for f in fs]
    types = {f.name: f.type for f in schema} | {"subject": pa.string(), "events": pa.int64()}
    table = pa.Table.from_pydict(
        columns, schema=pa.schema([pa.field(c, types[c]) for c in columns])
    )
    controls: dict[int, str] = {}  # findings of one detection share their controls list
    for f in fs:
        if id(f.controls) not in controls:
            controls[id(f.controls)] = orjson.dumps(f.controls).decode()
    return table.append_column(
        "evidence_json", pa.array([f.evidence.text for f in fs], pa.string())
    ).append_column("controls_json", pa.array([controls[id(f.controls)] for f in fs], pa.string()))


def _record(con: duckdb.DuckDBPyConnection, lake: Lake, result: ScanResult) -> None:
    """Append the scan's findings to the lake's ``findings`` table (one commit per scan)."""
    converted = {
        "evidence": f"from_json(evidence_json, '{STRUCTURE}')",
        "controls": f"from_json(controls_json, '{_CONTROLS.decode()}')",
    }
    cols = ", ".join(
        f"{converted[c]} AS {c}" if c in converted else f'"{c}"'
        for c in spec("findings").schema.names
    )
    lake.commit(
        con,
        {"findings": con.sql(f"SELECT {cols} FROM _scan_findings")},
        [InputRef(result.scan_id, result.scan_id, "scan")],
        # every row is the scan's, on the day it ran: one partition, no pass to find it
        partitions={"findings": ("scan", result.scanned_at.date())},
    )
