"""OPA and Envoy: grant approvals and proxied requests with their decisions."""

from __future__ import annotations

import polars as pl

from jitaudit.simulate.flows.common import AGENT_UA, c, frame
from jitaudit.simulate.organisation import (
    US,
    IdSource,
)
from jitaudit.simulate.writers import envoy, opa
from jitaudit.simulate.writers import fragments as f


def grant_decision(
    tasks: pl.DataFrame, ids: IdSource, *, broker: str = "vault", t: pl.Expr | None = None
) -> pl.DataFrame:
    """The broker asks OPA whether to issue this task's credentials (t0+2 s)."""
    return frame(
        opa.GRANT_COLUMNS,
        tasks,
        t=c("t0") + 2 * US if t is None else t,
        decision_id=c("decision_id"),
        revision=c("revision"),
        allowed=True,
        agent_id=c("agent"),
        task_id=c("task_id"),
        parent_task_id=c("parent_task_id"),
        objective=c("objective"),
        targets=c("targets"),
        broker=broker,
        ttl=c("child_ttl"),
        reason="task targets within team entitlement",
        requested_by=f.cat(c("pod_ip"), ":8181"),
    )


def proxied(
    tasks: pl.DataFrame,
    ids: IdSource,
    *,
    t: pl.Expr,
    method: str,
    path: pl.Expr,
    code: int,
    allowed: bool | None = None,
    agent: pl.Expr | None = None,
    credential: pl.Expr | None = None,
    token: pl.Expr | None = None,
    task: pl.Expr | None = None,
    decided: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A request through the agent's sidecar: the Envoy line and OPA's ext_authz decision."""
    n = tasks.height
    request_id = pl.lit(ids.uuid(n))
    allowed = code != 403 if allowed is None else allowed
    flags = {200: "-", 201: "-", 204: "-", 403: "UAEX", 503: "UF"}[code]
    details = {
        200: "via_upstream",
        201: "via_upstream",
        204: "via_upstream",
        403: "ext_authz_denied",
        503: "upstream_reset_before_response_started{remote_reset}",
    }
    agent = c("agent") if agent is None else agent
    credential = c("child_acc") if credential is None else credential
    task = c("task_id") if task is None else task
    trace = f.cat("00-", c("trace_id"), "-", pl.lit(ids.hex(n, 8)), "-01")
    src_port = 50000 + (pl.int_range(pl.len(), dtype=pl.Int64) * 71) % 15000
    env = frame(
        envoy.COLUMNS,
        tasks,
        t=t,
        duration_ms=pl.lit(8 if code != 403 else 2) + pl.int_range(pl.len(), dtype=pl.Int64) % 23,
        method=method,
        path=path,
        host=c("api_host"),
        code=code,
        flags=flags,
        details=details[code],
        request_id=request_id,
        agent_id=agent,
        task_id=task,
        credential_id=credential,
        token=c("child_tok") if token is None else token,
        src_ip=c("pod_ip"),
        src_port=src_port,
        user_agent=AGENT_UA,
        upstream_host="10.42.9.14:8080",
        bytes_in=0 if method in ("GET", "DELETE") else 412,
        bytes_out=pl.when(pl.lit(code) < 400).then(pl.lit(1830)).otherwise(pl.lit(0)),
    )
    if not decided:
        return env, pl.DataFrame(schema=opa.ENVOY_COLUMNS)
    dec = frame(
        opa.ENVOY_COLUMNS,
        tasks.with_columns(request_id.alias("_rid"), trace.alias("_tp"), src_port.alias("_sp")),
        t=t + 2_100,
        decision_id=pl.lit(ids.uuid(n)),
        revision=c("revision_at_use") if "revision_at_use" in tasks.columns else c("revision"),
        allowed=allowed,
        method=method,
        path=path,
        host=c("api_host"),
        request_id=c("_rid"),
        agent_id=agent,
        task_id=task,
        credential_id=credential,
        src_ip=c("pod_ip"),
        src_port=c("_sp"),
        user_agent=AGENT_UA,
        traceparent=c("_tp"),
        envoy_id=(pl.int_range(pl.len(), dtype=pl.Int64) * 7_919_423 + 1_000_003).cast(pl.String),
    )
    return env, dec
