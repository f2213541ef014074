"""Steps of a task's life, each turning a frame of tasks into one system's records.

The background calls every step on thousands of tasks at once; the injected cases call the
same steps on one-row frames and change what they need. A task frame carries the columns that
``background.dress`` builds (names, ids, secrets, times); a step returns a frame in the semantic
columns of one writer.
"""

from __future__ import annotations

import hashlib

import polars as pl

from jitaudit.simulate.organisation import (
    ACCOUNT,
    EKS_OIDC,
    GCP_PROJECT,
    NAMESPACE,
    REGION,
    SKEW_US,
    TEAMS,
    US,
    IdSource,
)
from jitaudit.simulate.writers import cloudtrail, envoy, gcp, kubernetes, opa, otel, vault
from jitaudit.simulate.writers import fragments as f

c = pl.col

BOTO_UA = (
    "Boto3/1.35.80 md/Botocore#1.35.80 ua/2.0 os/linux#6.1.0-28-cloud-amd64 md/arch#x86_64 "
    "lang/python#3.12.8 md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.35.80"
)
AGENT_UA = "agent-runtime/2.3.1 python-httpx/0.28.1"
KUBELET_UA = "kubelet/v1.31.4 (linux/amd64) kubernetes/a78aa47"
GCP_UA = "google-cloud-sdk/python gl-python/3.12.8 grpc/1.68.1 gax/2.24.0 gccl/2.19.0"
NAT_IP = "54.210.33.17"
GCP_NAT_IP = "34.75.18.201"

VAULT_MOUNTS = {
    "kubernetes": ("auth_kubernetes_3f1c9a2e", "auth/kubernetes/", "auth"),
    "approle": ("auth_approle_91d0b6c4", "auth/approle/", "auth"),
    "token": ("auth_token_0c9e4b71", "auth/token/", "auth"),
    "database": ("database_5ab1e0f2", "database/", "secret"),
    "kv": ("kv_7e25c0d9", "secret/", "secret"),
    "system": ("system_4d2a8f1b", "sys/", None),
}


def frame(
    schema: dict[str, type[pl.DataType] | pl.DataType],
    base: pl.DataFrame,
    **cols: pl.Expr | str | int | bool | None,
) -> pl.DataFrame:
    """Select a writer's semantic columns from ``base``; columns not given are null."""
    exprs = []
    for name, dtype in schema.items():
        value = cols.pop(name, None)
        expr = value if isinstance(value, pl.Expr) else pl.lit(value)
        exprs.append(expr.cast(dtype).alias(name))
    if cols:
        raise TypeError(f"unknown columns: {sorted(cols)}")
    return base.select(exprs)


def lat(ms: float) -> pl.Expr:
    """A response latency that varies a little from row to row (µs)."""
    return pl.lit(int(ms * 1000)) + (pl.int_range(pl.len(), dtype=pl.Int64) % 7) * 613


def at(fraction: float) -> pl.Expr:
    """A moment inside the task's usable window (where its uses happen)."""
    start = c("t0") + 6 * US
    return start + ((c("use_end") - start).cast(pl.Float64) * fraction).cast(pl.Int64)


class Hmac:
    """The audit device's HMAC of strings (deterministic per seed)."""

    def __init__(self, seed: int) -> None:
        self.salt = f"vault-audit-salt-{seed}"

    def one(self, value: str) -> str:
        return vault.hmac_of(self.salt, value)

    def col(self, base: pl.DataFrame, expr: pl.Expr) -> pl.Expr:
        """HMACs of an expression's values (computed once per distinct value)."""
        values = base.select(expr.cast(pl.String)).to_series().unique().drop_nulls().to_list()
        mapping = {v: self.one(v) for v in values}
        return expr.cast(pl.String).replace_strict(mapping, default=None, return_dtype=pl.String)


# --------------------------------------------------------------------------------- Vault


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
    new = vault.token_auth(
        token=c("child_hmac"),
        accessor=c("child_acc"),
        display=f.cat("token-", c("agent")),
        entity=c("entity_id"),
        policies=policies("task"),
        meta=child_meta(),
        ttl=c("child_ttl"),
        issue=c("t0") + int(2.5 * US),
    )
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
    new = vault.token_auth(
        token=c("child_hmac"),
        accessor=c("child_acc"),
        display=f.cat("token-", c("agent")),
        entity=c("entity_id"),
        policies=policies("task"),
        meta=child_meta(),
        ttl=c("child_ttl"),
        issue=c("t0") + int(2.5 * US),
    )
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


# ------------------------------------------------------------------------------- OPA + Envoy


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


# ----------------------------------------------------------------------------- Kubernetes


def token_request(
    tasks: pl.DataFrame, ids: IdSource, *, t: pl.Expr | None = None, seconds: int = 600
) -> tuple[pl.DataFrame, pl.Series]:
    """The kubelet requests the pod's projected service-account token (audience vault)."""
    jti = ids.uuid(tasks.height)
    request_object = f.cat(
        '{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":'
        '{"creationTimestamp":null},"spec":{"audiences":["vault"],"expirationSeconds":',
        pl.lit(str(seconds)),
        ',"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"',
        c("agent"),
        '-task","uid":"',
        c("pod_uid"),
        '"}},"status":{"token":"","expirationTimestamp":null}}',
    )
    annotations = kubernetes.authz_annotations(
        pl.lit(True), pl.lit(""), f.cat('"JTI=', pl.lit(jti), '"')
    )
    out = frame(
        kubernetes.COLUMNS,
        tasks,
        t=c("t0") + US // 2 if t is None else t,
        lat=lat(4.0),
        audit_id=pl.lit(ids.uuid(tasks.height)),
        level="Request",
        verb="create",
        uri=f.cat(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/", c("agent"), "/token"),
        username=f.cat("system:node:", c("node")),
        uid=None,
        groups=f.str_list(["system:nodes", "system:authenticated"]),
        extra=None,
        src_ip=c("node_ip"),
        user_agent=KUBELET_UA,
        objref=kubernetes.objref("serviceaccounts", pl.lit(NAMESPACE), c("agent"), "token"),
        code=201,
        annotations=annotations,
        request_object=request_object,
        duplicate=False,
    )
    return out, jti


# ------------------------------------------------------------------------------------ AWS


def role_id(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:17].upper()
    return "AROA" + digest.translate(str.maketrans("0189", "QRST"))


def _team_map(attr: str) -> pl.Expr:
    return c("team").replace_strict({t.name: getattr(t, attr)() for t in TEAMS}, default=None)


def session_policy(actions: list[str]) -> pl.Expr:
    """The session policy JSON string, as CloudTrail shows it (escaped inside a string)."""
    acts = ",".join(f'\\"{a}\\"' for a in actions)
    return f.cat(
        '"{\\"Version\\":\\"2012-10-17\\",\\"Statement\\":[{\\"Effect\\":\\"Allow\\",\\"Action\\":[',
        pl.lit(acts),
        '],\\"Resource\\":[\\"arn:aws:s3:::',
        c("bucket"),
        '/*\\"]}]}"',
    )


def sts_web_identity(tasks: pl.DataFrame, ids: IdSource, *, t: pl.Expr) -> pl.DataFrame:
    """AssumeRoleWithWebIdentity with the pod's EKS token: the agent's base session (K0)."""
    n = tasks.height
    base_role = _team_map("base_role")
    expires = t + SKEW_US["cloudtrail"] + c("k0_seconds") * US
    resp = f.cat(
        '{"credentials":',
        cloudtrail.credentials(c("k0"), pl.lit(ids.b62(n, 356)), expires),
        ',"subjectFromWebIdentityToken":"system:serviceaccount:agents:',
        c("agent"),
        '","assumedRoleUser":{"assumedRoleId":"',
        c("base_role_id"),
        ":",
        c("agent"),
        '","arn":"arn:aws:sts::',
        pl.lit(ACCOUNT),
        ":assumed-role/agent-base-",
        c("team"),
        "/",
        c("agent"),
        f'"}},"provider":"arn:aws:iam::{ACCOUNT}:oidc-provider/{EKS_OIDC}",'
        '"audience":"sts.amazonaws.com","sourceIdentity":"',
        c("agent"),
        '"}',
    )
    req = f.cat(
        '{"roleArn":"',
        base_role,
        '","roleSessionName":"',
        c("agent"),
        '","durationSeconds":',
        f.num(c("k0_seconds")),
        "}",
    )
    return frame(
        cloudtrail.COLUMNS,
        tasks,
        t=t,
        account=ACCOUNT,
        event_id=pl.lit(ids.uuid(n)),
        request_id=pl.lit(ids.uuid(n)),
        source="sts",
        name="AssumeRoleWithWebIdentity",
        ui=cloudtrail.web_identity_user(c("agent"), ACCOUNT),
        src_ip=NAT_IP,
        user_agent=BOTO_UA,
        req_params=req,
        resp=resp,
        resources=cloudtrail.role_resources(pl.lit(ACCOUNT), base_role),
        read_only=True,
        management=True,
        duplicate=c("dup0"),
    )


def sts_assume_task_role(
    tasks: pl.DataFrame, ids: IdSource, *, t: pl.Expr, actions: list[str], ui: pl.Expr | None = None
) -> pl.DataFrame:
    """AssumeRole with session tags and a session policy: the task session (K1).

    A role in another account is logged in both accounts with one ``sharedEventID``.
    """
    n = tasks.height
    task_role = _team_map("task_role")
    expires = t + SKEW_US["cloudtrail"] + c("k1_seconds") * US
    tags = f.cat(
        '[{"key":"agent_id","value":"',
        c("agent"),
        '"},{"key":"task_id","value":"',
        c("task_id"),
        '"},{"key":"objective","value":',
        f.text(c("objective")),
        '},{"key":"targets","value":"',
        c("targets"),
        '"},{"key":"decision_id","value":"',
        c("decision_id"),
        '"}]',
    )
    req = f.cat(
        '{"roleArn":"',
        task_role,
        '","roleSessionName":"',
        c("k1_session"),
        '","durationSeconds":',
        f.num(c("k1_seconds")),
        ',"policy":',
        session_policy(actions),
        ',"tags":',
        tags,
        ',"sourceIdentity":"',
        c("agent"),
        '"}',
    )
    resp = f.cat(
        '{"credentials":',
        cloudtrail.credentials(c("k1"), c("_stoken"), expires),
        ',"assumedRoleUser":{"assumedRoleId":"',
        c("task_role_id"),
        ":",
        c("k1_session"),
        '","arn":"arn:aws:sts::',
        c("account"),
        ":assumed-role/agent-task-",
        c("team"),
        "/",
        c("k1_session"),
        '"},"packedPolicySize":',
        pl.lit("31"),
        ',"sourceIdentity":"',
        c("agent"),
        '"}',
    )
    if ui is None:
        ui = cloudtrail.assumed_role(
            account=pl.lit(ACCOUNT),
            role=f.cat("agent-base-", c("team")),
            role_id=c("base_role_id"),
            session=c("agent"),
            key=c("k0"),
            created=c("t0") + 3 * US + SKEW_US["cloudtrail"],
            source_identity=c("agent"),
            web_identity=True,
        )
    cross = c("account") != ACCOUNT
    # per-row ids become columns first, so the partner account's copy can be a filtered view
    base = tasks.with_columns(
        pl.when(cross).then(pl.lit(ids.uuid(n))).alias("_shared"),
        pl.lit(ids.uuid(n)).alias("_request"),
        pl.lit(ids.uuid(n)).alias("_mine"),
        pl.lit(ids.uuid(n)).alias("_theirs"),
        pl.lit(ids.b62(n, 412)).alias("_stoken"),
    )
    common: dict[str, pl.Expr | str | bool] = dict(
        t=t,
        request_id=c("_request"),
        source="sts",
        name="AssumeRole",
        ui=ui,
        src_ip=NAT_IP,
        user_agent=BOTO_UA,
        req_params=req,
        resp=resp,
        resources=cloudtrail.role_resources(c("account"), task_role),
        read_only=True,
        management=True,
        shared_event_id=c("_shared"),
        duplicate=c("dup1"),
    )
    mine = frame(cloudtrail.COLUMNS, base, account=ACCOUNT, event_id=c("_mine"), **common)
    theirs = frame(
        cloudtrail.COLUMNS,
        base.filter(cross),
        account=c("account"),
        event_id=c("_theirs"),
        **common,
    )
    return pl.concat([mine, theirs])


def s3_call(
    tasks: pl.DataFrame,
    ids: IdSource,
    *,
    t: pl.Expr,
    name: str,
    key: pl.Expr,
    bucket: pl.Expr | None = None,
    user_agent: str = BOTO_UA,
    src_ip: str = NAT_IP,
    error: str | None = None,
    duplicate: pl.Expr | bool = False,
) -> pl.DataFrame:
    """An S3 data event made with the task session (K1)."""
    n = tasks.height
    bucket = c("bucket") if bucket is None else bucket
    read = name.startswith("Get") or name.startswith("List")
    req = f.cat(
        '{"bucketName":"',
        bucket,
        '","Host":"',
        bucket,
        f'.s3.{REGION}.amazonaws.com",',
        '"key":"',
        key,
        '"}',
    )
    add = f.cat(
        '{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":',
        pl.lit("0" if read else "18342"),
        ',"AuthenticationMethod":"AuthHeader","x-amz-id-2":"',
        pl.lit(ids.b62(n, 56)),
        '","bytesTransferredOut":',
        pl.lit("18342" if read else "0"),
        "}",
    )
    ui = cloudtrail.assumed_role(
        account=c("account"),
        role=f.cat("agent-task-", c("team")),
        role_id=c("task_role_id"),
        session=c("k1_session"),
        key=c("k1"),
        created=c("t0") + 4 * US + SKEW_US["cloudtrail"],
        source_identity=c("agent"),
        web_identity=False,
    )
    return frame(
        cloudtrail.COLUMNS,
        tasks,
        t=t,
        account=c("account"),
        event_id=pl.lit(ids.uuid(n)),
        request_id=pl.lit(ids.hex(n, 8)).str.to_uppercase(),
        source="s3",
        name=name,
        ui=ui,
        src_ip=src_ip,
        user_agent=user_agent,
        req_params=req,
        resp=None if read or error else pl.lit('{"x-amz-server-side-encryption":"AES256"}'),
        add_data=add,
        resources=cloudtrail.s3_resources(c("account"), bucket, key),
        read_only=read,
        management=False,
        error_code=error,
        error_message="Access Denied" if error else None,
        duplicate=duplicate,
    )


# ------------------------------------------------------------------------------------ GCP


def gcp_labels() -> pl.Expr:
    return f.obj(
        ("decision_id", f.q(c("decision_id"))),
        ("objective", f.text(c("objective"))),
        ("targets", f.q(c("targets"))),
        ("task_id", f.q(c("task_id"))),
    )


def gcp_sa_email() -> pl.Expr:
    return f.cat(c("agent"), f"@{GCP_PROJECT}.iam.gserviceaccount.com")


def workload_subject() -> pl.Expr:
    return f.cat(f"serviceAccount:{GCP_PROJECT}.svc.id.goog[{NAMESPACE}/", c("agent"), "]")


def gcp_access_token(
    tasks: pl.DataFrame, ids: IdSource, *, t: pl.Expr, key_name: pl.Expr | None = None
) -> pl.DataFrame:
    """iamcredentials GenerateAccessToken for the agent's task service account."""
    n = tasks.height
    expires = t + SKEW_US["gcp"] + c("gcp_seconds") * US
    request = f.cat(
        '{"@type":"type.googleapis.com/google.iam.credentials.v1.GenerateAccessTokenRequest",'
        '"name":"projects/-/serviceAccounts/',
        gcp_sa_email(),
        '","lifetime":"',
        f.num(c("gcp_seconds")),
        's","scope":["https://www.googleapis.com/auth/devstorage.read_only"]}',
    )
    response = f.cat(
        '{"@type":"type.googleapis.com/google.iam.credentials.v1.GenerateAccessTokenResponse",'
        '"expireTime":"',
        f.instant(expires, f.ISO_S),
        '"}',
    )
    resource_labels = f.cat(
        '{"email_id":"',
        gcp_sa_email(),
        f'","project_id":"{GCP_PROJECT}",',
        '"unique_id":"',
        c("sa_number"),
        '"}',
    )
    return frame(
        gcp.COLUMNS,
        tasks,
        t=t,
        insert_id=pl.lit(ids.hex(n, 7)).str.slice(0, 12),
        service="iamcredentials.googleapis.com",
        method="GenerateAccessToken",
        resource_name=f.cat("projects/-/serviceAccounts/", c("sa_number")),
        principal_email=None
        if key_name is None
        else f.cat("deployer@", pl.lit(GCP_PROJECT), ".iam.gserviceaccount.com"),
        principal_subject=workload_subject() if key_name is None else None,
        sa_key=key_name,
        permission="iam.serviceAccounts.getAccessToken",
        granted=True,
        caller_ip=GCP_NAT_IP,
        caller_ua=GCP_UA,
        request=request,
        response=response,
        labels=gcp_labels(),
        resource_type="service_account",
        resource_labels=resource_labels,
        receive_delay=300_000 + (pl.int_range(pl.len(), dtype=pl.Int64) * 104_729) % 2_200_000,
    )


def gcs_get(tasks: pl.DataFrame, ids: IdSource, *, t: pl.Expr, key: pl.Expr) -> pl.DataFrame:
    n = tasks.height
    name = f.cat("projects/_/buckets/", c("bucket"), "/objects/", key)
    resource_labels = f.cat(
        '{"bucket_name":"',
        c("bucket"),
        '","location":"us-east1",',
        f'"project_id":"{GCP_PROJECT}"}}',
    )
    return frame(
        gcp.COLUMNS,
        tasks,
        t=t,
        insert_id=pl.lit(ids.hex(n, 7)).str.slice(0, 12),
        service="storage.googleapis.com",
        method="storage.objects.get",
        resource_name=name,
        principal_email=gcp_sa_email(),
        delegation=f.cat('[{"principalSubject":"', workload_subject(), '"}]'),
        permission="storage.objects.get",
        granted=True,
        caller_ip=GCP_NAT_IP,
        caller_ua=GCP_UA,
        labels=gcp_labels(),
        resource_type="gcs_bucket",
        resource_labels=resource_labels,
        receive_delay=250_000 + (pl.int_range(pl.len(), dtype=pl.Int64) * 91_283) % 1_900_000,
    )


# ------------------------------------------------------------------------------ OpenTelemetry


def invoke_agent(
    tasks: pl.DataFrame,
    *,
    start: pl.Expr,
    end: pl.Expr,
    agent: pl.Expr,
    task: pl.Expr,
    span: pl.Expr,
    parent: pl.Expr | None,
    service: pl.Expr,
    objective: pl.Expr,
    targets: pl.Expr | None,
) -> pl.DataFrame:
    attributes = otel.attrs(
        otel.s_attr("gen_ai.operation.name", pl.lit("invoke_agent")),
        otel.s_attr("gen_ai.provider.name", pl.lit("openai")),
        otel.s_attr("gen_ai.agent.id", agent),
        otel.s_attr("gen_ai.agent.name", agent),
        otel.s_attr("gen_ai.conversation.id", task),
        otel.s_attr("gen_ai.request.model", pl.lit("gpt-4.1")),
        otel.s_attr("task.objective", objective),
        None if targets is None else otel.s_attr("task.targets", targets),
    )
    return frame(
        otel.COLUMNS,
        tasks,
        t_start=start,
        t_end=end,
        trace_id=c("trace_id"),
        span_id=span,
        parent_id=parent,
        name=f.cat("invoke_agent ", agent),
        kind=1,
        status=0,
        service=service,
        attrs=attributes,
    )


def chat(
    tasks: pl.DataFrame,
    ids: IdSource,
    *,
    start: pl.Expr,
    agent: pl.Expr,
    task: pl.Expr,
    parent: pl.Expr,
    service: pl.Expr,
) -> pl.DataFrame:
    n = tasks.height
    attributes = otel.attrs(
        otel.s_attr("gen_ai.operation.name", pl.lit("chat")),
        otel.s_attr("gen_ai.provider.name", pl.lit("openai")),
        otel.s_attr("gen_ai.request.model", pl.lit("gpt-4.1")),
        otel.s_attr("gen_ai.response.model", pl.lit("gpt-4.1-2025-04-14")),
        otel.s_attr("gen_ai.agent.id", agent),
        otel.s_attr("gen_ai.conversation.id", task),
        otel.i_attr("gen_ai.usage.input_tokens", 900 + pl.int_range(pl.len()) % 1400),
        otel.i_attr("gen_ai.usage.output_tokens", 120 + pl.int_range(pl.len()) % 380),
        otel.s_attr("server.address", pl.lit("api.openai.com")),
    )
    return frame(
        otel.COLUMNS,
        tasks,
        t_start=start,
        t_end=start + 2_400_000,
        trace_id=c("trace_id"),
        span_id=pl.lit(ids.hex(n, 8)),
        parent_id=parent,
        name="chat gpt-4.1",
        kind=3,
        status=0,
        service=service,
        attrs=attributes,
    )


def execute_tool(
    tasks: pl.DataFrame,
    ids: IdSource,
    *,
    start: pl.Expr,
    tool: str,
    agent: pl.Expr,
    task: pl.Expr,
    parent: pl.Expr,
    service: pl.Expr,
    server: pl.Expr | None = None,
    credential: pl.Expr | None = None,
    status: int = 1,
) -> pl.DataFrame:
    """A tool call (a use). Local tools have no server.address and no credential."""
    n = tasks.height
    attributes = otel.attrs(
        otel.s_attr("gen_ai.operation.name", pl.lit("execute_tool")),
        otel.s_attr("gen_ai.tool.name", pl.lit(tool)),
        otel.s_attr("gen_ai.tool.type", pl.lit("function")),
        otel.s_attr("gen_ai.tool.call.id", f.cat("call_", pl.lit(ids.b62(n, 24)))),
        otel.s_attr("gen_ai.agent.id", agent),
        otel.s_attr("gen_ai.conversation.id", task),
        None if server is None else otel.s_attr("server.address", server),
        None if credential is None else otel.s_attr("credential.id", credential),
    )
    return frame(
        otel.COLUMNS,
        tasks,
        t_start=start,
        t_end=start + 850_000,
        trace_id=c("trace_id"),
        span_id=pl.lit(ids.hex(n, 8)),
        parent_id=parent,
        name=f"execute_tool {tool}",
        kind=1,
        status=status,
        service=service,
        attrs=attributes,
    )
