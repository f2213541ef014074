"""Well-behaved background work: planners delegating tasks to workers, generated columnar.

Every worker task follows one compliant pattern (see README in sample_data): a pod token, a
Vault login that only mints a per-task child token, a dynamic database lease, a cloud session
sized to the task, proxied API calls each with an allowing OPA decision, and prompt revocation.
Tasks are spread evenly over the period so that every log reports at a steady rhythm, and each
worker has at least half an hour between tasks so no threshold of the detection catalogue is
approached.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import polars as pl

from jitaudit.simulate import flows
from jitaudit.simulate.flows import at, c
from jitaudit.simulate.organisation import (
    HOUR,
    MINUTE,
    PERIOD_END,
    PERIOD_START,
    REVISION_CHANGE,
    REVISION_NEW,
    REVISION_OLD,
    TEAMS,
    US,
    IdSource,
    planner_name,
    stable_hex,
    stable_uuid,
    worker_name,
)
from jitaudit.simulate.output import Output
from jitaudit.simulate.writers import fragments as f

#: rendered lines one worker task produces on average (its planner's share included)
EVENTS_PER_TASK = 27.5
MIN_DURATION = 15 * MINUTE
MAX_DURATION = 40 * MINUTE
#: rest between two tasks of one worker, at least (keeps chains, fan-out and coverage low)
REST = 30 * MINUTE


def schedule(scale: int, seed: int) -> pl.DataFrame:
    """One row per worker task: when it runs, who runs it, and which noise it carries."""
    n = max(24, round(scale / EVENTS_PER_TASK))
    n += n % 2
    rng = np.random.default_rng([seed, 1])
    start, end = PERIOD_START + 30 * MINUTE, PERIOD_END - 90 * MINUTE
    delta = (end - start) / n
    t0 = start + np.arange(n) * delta + (rng.random(n) - 0.5) * 0.5 * delta
    t0 = t0.astype(np.int64)
    d = rng.integers(MIN_DURATION // US, MAX_DURATION // US, size=n).astype(np.int64) * US
    # no grant may straddle the policy revision with uses after it: tasks starting just before
    # the change are held until just after it, those already running finish their calls first
    held = (t0 >= REVISION_CHANGE - 3 * MINUTE) & (t0 < REVISION_CHANGE + 30 * US)
    t0 = np.where(held, t0 + 4 * MINUTE, t0)
    order = np.argsort(t0, kind="stable")
    t0, d = t0[order], d[order]
    use_end = t0 + d - 30 * US
    straddles = (t0 < REVISION_CHANGE) & (use_end > REVISION_CHANGE - 45 * US)
    use_end = np.where(straddles, REVISION_CHANGE - 45 * US, use_end)
    slots = math.ceil((MAX_DURATION + REST + 6 * MINUTE) / delta) + 2
    workers = max(6, 3 * math.ceil(slots / 3))
    pos = np.arange(n)
    frame = pl.DataFrame(
        {
            "pos": pos,
            "t0": t0,
            "d": d,
            "use_end": use_end,
            "worker": pos % workers,
            "pair": pos // 2,
            "retry": rng.random(n) < 0.08,
            "deny": rng.random(n) < 0.04,
            "renew": rng.random(n) < 0.30,
            "dup0": rng.random(n) < 0.01,
            "dup1": rng.random(n) < 0.01,
            "objective_no": rng.integers(0, 3, size=n),
            "order_no": rng.integers(10_000, 99_999, size=n),
            "customer_no": rng.integers(1_000, 9_999, size=n),
        }
    )
    planners = max(2, math.ceil(workers / 4))
    return frame.with_columns(
        (c("worker") % 3).alias("team_no"),
        (c("worker") // 3 + 1).alias("member_no"),
        (c("pair") % planners + 1).alias("planner_no"),
    )


def _team(attr: str) -> pl.Expr:
    values = {i: getattr(t, attr) for i, t in enumerate(TEAMS)}
    return c("team_no").replace_strict(values, return_dtype=pl.String)


def dress(rows: pl.DataFrame, ids: IdSource) -> pl.DataFrame:
    """Give a chunk of scheduled tasks its names, ids and secrets (the task-frame columns)."""
    n = rows.height
    agents = [
        worker_name(TEAMS[t].name, m) for t, m in rows.select("team_no", "member_no").iter_rows()
    ]
    uniq = sorted(set(agents))
    entity = {a: stable_uuid("entity", a) for a in uniq}
    sa_uid = {a: stable_uuid("sa", a) for a in uniq}
    sa_number = {a: str(int(stable_hex("gsa", a, width=8), 16))[:21] for a in uniq}
    objectives = {
        (i, k): t.objectives[k] for i, t in enumerate(TEAMS) for k in range(len(t.objectives))
    }
    targets = {i: t.targets() for i, t in enumerate(TEAMS)}
    objective = [objectives[(t, k)] for t, k in rows.select("team_no", "objective_no").iter_rows()]
    pair_first = rows.select(c("pair").unique(maintain_order=True)).height
    trace_ids = ids.hex(pair_first, 16)
    planner_spans = ids.hex(pair_first, 8)
    planner_tasks = ids.hex(pair_first, 6)
    pairs = pl.DataFrame(
        {
            "pair": rows.select(c("pair").unique(maintain_order=True)).to_series(),
            "trace_id": trace_ids,
            "parent_span_id": planner_spans,
            "parent_task_id": "task-" + planner_tasks,
        }
    )
    out = rows.with_columns(
        pl.Series("agent", agents),
        pl.Series("objective", objective),
        _team("name").alias("team"),
        _team("cloud").alias("cloud"),
        _team("account").alias("account"),
        _team("api_host").alias("api_host"),
        _team("bucket").alias("bucket"),
        _team("db_role").alias("db_role"),
        c("team_no").replace_strict(targets, return_dtype=pl.String).alias("targets"),
        pl.lit("task-" + ids.hex(n, 6)).alias("task_id"),
        pl.lit(ids.uuid(n)).alias("decision_id"),
        pl.lit(ids.uuid(n)).alias("pod_uid"),
        pl.lit(ids.b62(n, 24)).alias("login_acc"),
        pl.lit("hmac-sha256:" + ids.hex(n, 32)).alias("login_hmac"),
        pl.lit(ids.b62(n, 24)).alias("child_acc"),
        pl.lit("hvs.CAESI" + ids.b62(n, 86)).alias("child_tok"),
        pl.lit("hmac-sha256:" + ids.hex(n, 32)).alias("child_hmac"),
        pl.lit(ids.b62(n, 24)).alias("lease_suffix"),
        pl.lit(ids.aws_key(n, "ASIA")).alias("k0"),
        pl.lit(ids.aws_key(n, "ASIA")).alias("k1"),
        pl.lit(ids.hex(n, 8)).alias("span_id"),
    ).join(pairs, on="pair", how="left", maintain_order="left")
    d_s = c("d") // US
    return out.with_columns(
        c("agent").replace_strict(entity).alias("entity_id"),
        c("agent").replace_strict(sa_uid).alias("sa_uid"),
        c("agent").replace_strict(sa_number).alias("sa_number"),
        f.cat(
            "ip-10-0-",
            (c("worker") // 200).cast(pl.String),
            "-",
            (c("worker") % 200 + 10).cast(pl.String),
            ".ec2.internal",
        ).alias("node"),
        f.cat(
            "10.0.",
            (c("worker") // 200).cast(pl.String),
            ".",
            (c("worker") % 200 + 10).cast(pl.String),
        ).alias("node_ip"),
        f.cat(
            "10.42.",
            (c("pos") % 250).cast(pl.String),
            ".",
            ((c("pos") // 250) % 250 + 2).cast(pl.String),
        ).alias("pod_ip"),
        pl.when(c("t0") + 2 * US < REVISION_CHANGE)
        .then(pl.lit(REVISION_OLD))
        .otherwise(pl.lit(REVISION_NEW))
        .alias("revision"),
        (d_s + 300).alias("login_ttl"),
        (d_s + 600).alias("child_ttl"),
        f.cat("database/creds/", c("db_role"), "/", c("lease_suffix")).alias("lease"),
        pl.lit(900).alias("k0_seconds"),
        (d_s + 60).alias("k1_seconds"),
        (d_s + 60).alias("gcp_seconds"),
        f.cat(c("agent"), "-", c("task_id").str.slice(5, 8)).alias("k1_session"),
        pl.lit(flows.role_id("base")).alias("base_role_id"),
        c("team")
        .replace_strict({t.name: flows.role_id(t.task_role()) for t in TEAMS})
        .alias("task_role_id"),
        c("agent")
        .str.replace("worker-", "agent-worker-")
        .str.replace(r"-\d+$", "")
        .alias("service"),
        f.cat("exports/", f.instant(c("t0"), "%Y-%m-%d"), "/", c("task_id"), ".csv").alias(
            "object"
        ),
    ).with_columns(
        c("team")
        .replace_strict({t.name: flows.role_id(t.base_role()) for t in TEAMS})
        .alias("base_role_id")
    )


def emit_tasks(out: Output, tasks: pl.DataFrame, ids: IdSource, hm: flows.Hmac) -> None:
    """Every record of a frame of dressed worker tasks."""
    end = c("t0") + c("d")
    k8s, _ = flows.token_request(tasks, ids)
    out.kubernetes(k8s)
    out.vault(flows.vault_login(tasks, ids, hm))
    out.opa_grant(flows.grant_decision(tasks, ids))
    out.vault(flows.vault_child_token(tasks, ids, hm))
    out.vault(flows.vault_db_creds(tasks, ids, at(0.1)))

    aws = tasks.filter(c("cloud") == "aws")
    if aws.height:
        out.cloudtrail(flows.sts_web_identity(aws, ids, t=c("t0") + 3 * US))
        out.cloudtrail(
            flows.sts_assume_task_role(
                aws, ids, t=c("t0") + 4 * US, actions=["s3:GetObject", "s3:PutObject"]
            )
        )
        out.cloudtrail(
            flows.s3_call(
                aws, ids, t=at(0.3), name="PutObject", key=c("object"), duplicate=c("dup0")
            )
        )
        out.cloudtrail(
            flows.s3_call(
                aws, ids, t=at(0.35), name="GetObject", key=c("object"), duplicate=c("dup1")
            )
        )
    gcp = tasks.filter(c("cloud") == "gcp")
    if gcp.height:
        out.gcp(flows.gcp_access_token(gcp, ids, t=c("t0") + int(3.5 * US)))
        out.gcp(flows.gcs_get(gcp, ids, t=at(0.3), key=c("object")))

    resource = f.cat("/v1/orders/", c("order_no").cast(pl.String))
    retried = tasks.filter(c("retry"))
    for frame, t, method, path, code in (
        (retried, at(0.45) - 400_000, "GET", resource, 503),
        (tasks, at(0.45), "GET", resource, 200),
        (tasks, at(0.6), "GET", f.cat("/v1/customers/", c("customer_no").cast(pl.String)), 200),
        (tasks.filter(c("deny")), at(0.7), "DELETE", resource, 403),
    ):
        if frame.height:
            env, dec = flows.proxied(frame, ids, t=t, method=method, path=path, code=code)
            out.envoy(env)
            out.opa_envoy(dec)

    renewing = tasks.filter(c("renew"))
    if renewing.height:
        out.vault(flows.vault_lease(renewing, ids, at(0.8), "renew"))
    out.vault(flows.vault_lease(tasks, ids, end + 10 * US, "revoke"))
    out.vault(flows.vault_revoke_self(tasks, ids, end + 15 * US, "child"))
    out.vault(flows.vault_revoke_self(tasks, ids, end + 20 * US, "login"))

    service = c("service")
    out.otel(
        flows.invoke_agent(
            tasks,
            start=c("t0"),
            end=end,
            agent=c("agent"),
            task=c("task_id"),
            span=c("span_id"),
            parent=c("parent_span_id"),
            service=service,
            objective=c("objective"),
            targets=c("targets"),
        )
    )
    out.otel(
        flows.chat(
            tasks,
            ids,
            start=c("t0") + 1_500_000,
            agent=c("agent"),
            task=c("task_id"),
            parent=c("span_id"),
            service=service,
        )
    )
    out.otel(
        flows.execute_tool(
            tasks,
            ids,
            start=at(0.5),
            tool="summarise_findings",
            agent=c("agent"),
            task=c("task_id"),
            parent=c("span_id"),
            service=service,
        )
    )
    emit_planners(out, tasks, ids)


def emit_planners(out: Output, tasks: pl.DataFrame, ids: IdSource) -> None:
    """Each planner task delegates to the two worker tasks of its pair."""
    pairs = (
        tasks.group_by("pair", maintain_order=True)
        .agg(
            (c("t0").min() - 3 * US).alias("t0"),
            ((c("t0") + c("d")).max() + 3 * US).alias("t_end"),
            c("trace_id").first(),
            c("parent_span_id").first().alias("span_id"),
            c("parent_task_id").first().alias("task_id"),
            c("planner_no").first(),
            c("objective").first(),
        )
        .with_columns(
            c("planner_no").map_elements(planner_name, return_dtype=pl.String).alias("agent"),
            f.cat("Coordinate: ", c("objective")).alias("objective"),
        )
    )
    service = pl.lit("agent-planner")
    out.otel(
        flows.invoke_agent(
            pairs,
            start=c("t0"),
            end=c("t_end"),
            agent=c("agent"),
            task=c("task_id"),
            span=c("span_id"),
            parent=None,
            service=service,
            objective=c("objective"),
            targets=None,
        )
    )
    out.otel(
        flows.chat(
            pairs,
            ids,
            start=c("t0") + 1_000_000,
            agent=c("agent"),
            task=c("task_id"),
            parent=c("span_id"),
            service=service,
        )
    )


def generate(
    out: Output, seed: int, scale: int, progress: Callable[[str], None] | None = None
) -> int:
    """Stream the background through ``out`` chunk by chunk; returns the number of tasks."""
    plan = schedule(scale, seed)
    ids = IdSource(seed, 2)
    hm = flows.Hmac(seed)
    chunk = max(64, 2 * round(HOUR / ((PERIOD_END - PERIOD_START) / plan.height) / 2))
    starts = plan["t0"].to_numpy()
    for first in range(0, plan.height, chunk):
        rows = plan.slice(first, chunk)
        emit_tasks(out, dress(rows, ids), ids, hm)
        nxt = first + chunk
        watermark = int(starts[nxt:].min()) - MINUTE if nxt < plan.height else None
        if watermark is not None:
            out.flush(watermark)
        if progress:
            progress(f"background {min(nxt, plan.height)}/{plan.height} tasks")
    return plan.height
