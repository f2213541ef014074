"""The one registry of detections: ``<ID>.sql`` beside ``<ID>.yaml``, validated on load.

A detection's SQL returns the violating rows (one per offending event) with at least the
columns in :data:`REQUIRED_COLUMNS`; its metadata holds title, severity, description,
parameters with defaults, remediation, the tables it reads, the summary template and a
coverage query. A detection whose metadata and SQL disagree — a parameter used but not
declared, an ID that is not the file name, a table that does not exist — fails to load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from jitaudit import replay
from jitaudit.schema import SEVERITIES, TABLES

ID_PATTERN = re.compile(r"^JIT-\d{3}$")
PARAM_PATTERN = re.compile(r"\$\{([a-z_][a-z0-9_]*)(?::([^}]+))?\}")
#: columns every detection's rows carry (the runner aggregates them into findings)
REQUIRED_COLUMNS = ("subject", "event_table", "event_id", "event_time")
OPTIONAL_COLUMNS = (
    "agent_id",
    "principal_id",
    "credential_id",
    "task_id",
    "source",
    "source_file",
    "source_offset",
    "detail",
)
#: relations a detection may read: canonical tables and the replay views (views.sql)
REPLAY_VIEWS = tuple(name for name, _ in replay.statements())
KNOWN_TABLES = (*TABLES, *REPLAY_VIEWS)
META_KEYS = {
    "id",
    "name",
    "title",
    "severity",
    "description",
    "remediation",
    "tables",
    "parameters",
    "summary",
    "coverage",
    "subject",
    "incremental",
    "tags",
}


class RegistryError(Exception):
    """A detection whose files are missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Detection:
    id: str
    name: str
    title: str
    severity: str
    description: str
    remediation: str
    tables: tuple[str, ...]
    parameters: dict[str, Any]
    summary: str
    sql: str
    coverage: str | None
    subject: str
    incremental: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def placeholders(self) -> set[str]:
        text = self.sql + (self.coverage or "")
        return {m.group(1) for m in PARAM_PATTERN.finditer(text)}


def _fail(did: str, message: str) -> RegistryError:
    return RegistryError(f"detection {did}: {message}")


def parse(did: str, meta_text: str, sql: str) -> Detection:
    """Build and validate one detection from its metadata YAML and SQL text."""
    meta = yaml.safe_load(meta_text)
    if not isinstance(meta, dict):
        raise _fail(did, "metadata is not a mapping")
    unknown = set(meta) - META_KEYS
    if unknown:
        raise _fail(did, f"unknown metadata keys {sorted(unknown)}")
    for key in (
        "id",
        "name",
        "title",
        "severity",
        "description",
        "remediation",
        "tables",
        "summary",
        "subject",
    ):
        if not meta.get(key):
            raise _fail(did, f"metadata lacks {key!r}")
    if meta["id"] != did:
        raise _fail(did, f"metadata id {meta['id']!r} does not match its file name")
    if not ID_PATTERN.match(did):
        raise _fail(did, "id must look like JIT-001")
    title = str(meta["title"])
    if len(title) > 80 or title.lower().startswith("ensure"):
        raise _fail(did, "title must be a short statement of the failure (≤ 80 chars, no 'Ensure')")
    if meta["severity"] not in SEVERITIES:
        raise _fail(did, f"severity {meta['severity']!r} is not one of {SEVERITIES}")
    tables = tuple(meta["tables"])
    bad = [t for t in tables if t not in KNOWN_TABLES]
    if bad:
        raise _fail(did, f"unknown tables {bad}")
    incremental = meta.get("incremental", True)
    if not isinstance(incremental, bool):
        raise _fail(did, "incremental must be true or false")
    params = dict(meta.get("parameters") or {})
    for name, value in params.items():
        if not isinstance(value, int | float | str) or isinstance(value, bool):
            raise _fail(did, f"parameter {name} must be a number or a string")
    det = Detection(
        id=did,
        name=str(meta["name"]),
        title=title,
        severity=str(meta["severity"]),
        description=str(meta["description"]).strip(),
        remediation=str(meta["remediation"]).strip(),
        tables=tables,
        parameters=params,
        summary=str(meta["summary"]).strip(),
        sql=sql,
        coverage=(str(meta["coverage"]) if meta.get("coverage") else None),
        subject=str(meta["subject"]),
        incremental=incremental,
        tags=tuple(meta.get("tags") or ()),
    )
    undeclared = det.placeholders - set(params)
    if undeclared:
        raise _fail(did, f"SQL uses undeclared parameters {sorted(undeclared)}")
    unused = set(params) - det.placeholders
    if unused:
        raise _fail(did, f"parameters declared but never used {sorted(unused)}")
    for column in REQUIRED_COLUMNS:
        if not re.search(rf"\b{column}\b", sql):
            raise _fail(did, f"SQL does not return the column {column!r}")
    return det


@cache
def load() -> dict[str, Detection]:
    """Every detection shipped in ``jitaudit/detections``, by ID, in ID order."""
    root = resources.files("jitaudit.detections")
    metas = sorted(p.name for p in root.iterdir() if p.name.endswith(".yaml"))
    sqls = sorted(p.name for p in root.iterdir() if p.name.endswith(".sql"))
    ids = [m[: -len(".yaml")] for m in metas]
    orphan_sql = sorted({s[: -len(".sql")] for s in sqls} - set(ids))
    if orphan_sql:
        raise RegistryError(f"SQL without metadata: {orphan_sql}")
    out: dict[str, Detection] = {}
    for did in ids:
        sql_file = root.joinpath(f"{did}.sql")
        if not sql_file.is_file():
            raise _fail(did, "metadata without SQL file")
        out[did] = parse(did, root.joinpath(f"{did}.yaml").read_text(), sql_file.read_text())
    return out


def select(ids: str | None) -> list[Detection]:
    """The detections named in a comma list (all when None); a clear error for unknown IDs."""
    registry = load()
    if not ids:
        return list(registry.values())
    wanted = [i.strip().upper() for i in ids.split(",") if i.strip()]
    unknown = [i for i in wanted if i not in registry]
    if unknown:
        raise RegistryError(f"unknown detection IDs {unknown}; known: {', '.join(registry)}")
    return [registry[i] for i in wanted]
