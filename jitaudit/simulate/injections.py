"""Injected violations: one small, hand-built case per detection, with its ground truth.

Each case runs its own agent at its own time and reuses the background's steps, changing only
what makes it violate; everything else about it is compliant, so it triggers exactly the
detections it lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from jitaudit.simulate import flows
from jitaudit.simulate.flows import c
from jitaudit.simulate.organisation import (
    MINUTE,
    REVISION_CHANGE,
    REVISION_NEW,
    REVISION_OLD,
    TEAMS,
    US,
    IdSource,
    stable_hex,
    stable_uuid,
    ts,
)
from jitaudit.simulate.output import Output
from jitaudit.simulate.writers import fragments as f


@dataclass(frozen=True)
class Finding:
    """One expected row of expected_findings.csv."""

    detection_id: str
    agent_id: str
    credential_id: str
    task_id: str
    why: str


class Case:
    """Builder of one case's task frame and records."""

    def __init__(self, out: Output, ids: IdSource, hm: flows.Hmac) -> None:
        self.out, self.ids, self.hm = out, ids, hm

    def task(
        self,
        agent: str,
        start: str,
        minutes: float,
        *,
        team: str = "billing",
        child_ttl: int | None = None,
        login_ttl: int | None = None,
        extra_targets: str = "",
        parent_task_id: str | None = None,
        k1_seconds: int | None = None,
    ) -> pl.DataFrame:
        ids = self.ids
        spec = next(t for t in TEAMS if t.name == team)
        t0 = ts(start)
        d = int(minutes * MINUTE)
        d_s = d // US
        task_id = "task-" + ids.hex(1, 6)[0]
        node_no = int(stable_hex("node", agent, width=1), 16) % 200 + 20
        row = {
            "agent": agent,
            "team": team,
            "cloud": spec.cloud,
            "account": spec.account,
            "api_host": spec.api_host,
            "bucket": spec.bucket,
            "db_role": spec.db_role,
            "targets": spec.targets() + ("," + extra_targets if extra_targets else ""),
            "objective": spec.objectives[0],
            "task_id": task_id,
            "parent_task_id": parent_task_id,
            "t0": t0,
            "d": d,
            "use_end": t0 + d - 30 * US,
            "decision_id": ids.uuid(1)[0],
            "revision": REVISION_OLD if t0 + 2 * US < REVISION_CHANGE else REVISION_NEW,
            "node": f"ip-10-0-9-{node_no}.ec2.internal",
            "node_ip": f"10.0.9.{node_no}",
            "pod_ip": f"10.42.251.{node_no}",
            "pod_uid": ids.uuid(1)[0],
            "entity_id": stable_uuid("entity", agent),
            "sa_uid": stable_uuid("sa", agent),
            "sa_number": str(int(stable_hex("gsa", agent, width=8), 16))[:21],
            "login_acc": ids.b62(1, 24)[0],
            "login_hmac": "hmac-sha256:" + ids.hex(1, 32)[0],
            "login_ttl": login_ttl if login_ttl is not None else d_s + 300,
            "child_acc": ids.b62(1, 24)[0],
            "child_tok": "hvs.CAESI" + ids.b62(1, 86)[0],
            "child_hmac": "hmac-sha256:" + ids.hex(1, 32)[0],
            "child_ttl": child_ttl if child_ttl is not None else d_s + 600,
            "lease": f"database/creds/{spec.db_role}/" + ids.b62(1, 24)[0],
            "k0": ids.aws_key(1, "ASIA")[0],
            "k1": ids.aws_key(1, "ASIA")[0],
            "k0_seconds": 900,
            "k1_seconds": k1_seconds if k1_seconds is not None else d_s + 60,
            "gcp_seconds": d_s + 60,
            "k1_session": f"{agent}-{task_id[5:13]}",
            "base_role_id": flows.role_id(spec.base_role()),
            "task_role_id": flows.role_id(spec.task_role()),
            "trace_id": ids.hex(1, 16)[0],
            "span_id": ids.hex(1, 8)[0],
            "parent_span_id": None,
            "service": f"agent-worker-{team}",
            "object": f"exports/{start[:10]}/{task_id}.csv",
            "dup0": False,
            "dup1": False,
        }
        return pl.DataFrame(
            [row], schema_overrides={"parent_task_id": pl.String, "parent_span_id": pl.String}
        )

    # ---- shared pieces

    def span(self, task: pl.DataFrame) -> None:
        """The task's invoke_agent span (its window in the tasks table)."""
        self.out.otel(
            flows.invoke_agent(
                task,
                start=c("t0"),
                end=c("t0") + c("d"),
                agent=c("agent"),
                task=c("task_id"),
                span=c("span_id"),
                parent=c("parent_span_id"),
                service=c("service"),
                objective=c("objective"),
                targets=c("targets"),
            )
        )

    def login_and_child(self, task: pl.DataFrame, *, orphan: bool = False) -> None:
        self.out.vault(flows.vault_login(task, self.ids, self.hm))
        self.out.opa_grant(flows.grant_decision(task, self.ids))
        child = flows.vault_child_token(task, self.ids, self.hm)
        if orphan:
            child = child.with_columns(pl.lit("auth/token/create-orphan").alias("path"))
        self.out.vault(child)

    def revoke(self, task: pl.DataFrame, *, child: bool = True, login: bool = True) -> None:
        end = c("t0") + c("d")
        if child:
            self.out.vault(flows.vault_revoke_self(task, self.ids, end + 15 * US, "child"))
        if login:
            self.out.vault(flows.vault_revoke_self(task, self.ids, end + 20 * US, "login"))

    def call(
        self,
        task: pl.DataFrame,
        minute: float,
        *,
        method: str = "GET",
        code: int = 200,
        allowed: bool | None = None,
        decided: bool = True,
        **kw: pl.Expr,
    ) -> None:
        n = int(stable_hex(minute, method, width=2), 16) % 90_000 + 10_000
        env, dec = flows.proxied(
            task,
            self.ids,
            t=c("t0") + int(minute * MINUTE),
            method=method,
            path=pl.lit(f"/v1/orders/{n}"),
            code=code,
            allowed=allowed,
            decided=decided,
            **kw,
        )
        self.out.envoy(env)
        if dec.height:
            self.out.opa_envoy(dec)

    def row(self, task: pl.DataFrame, column: str) -> str:
        return str(task[column][0])

    def aws_session(self, task: pl.DataFrame, actions: list[str]) -> None:
        self.out.opa_grant(flows.grant_decision(task, self.ids, broker="aws-sts"))
        self.out.cloudtrail(flows.sts_web_identity(task, self.ids, t=c("t0") + 3 * US))
        self.out.cloudtrail(
            flows.sts_assume_task_role(task, self.ids, t=c("t0") + 4 * US, actions=actions)
        )


# ------------------------------------------------------------------------------------ cases


def jit001(k: Case) -> list[Finding]:
    t = k.task("worker-billing-c01", "2026-11-02T09:10:00", 20)
    k.span(t)
    k.login_and_child(t)
    k.out.vault(flows.vault_db_creds(t, k.ids, c("t0") + 2 * MINUTE))
    other = t.with_columns(
        f.cat("database/creds/hr-admin/", pl.lit(k.ids.b62(1, 24))).alias("lease")
    )
    k.out.vault(flows.vault_db_creds(other, k.ids, c("t0") + 5 * MINUTE, role=pl.lit("hr-admin")))
    end = c("t0") + c("d")
    k.out.vault(flows.vault_lease(t, k.ids, end + 8 * US, "revoke"))
    k.out.vault(flows.vault_lease(other, k.ids, end + 10 * US, "revoke"))
    k.revoke(t)
    return [
        Finding(
            "JIT-001",
            k.row(t, "agent"),
            k.row(t, "child_acc"),
            k.row(t, "task_id"),
            "read database/creds/hr-admin, outside the task's targets",
        )
    ]


def jit002(k: Case) -> list[Finding]:
    t = k.task("worker-billing-c02", "2026-11-02T10:40:00", 15, child_ttl=600, login_ttl=1500)
    k.span(t)
    k.login_and_child(t)
    k.call(t, 3)
    k.call(t, 11.5)  # the child token expired at t0+10m02s
    k.revoke(t, child=False)
    return [
        Finding(
            "JIT-002",
            k.row(t, "agent"),
            k.row(t, "child_acc"),
            k.row(t, "task_id"),
            "proxied call 87 s after the child token's TTL ran out",
        )
    ]


def jit003(k: Case) -> list[Finding]:
    t = k.task("worker-billing-c03", "2026-11-02T12:20:00", 20, child_ttl=1800)
    k.span(t)
    k.login_and_child(t)
    k.call(t, 3)
    k.out.vault(flows.vault_revoke_self(t, k.ids, c("t0") + 8 * MINUTE, "child"))
    k.call(t, 10)  # the gateway still honoured the revoked token
    k.revoke(t, child=False)
    return [
        Finding(
            "JIT-003",
            k.row(t, "agent"),
            k.row(t, "child_acc"),
            k.row(t, "task_id"),
            "proxied call 2 min after the child token was revoked",
        )
    ]


def jit004(k: Case) -> list[Finding]:
    t = k.task("worker-billing-c04", "2026-11-02T14:00:00", 20, child_ttl=3600)
    k.span(t)
    k.login_and_child(t)
    k.call(t, 5)
    k.revoke(t, child=False)
    return [
        Finding(
            "JIT-004",
            k.row(t, "agent"),
            k.row(t, "child_acc"),
            k.row(t, "task_id"),
            "child token never revoked; valid 40 min after the task ended",
        )
    ]


def jit005(k: Case) -> list[Finding]:
    t = k.task("worker-billing-c05", "2026-11-02T17:30:00", 20)
    k.span(t)
    k.aws_session(t, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"])
    k.out.cloudtrail(
        flows.s3_call(t, k.ids, t=c("t0") + 4 * MINUTE, name="GetObject", key=c("object"))
    )
    return [
        Finding(
            "JIT-005",
            k.row(t, "agent"),
            k.row(t, "k1"),
            k.row(t, "task_id"),
            "session policy allows Get/Put/DeleteObject; only GetObject used",
        )
    ]


def jit006(k: Case) -> list[Finding]:
    t = k.task(
        "worker-billing-c06",
        "2026-11-03T01:00:00",
        300,
        child_ttl=1800,
        login_ttl=3600,
        extra_targets="secret/data/billing/*",
    )
    k.span(t)
    k.login_and_child(t, orphan=True)
    k.out.vault(flows.vault_revoke_self(t, k.ids, c("t0") + 10 * US, "login"))
    for minute in (10, 130, 250):
        k.out.vault(
            flows.vault_kv_read(
                t, k.ids, c("t0") + minute * MINUTE, pl.lit("secret/data/billing/runbook")
            )
        )
    for n in range(1, 12):
        k.out.vault(flows.vault_renew_self(t, k.ids, c("t0") + n * 25 * MINUTE))
    k.revoke(t, login=False)
    return [
        Finding(
            "JIT-006",
            k.row(t, "agent"),
            k.row(t, "child_acc"),
            k.row(t, "task_id"),
            "child token renewed 11 times during one 5 h task",
        )
    ]


def jit007(k: Case) -> list[Finding]:
    t = k.task("worker-billing-c07", "2026-11-03T04:00:00", 30, child_ttl=43200)
    k.span(t)
    k.login_and_child(t)
    k.call(t, 5)
    k.revoke(t)
    return [
        Finding(
            "JIT-007",
            k.row(t, "agent"),
            k.row(t, "child_acc"),
            k.row(t, "task_id"),
            "child token TTL 12 h for a 30 min task (max 1 h)",
        )
    ]


def jit008(k: Case) -> list[Finding]:
    t = k.task(
        "worker-billing-c08", "2026-11-03T05:00:00", 20, extra_targets="secret/data/billing/*"
    )
    k.span(t)
    k.out.vault(flows.vault_login(t, k.ids, k.hm))
    k.out.vault(
        flows.vault_kv_read(
            t, k.ids, c("t0") + 3 * MINUTE, pl.lit("secret/data/billing/config"), token="login"
        )
    )
    k.revoke(t, child=False)
    return [
        Finding(
            "JIT-008",
            k.row(t, "agent"),
            k.row(t, "login_acc"),
            "",
            "login token (bound to no task) read secret/data/billing/config itself",
        )
    ]


def jit009(k: Case) -> list[Finding]:
    a = k.task("worker-billing-c09", "2026-11-03T06:00:00", 20)
    b = k.task("worker-billing-c19", "2026-11-03T06:00:10", 19.5).with_columns(
        task_id=pl.lit(a["task_id"][0]), trace_id=pl.lit(a["trace_id"][0])
    )
    k.span(a)
    k.login_and_child(a)
    k.login_and_child(b)  # b holds its own grant for the task but does not use it
    k.call(a, 3)
    k.call(b, 6, credential=pl.lit(a["child_acc"][0]), token=pl.lit(a["child_tok"][0]))
    k.revoke(a)
    k.revoke(b)
    return [
        Finding(
            "JIT-009",
            k.row(a, "agent"),
            k.row(a, "child_acc"),
            k.row(a, "task_id"),
            "worker-billing-c19 also used worker-billing-c09's child token within 1 h",
        )
    ]


def jit010(k: Case) -> list[Finding]:
    a = k.task("planner-c10", "2026-11-03T07:00:00", 25, extra_targets="warehouse.internal")
    k.span(a)
    k.login_and_child(a)
    b = k.task("worker-billing-c10", "2026-11-03T07:02:00", 15).with_columns(
        trace_id=pl.lit(a["trace_id"][0]),
        parent_span_id=pl.lit(a["span_id"][0]),
        parent_task_id=pl.lit(a["task_id"][0]),
    )
    k.span(b)
    k.out.otel(
        flows.execute_tool(
            b,
            k.ids,
            start=c("t0") + 4 * MINUTE,
            tool="query_warehouse",
            agent=c("agent"),
            task=pl.lit(a["task_id"][0]),
            parent=c("span_id"),
            service=c("service"),
            server=pl.lit("warehouse.internal"),
            credential=pl.lit(a["child_acc"][0]),
        )
    )
    k.revoke(a)
    return [
        Finding(
            "JIT-010",
            k.row(a, "agent"),
            k.row(a, "child_acc"),
            k.row(a, "task_id"),
            "delegate worker-billing-c10 used planner-c10's token with no grant or "
            "decision of its own",
        )
    ]


def jit011(k: Case) -> list[Finding]:
    t = k.task("worker-billing-c11", "2026-11-03T09:00:00", 20)
    k.span(t)
    k.login_and_child(t)
    k.call(t, 3, decided=False)  # bypassed the ext_authz filter
    k.call(t, 6, allowed=False)  # OPA denied, the sidecar failed open
    k.revoke(t)
    return [
        Finding(
            "JIT-011",
            k.row(t, "agent"),
            k.row(t, "child_acc"),
            k.row(t, "task_id"),
            "two successful proxied calls: one with no OPA decision, one OPA denied",
        )
    ]


def jit012(k: Case) -> list[Finding]:
    t = k.task("worker-billing-c12", "2026-11-03T11:00:00", 25)
    k.span(t)
    k.login_and_child(t)
    for i in range(6):
        k.call(t, 3 + i, method="DELETE", code=403)
    k.call(t, 10, method="DELETE", code=200)
    k.revoke(t)
    return [
        Finding(
            "JIT-012",
            k.row(t, "agent"),
            "",
            "",
            "6 denied DELETE /v1/orders/{id} in 6 min, then one succeeded",
        )
    ]


def jit013(k: Case) -> list[Finding]:
    t = k.task("worker-billing-c13", "2026-11-03T16:30:00", 20)
    k.span(t)
    k.aws_session(t, ["s3:GetObject"])
    k.out.cloudtrail(
        flows.s3_call(t, k.ids, t=c("t0") + 3 * MINUTE, name="GetObject", key=c("object"))
    )
    browser = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/131.0.0.0 Safari/537.36"
    )
    k.out.cloudtrail(
        flows.s3_call(
            t,
            k.ids,
            t=c("t0") + 8 * MINUTE,
            name="GetObject",
            key=c("object"),
            user_agent=browser,
            src_ip="198.51.100.23",
        )
    )
    return [
        Finding(
            "JIT-013",
            k.row(t, "agent"),
            k.row(t, "k1"),
            k.row(t, "task_id"),
            "the agent's STS session was used from a browser",
        )
    ]


def jit014(k: Case) -> list[Finding]:
    # the simulator's sinks do this: see organisation.CLOUDTRAIL_LATE_BIN and GCP_SILENCE
    return [
        Finding(
            "JIT-014",
            "",
            "",
            "",
            "cloudtrail: the batch after 2026-11-02T16:05Z was delivered 45 min late",
        ),
        Finding(
            "JIT-014",
            "",
            "",
            "",
            "gcp: no entries 2026-11-04T03:00Z-11:00Z while other sources reported",
        ),
    ]


def jit015(k: Case) -> list[Finding]:
    t = k.task(
        "worker-billing-c15", "2026-11-04T14:00:00", 20, extra_targets="secret/data/billing/*"
    )
    k.span(t)
    k.out.opa_grant(flows.grant_decision(t, k.ids, broker="vault"))
    k.out.vault(flows.vault_login(t, k.ids, k.hm, method="approle", meta=flows.child_meta()))
    approle_caller = {
        "caller_meta": flows.child_meta(),
        "caller_display": f.cat("approle-", c("agent")),
    }
    k.out.vault(
        flows.vault_call(
            t,
            k.ids,
            t=c("t0") + 3 * MINUTE,
            token="login",
            op="read",
            path=pl.lit("secret/data/billing/config"),
            mount="kv",
            resp_data=pl.lit(
                '{"data":{"api_key":"hmac-sha256:'
                + k.ids.hex(1, 32)[0]
                + '"},"metadata":{"version":3}}'
            ),
            overrides=approle_caller,
        )
    )
    k.out.vault(
        flows.vault_call(
            t,
            k.ids,
            t=c("t0") + c("d") + 20 * US,
            token="login",
            op="update",
            path=pl.lit("auth/token/revoke-self"),
            mount="token",
            overrides=approle_caller,
        )
    )
    return [
        Finding(
            "JIT-015",
            k.row(t, "agent"),
            k.row(t, "login_acc"),
            k.row(t, "task_id"),
            "token obtained by AppRole login (a static secret)",
        )
    ]


def jit016(k: Case) -> list[Finding]:
    t = k.task("worker-billing-c16", "2026-11-03T13:50:00", 30)
    k.span(t)
    k.login_and_child(t)
    k.call(t, 3)
    later = t.with_columns(pl.lit(REVISION_NEW).alias("revision_at_use"))
    k.call(later, 20)  # after the bundle moved to the new revision
    k.revoke(t)
    return [
        Finding(
            "JIT-016",
            k.row(t, "agent"),
            k.row(t, "child_acc"),
            k.row(t, "task_id"),
            f"granted under {REVISION_OLD}, used after the move to {REVISION_NEW}",
        )
    ]


CASES: tuple[Callable[[Case], list[Finding]], ...] = (
    jit001,
    jit002,
    jit003,
    jit004,
    jit005,
    jit006,
    jit007,
    jit008,
    jit009,
    jit010,
    jit011,
    jit012,
    jit013,
    jit014,
    jit015,
    jit016,
)


def inject(out: Output, seed: int) -> list[Finding]:
    case = Case(out, IdSource(seed, 3), flows.Hmac(seed))
    findings: list[Finding] = []
    for build in CASES:
        findings.extend(build(case))
    return findings
