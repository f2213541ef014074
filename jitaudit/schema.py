"""Arrow schemas of the canonical tables (ARCHITECTURE §2), defined once for the whole package."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us")
STR = pa.string()
BOOL = pa.bool_()
I64 = pa.int64()
STR_LIST = pa.list_(pa.string())

#: Lineage columns carried by every row of every table.
LINEAGE: tuple[pa.Field, ...] = (
    pa.field("source", STR, nullable=False),
    pa.field("source_file", STR),
    pa.field("source_offset", I64),
    pa.field("event_id", STR, nullable=False),
    pa.field("event_time", TS),
    pa.field("logged_time", TS),
    pa.field("ingested_at", TS, nullable=False),
)

OUTCOMES = ("success", "denied", "error")
GRANT_EVENT_KINDS = ("issue", "renew", "revoke", "expire")
APPROVALS = ("auto", "policy", "human")
SEVERITIES = ("info", "low", "medium", "high", "critical")
FINDING_STATUSES = ("new", "open", "resolved", "suppressed")


@dataclass(frozen=True)
class TableSpec:
    """One canonical table: its columns, the ones a row cannot lack, and enumerated columns."""

    name: str
    schema: pa.Schema
    required: tuple[str, ...]
    enums: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: column whose date partitions the table (event_date=…)
    date_column: str = "event_time"


def _schema(*fields: pa.Field) -> pa.Schema:
    return pa.schema([*LINEAGE, *fields])


GRANTS = TableSpec(
    "grants",
    _schema(
        pa.field("grant_id", STR),
        pa.field("credential_id", STR),
        pa.field("parent_grant_id", STR),
        pa.field("principal_id", STR),
        pa.field("agent_id", STR),
        pa.field("workload_identity", STR),
        # identities the credential was obtained through, outermost first (GCP delegation)
        pa.field("delegation_chain", STR_LIST),
        pa.field("attested", BOOL),
        pa.field("auth_method", STR),
        pa.field("task_id", STR),
        # the task that delegated this grant's task (Vault child-token metadata)
        pa.field("parent_task_id", STR),
        pa.field("objective", STR),
        pa.field("targets", STR_LIST),
        pa.field("scope", STR_LIST),
        pa.field("policies", STR_LIST),
        pa.field("issued_at", TS),
        pa.field("expires_at", TS),
        pa.field("renewable", BOOL),
        pa.field("issuer", STR),
        pa.field("approval", STR),
        pa.field("decision_id", STR),
        pa.field("policy_revision", STR),
    ),
    required=("grant_id", "issued_at", "event_time"),
    enums=(("approval", APPROVALS),),
)

GRANT_EVENTS = TableSpec(
    "grant_events",
    _schema(
        pa.field("grant_id", STR),
        pa.field("credential_id", STR),
        pa.field("kind", STR),
        pa.field("new_expires_at", TS),
        pa.field("actor", STR),
        pa.field("principal_id", STR),
        # a revocation of every grant bound to this workload (a deleted pod's tokens)
        pa.field("workload_identity", STR),
        # a revocation of every grant of principal_id issued before this instant
        # (AWSRevokeOlderSessions); NULL for a revocation of one grant
        pa.field("revokes_issued_before", TS),
        pa.field("outcome", STR),
    ),
    required=("kind", "event_time"),
    enums=(("kind", GRANT_EVENT_KINDS), ("outcome", OUTCOMES)),
)

USES = TableSpec(
    "uses",
    _schema(
        pa.field("credential_id", STR),
        pa.field("principal_id", STR),
        pa.field("agent_id", STR),
        pa.field("workload_identity", STR),
        pa.field("task_id", STR),
        pa.field("action", STR),
        pa.field("resource", STR),
        pa.field("target", STR),
        pa.field("outcome", STR),
        pa.field("error_code", STR),
        pa.field("src_ip", STR),
        pa.field("user_agent", STR),
        pa.field("request_id", STR),
        pa.field("trace_id", STR),
        pa.field("span_id", STR),
        # OTel: the nearest ancestor span the ingest did not have (a later batch may bring
        # it); the replay finds the agent and task above the span through it
        pa.field("ancestor_span_id", STR),
        pa.field("on_behalf_of", STR),
    ),
    required=("event_time", "action", "outcome"),
    enums=(("outcome", OUTCOMES),),
)

DECISIONS = TableSpec(
    "decisions",
    _schema(
        pa.field("decision_id", STR),
        pa.field("principal_id", STR),
        pa.field("agent_id", STR),
        pa.field("task_id", STR),
        pa.field("action", STR),
        pa.field("resource", STR),
        pa.field("target", STR),
        pa.field("allowed", BOOL),
        pa.field("policy_path", STR),
        pa.field("policy_revision", STR),
        pa.field("reason", STR),
        pa.field("request_id", STR),
        pa.field("trace_id", STR),
    ),
    # allowed may be unknown: an undefined OPA decision is neither allow nor deny
    required=("decision_id", "event_time"),
)

TASKS = TableSpec(
    "tasks",
    _schema(
        pa.field("task_id", STR),
        pa.field("agent_id", STR),
        pa.field("parent_task_id", STR),
        pa.field("delegated_by", STR),
        pa.field("objective", STR),
        pa.field("targets", STR_LIST),
        pa.field("started_at", TS),
        pa.field("ended_at", TS),
        pa.field("trace_id", STR),
        # OTel: as in uses, for the delegation of an invoke_agent span whose parent came later
        pa.field("ancestor_span_id", STR),
    ),
    required=("task_id", "event_time"),
)

SPAN_LINKS = TableSpec(
    "span_links",
    _schema(
        pa.field("trace_id", STR),
        pa.field("span_id", STR),
        # the agent and task of the invoke_agent span above it, or the span it waits for
        pa.field("agent_id", STR),
        pa.field("task_id", STR),
        pa.field("ancestor_span_id", STR),
    ),
    required=("trace_id", "span_id", "event_time"),
)
"""An OTel span jitaudit keeps no row of (a model call, a framework's loop span) that GenAI
spans already in the lake wait for: their path to the agent run above them, which an exporter
may send in another file than they came in."""

QUARANTINE = TableSpec(
    "quarantine",
    _schema(
        pa.field("reason", STR, nullable=False),
        pa.field("raw", STR),
    ),
    required=("reason",),
    date_column="ingested_at",
)

REDELIVERIES = TableSpec(
    "redeliveries",
    _schema(pa.field("table_name", STR, nullable=False)),
    required=("table_name",),
)
"""A copy of an event already in the lake (a re-delivered log record), kept as lineage only:
its delivery time still counts for completeness, whichever copy was ingested first."""

EVIDENCE = pa.struct(
    [
        pa.field("table", STR),
        pa.field("event_id", STR),
        pa.field("source", STR),
        pa.field("source_file", STR),
        pa.field("source_offset", I64),
    ]
)
CONTROL = pa.struct(
    [pa.field("framework", STR), pa.field("control_id", STR), pa.field("title", STR)]
)

FINDINGS = TableSpec(
    "findings",
    _schema(
        pa.field("finding_id", STR),
        pa.field("scan_id", STR),
        pa.field("detection_id", STR),
        pa.field("title", STR),
        pa.field("severity", STR),
        pa.field("agent_id", STR),
        pa.field("principal_id", STR),
        pa.field("credential_id", STR),
        pa.field("task_id", STR),
        pa.field("first_seen", TS),
        pa.field("last_seen", TS),
        pa.field("summary", STR),
        pa.field("evidence", pa.list_(EVIDENCE)),
        pa.field("controls", pa.list_(CONTROL)),
        pa.field("status", STR),
    ),
    required=("finding_id", "detection_id", "severity", "status"),
    enums=(("severity", SEVERITIES), ("status", FINDING_STATUSES)),
)

#: Every canonical table, by name. The lake creates one view per entry.
TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        GRANTS,
        GRANT_EVENTS,
        USES,
        DECISIONS,
        TASKS,
        SPAN_LINKS,
        QUARANTINE,
        REDELIVERIES,
        FINDINGS,
    )
}

#: Tables an ingester may write (findings are written by scans).
INGEST_TABLES: tuple[str, ...] = (
    "grants",
    "grant_events",
    "uses",
    "decisions",
    "tasks",
    "span_links",
)


def spec(name: str) -> TableSpec:
    """The spec of a canonical table; a clear error for an unknown name."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; tables are {', '.join(TABLES)}") from None


def empty(name: str) -> pa.Table:
    """An empty Arrow table with the canonical schema of ``name``.

    (``Schema.empty_table`` would import pandas, 0.4 s of every ingest that quarantines
    nothing.)"""
    return pa.Table.from_batches([], schema=spec(name).schema)
