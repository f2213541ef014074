"""A tiny Envoy access log whose agent ids, task ids and file name are hostile strings."""

from __future__ import annotations

import json
from pathlib import Path

SCRIPT = "<script>alert(1)</script>"
MD_LINK = "[x](javascript:alert(1))"
FORMULA = '=HYPERLINK("http://x")'
HOSTILE_AGENTS = (SCRIPT, MD_LINK, FORMULA)
#: a log file name is lineage that reports print too
FILE_NAME = "<img src=x onerror=alert(1)>.log"


def write_log(directory: Path) -> Path:
    """One credential shared by three hostile agents under several tasks within minutes."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, agent in enumerate(HOSTILE_AGENTS * 2):
        lines.append(
            {
                "start_time": f"2026-11-02T10:0{i}:00.000Z",
                "method": "GET",
                "path": f"/v1/items/{i}",
                "protocol": "HTTP/1.1",
                "response_code": 200,
                "response_flags": "-",
                "bytes_received": 0,
                "bytes_sent": 10,
                "duration": 3,
                "upstream_host": "10.0.0.1:443",
                "x_forwarded_for": None,
                "user_agent": "agent/1.0",
                "request_id": f"req-{i}",
                "authority": "api.internal",
                "downstream_remote_address": "10.1.1.1:5555",
                "agent_id": agent,
                "task_id": f"{agent}-task-{i % 2}",
                "credential_id": "cred-shared-1",
            }
        )
    path = directory / FILE_NAME
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
