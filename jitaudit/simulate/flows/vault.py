"""Vault: logins, child tokens, dynamic secrets, renewals and revocations."""

from __future__ import annotations

import polars as pl

from jitaudit.simulate.flows.common import VAULT_MOUNTS, Hmac, c, frame, lat
from jitaudit.simulate.organisation import (
    NAMESPACE,
    US,
    IdSource,
)
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers import vault


def login_meta() -> pl.Expr:
    return f.obj(
        ("role", f.cat('"agent-', c("team"), '"')),
        ("service_account_name", f.q(c("agent"))),
        ("service_account_namespace", f.lit(f'"{NAMESPACE}"')),
        ("service_account_secret_name", f.lit('""')),
        ("service_account_uid", f.q(c("sa_uid"))),
    )


def child_meta() -> pl.Expr:
    return f.obj(
        ("agent_id", f.q(c("agent"))),
        ("decision_id", f.q(c("decision_id"))),
        ("objective", f.text(c("objective"))),
        ("parent_task_id", f.q(c("parent_task_id"))),
        ("targets", f.q(c("targets"))),
        ("task_id", f.q(c("task_id"))),
    )


def policies(prefix: str) -> pl.Expr:
    return f.cat('["default","', f.lit(prefix), "-", c("team"), '"]')


def child_token_auth() -> pl.Expr:
    """The ``auth`` block of a task's child token, as its creation and its renewals show it."""
    return vault.token_auth(
        token=c("child_hmac"),
        accessor=c("child_acc"),
        display=f.cat("token-", c("agent")),
        entity=c("entity_id"),
        policies=policies("task"),
        meta=child_meta(),
        ttl=c("child_ttl"),
        issue=c("t0") + int(2.5 * US),
    )


def granting(prefix: str) -> pl.Expr:
    return f.cat(
        '[{"name":"default","namespace_id":"root","type":"acl"},{"name":"',
        f.lit(prefix),
        "-",
        c("team"),
        '","namespace_id":"root","type":"acl"}]',
    )


def caller(token: str) -> dict[str, pl.Expr]:
    """The calling token's columns: ``login`` (the agent's login token) or ``child``."""
    if token == "login":
        return {
            "caller_token": c("login_hmac"),
            "caller_accessor": c("login_acc"),
            "caller_display": f.cat("kubernetes-agents-", c("agent")),
            "caller_policies": policies("agent"),
            "caller_meta": login_meta(),
            "caller_ttl": c("login_ttl"),
            "caller_issue": c("t0") + 1 * US,
            "granting": granting("agent"),
        }
    return {
        "caller_token": c("child_hmac"),
        "caller_accessor": c("child_acc"),
        "caller_display": f.cat("token-", c("agent")),
        "caller_policies": policies("task"),
        "caller_meta": child_meta(),
        "caller_ttl": c("child_ttl"),
        "caller_issue": c("t0") + int(2.5 * US),
        "granting": granting("task"),
    }


def vault_call(
    tasks: pl.DataFrame,
    ids: IdSource,
    *,
    t: pl.Expr,
    token: str,
    op: str,
    path: pl.Expr,
    mount: str,
    lease: pl.Expr | None = None,
    resp_data: pl.Expr | None = None,
    req_data: pl.Expr | None = None,
    new_auth: pl.Expr | None = None,
    allowed: pl.Expr | bool = True,
    error: pl.Expr | str | None = None,
    overrides: dict[str, pl.Expr] | None = None,
) -> pl.DataFrame:
    """A request made with the agent's login or per-task token."""
    accessor, point, klass = VAULT_MOUNTS[mount]
    cols: dict[str, pl.Expr | str | int | bool | None] = {
        **caller(token),
        "t": t,
        "lat": lat(3.1),
        "req_id": pl.lit(ids.uuid(tasks.height)),
        "op": op,
        "path": path,
        "mount_type": "system" if mount == "system" else mount,
        "mount_accessor": accessor,
        "mount_point": point,
        "mount_class": klass,
        "remote_addr": c("pod_ip"),
        "remote_port": 41000 + (pl.int_range(pl.len(), dtype=pl.Int64) * 37) % 20000,
        "caller_entity": c("entity_id"),
        "allowed": pl.lit(allowed) if isinstance(allowed, bool) else allowed,
        "req_data": req_data,
        "new_auth": new_auth,
        "is_login": False,
        "lease": lease,
        "resp_data": resp_data,
        "error": error,
    }
    cols.update(overrides or {})
    return frame(vault.COLUMNS, tasks, **cols)


def vault_login(
    tasks: pl.DataFrame,
    ids: IdSource,
    hm: Hmac,
    *,
    method: str = "kubernetes",
    meta: pl.Expr | None = None,
) -> pl.DataFrame:
    """Login at t0+1 s: Kubernetes auth with the pod's service-account JWT (or AppRole)."""
    accessor, point, klass = VAULT_MOUNTS[method]
    display = f.cat(f"{method}-agents-" if method == "kubernetes" else "approle-", c("agent"))
    new = vault.token_auth(
        token=c("login_hmac"),
        accessor=c("login_acc"),
        display=display,
        entity=c("entity_id"),
        policies=policies("agent"),
        meta=login_meta() if meta is None else meta,
        ttl=c("login_ttl"),
        issue=None,
    )
    if method == "kubernetes":
        data = f.cat(
            '{"jwt":"hmac-sha256:',
            pl.lit(ids.hex(tasks.height, 32)),
            '","role":"',
            hm.col(tasks, f.cat("agent-", c("team"))),
            '"}',
        )
    else:
        data = f.cat(
            '{"role_id":"',
            hm.col(tasks, c("agent")),
            '","secret_id":"hmac-sha256:',
            pl.lit(ids.hex(tasks.height, 32)),
            '"}',
        )
    return frame(
        vault.COLUMNS,
        tasks,
        t=c("t0") + 1 * US,
        lat=lat(11.0),
        req_id=pl.lit(ids.uuid(tasks.height)),
        op="update",
        path=pl.lit(f"auth/{method}/login"),
        mount_type=method,
        mount_accessor=accessor,
        mount_point=point,
        mount_class=klass,
        remote_addr=c("pod_ip"),
        remote_port=40100 + (pl.int_range(pl.len(), dtype=pl.Int64) * 53) % 20000,
        allowed=True,
        granting=pl.lit(None),
        req_data=data,
        new_auth=new,
        is_login=True,
    )


def vault_child_token(tasks: pl.DataFrame, ids: IdSource, hm: Hmac) -> pl.DataFrame:
    """The broker-approved per-task child token, minted with the login token at t0+2.5 s."""
    meta = f.cat(
        '{"meta":{"agent_id":"',
        hm.col(tasks, c("agent")),
        '","decision_id":"',
        hm.col(tasks, c("decision_id")),
        '","objective":"',
        hm.col(tasks, c("objective")),
        '","targets":"',
        hm.col(tasks, c("targets")),
        '","task_id":"',
        hm.col(tasks, c("task_id")),
        '"},"policies":["',
        hm.col(tasks, f.cat("task-", c("team"))),
        '"],"ttl":"',
        hm.col(tasks, f.cat(f.num(c("child_ttl")), "s")),
        '"}',
    )
    new = child_token_auth()
    return vault_call(
        tasks,
        ids,
        t=c("t0") + int(2.5 * US),
        token="login",
        op="update",
        path=pl.lit("auth/token/create"),
        mount="token",
        req_data=meta,
        new_auth=new,
    )


def vault_db_creds(
    tasks: pl.DataFrame,
    ids: IdSource,
    t: pl.Expr,
    token: str = "child",
    role: pl.Expr | None = None,
) -> pl.DataFrame:
    """A dynamic database credential: a lease (grant) and a use of the reading token."""
    role = c("db_role") if role is None else role
    data = f.cat(
        '{"password":"hmac-sha256:',
        pl.lit(ids.hex(tasks.height, 32)),
        '","username":"hmac-sha256:',
        pl.lit(ids.hex(tasks.height, 32)),
        '"}',
    )
    return vault_call(
        tasks,
        ids,
        t=t,
        token=token,
        op="read",
        path=f.cat("database/creds/", role),
        mount="database",
        lease=c("lease"),
        resp_data=data,
    )


def vault_kv_read(
    tasks: pl.DataFrame, ids: IdSource, t: pl.Expr, path: pl.Expr, token: str = "child"
) -> pl.DataFrame:
    data = f.cat(
        '{"data":{"api_key":"hmac-sha256:',
        pl.lit(ids.hex(tasks.height, 32)),
        '"},"metadata":{"version":3}}',
    )
    return vault_call(
        tasks, ids, t=t, token=token, op="read", path=path, mount="kv", resp_data=data
    )


def vault_lease(tasks: pl.DataFrame, ids: IdSource, t: pl.Expr, action: str) -> pl.DataFrame:
    """Renew or revoke the task's lease by path (``sys/leases/<action>/<lease_id>``)."""
    return vault_call(
        tasks,
        ids,
        t=t,
        token="child",
        op="update",
        path=f.cat(f"sys/leases/{action}/", c("lease")),
        mount="system",
        lease=c("lease") if action == "renew" else None,
    )


def vault_revoke_self(tasks: pl.DataFrame, ids: IdSource, t: pl.Expr, token: str) -> pl.DataFrame:
    return vault_call(
        tasks,
        ids,
        t=t,
        token=token,
        op="update",
        path=pl.lit("auth/token/revoke-self"),
        mount="token",
    )


def vault_renew_self(tasks: pl.DataFrame, ids: IdSource, t: pl.Expr) -> pl.DataFrame:
    new = child_token_auth()
    return vault_call(
        tasks,
        ids,
        t=t,
        token="child",
        op="update",
        path=pl.lit("auth/token/renew-self"),
        mount="token",
        new_auth=new,
    )
