"""AWS: web-identity and task-role STS sessions, S3 calls."""

from __future__ import annotations

import hashlib

import polars as pl

from jitaudit.simulate.flows.common import BOTO_UA, NAT_IP, c, frame
from jitaudit.simulate.organisation import (
    ACCOUNT,
    EKS_OIDC,
    REGION,
    SKEW_US,
    TEAMS,
    US,
    IdSource,
)
from jitaudit.simulate.writers import cloudtrail
from jitaudit.simulate.writers import fragments as f


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
