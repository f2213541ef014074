"""The sample-data simulator: a multi-agent organisation's native logs, with ground truth.

``generate(out, seed, scale)`` writes three days of Vault, CloudTrail, GCP, Kubernetes, OPA,
Envoy and OpenTelemetry logs under ``out`` in the layouts those systems use, plus
``expected_findings.csv`` (every injected violation) and ``expected_counts.json`` (the canonical
rows a correct ingester produces per table and source, after de-duplication).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jitaudit.simulate import background
from jitaudit.simulate.injections import Finding, inject
from jitaudit.simulate.output import OWNED, Output

DEFAULT_SEED = 7
DEFAULT_SCALE = 6_000
FINDINGS_FILE = "expected_findings.csv"
COUNTS_FILE = "expected_counts.json"


def generate(
    out: Path,
    seed: int = DEFAULT_SEED,
    scale: int = DEFAULT_SCALE,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write the sample organisation under ``out``; returns the expected canonical row counts.

    Files this simulator owns under ``out`` are replaced; anything else there is left alone.
    """
    out.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        shutil.rmtree(out / name, ignore_errors=True)
    sink = Output(out, seed)
    findings = inject(sink, seed)
    tasks = background.generate(sink, seed, scale, progress)
    sink.flush(None)
    counts = sink.expected_counts()
    (out / COUNTS_FILE).write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")
    (out / FINDINGS_FILE).write_text(findings_csv(findings), newline="")
    if progress:
        progress(f"wrote {sink.events} records for {tasks} background tasks")
    return counts


def findings_csv(findings: list[Finding]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["detection_id", "agent_id", "credential_id", "task_id", "why"])
    for item in sorted(findings, key=lambda x: (x.detection_id, x.why)):
        writer.writerow(
            [item.detection_id, item.agent_id, item.credential_id, item.task_id, item.why]
        )
    return buf.getvalue()


__all__ = ["DEFAULT_SCALE", "DEFAULT_SEED", "generate"]
