"""Kubernetes API server audit log: audit.k8s.io/v1 Event JSON lines, one per stage.

Every request is logged at ``RequestReceived`` and again at ``ResponseComplete``; rows flagged
``duplicate`` repeat their final line (the webhook/log backend's at-least-once delivery).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from jitaudit.simulate.organisation import SKEW_US
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers.files import LineSink, daily

COLUMNS: dict[str, type[pl.DataType] | pl.DataType] = {
    "t": pl.Int64,
    "lat": pl.Int64,
    "audit_id": pl.String,
    "level": pl.String,
    "verb": pl.String,
    "uri": pl.String,
    "username": pl.String,
    "uid": pl.String,
    "groups": pl.String,  # JSON array
    "extra": pl.String,  # JSON object or null
    "src_ip": pl.String,
    "user_agent": pl.String,
    "objref": pl.String,  # JSON object
    "code": pl.Int64,
    "annotations": pl.String,  # JSON object (final stage)
    "request_object": pl.String,  # JSON object or null
    "duplicate": pl.Boolean,
}


def objref(
    resource: str, namespace: pl.Expr, name: pl.Expr, subresource: str | None, api_group: str = ""
) -> pl.Expr:
    return f.obj(
        ("resource", f.lit(f'"{resource}"')),
        ("namespace", f.q(namespace)),
        ("name", f.q(name)),
        ("apiGroup", f.lit(f'"{api_group}"') if api_group else None),
        ("apiVersion", f.lit('"v1"')),
        ("subresource", f.lit(f'"{subresource}"') if subresource else None),
    )


def authz_annotations(allowed: pl.Expr, reason: pl.Expr, extra: pl.Expr | None = None) -> pl.Expr:
    decision = pl.when(allowed).then(pl.lit('"allow"')).otherwise(pl.lit('"forbid"'))
    return f.obj(
        ("authorization.k8s.io/decision", decision),
        ("authorization.k8s.io/reason", f.text(reason)),
        ("authentication.kubernetes.io/issued-credential-id", extra),
    )


def render(df: pl.DataFrame) -> pl.DataFrame:
    c = pl.col
    skew = SKEW_US["kubernetes"]
    received = c("t") + skew
    done = received + c("lat")
    user = f.obj(
        ("username", f.q(c("username"))),
        ("uid", f.q(c("uid"))),
        ("groups", c("groups")),
        ("extra", c("extra")),
    )
    failed = c("code") >= 400
    status = (
        pl.when(failed)
        .then(
            f.cat(
                '{"metadata":{},"status":"Failure","message":"',
                c("verb"),
                ' is forbidden: User \\"',
                c("username"),
                '\\" cannot ',
                c("verb"),
                ' resource","reason":"Forbidden","code":',
                f.num(c("code")),
                "}",
            )
        )
        .otherwise(f.cat('{"metadata":{},"code":', f.num(c("code")), "}"))
    )

    def event(stage: str, final: bool) -> pl.Expr:
        return f.obj(
            ("kind", f.lit('"Event"')),
            ("apiVersion", f.lit('"audit.k8s.io/v1"')),
            ("level", f.q(c("level"))),
            ("auditID", f.q(c("audit_id"))),
            ("stage", f.lit(f'"{stage}"')),
            ("requestURI", f.q(c("uri"))),
            ("verb", f.q(c("verb"))),
            ("user", user),
            ("sourceIPs", f.cat('["', c("src_ip"), '"]')),
            ("userAgent", f.text(c("user_agent"))),
            ("objectRef", c("objref")),
            ("responseStatus", status if final else None),
            ("requestObject", c("request_object") if final else None),
            ("requestReceivedTimestamp", f.q(f.instant(received, f.ISO_US))),
            ("stageTimestamp", f.q(f.instant(done if final else received, f.ISO_US))),
            ("annotations", c("annotations") if final else None),
        )

    first = event("RequestReceived", False)
    last = event("ResponseComplete", True)
    again = pl.when(c("duplicate")).then(last)
    lines = df.select(
        pl.concat_list(received, done, done + 1).alias("ts"),
        pl.concat_list(first, last, again).alias("line"),
    )
    return lines.explode(["ts", "line"]).drop_nulls("line")


def sink(out: Path) -> LineSink:
    return LineSink(out, daily("kubernetes/kube-apiserver-audit-", ".log"))
