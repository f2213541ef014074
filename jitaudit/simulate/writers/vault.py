"""HashiCorp Vault file audit device: one JSON line per request and one per response.

Input frame, one row per request: see ``COLUMNS``. Sensitive strings are already
``hmac-sha256:<hex>`` (the audit device's salted HMAC); accessors are plaintext because the
device runs with ``hmac_accessor=false``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from jitaudit.simulate.organisation import SKEW_US
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers.files import LineSink, daily

COLUMNS: dict[str, type[pl.DataType] | pl.DataType] = {
    "t": pl.Int64,
    "lat": pl.Int64,
    "req_id": pl.String,
    "op": pl.String,
    "path": pl.String,
    "mount_type": pl.String,
    "mount_accessor": pl.String,
    "mount_point": pl.String,
    "mount_class": pl.String,
    "remote_addr": pl.String,
    "remote_port": pl.Int64,
    "caller_token": pl.String,  # hmac of the calling token; null on login
    "caller_accessor": pl.String,
    "caller_display": pl.String,
    "caller_entity": pl.String,
    "caller_policies": pl.String,  # JSON array
    "caller_meta": pl.String,  # JSON object
    "caller_ttl": pl.Int64,
    "caller_issue": pl.Int64,  # µs
    "allowed": pl.Boolean,
    "granting": pl.String,  # JSON array of granting policies
    "req_data": pl.String,  # JSON object or null
    "new_auth": pl.String,  # JSON object of an issued/renewed token or null
    "is_login": pl.Boolean,
    "lease": pl.String,
    "resp_data": pl.String,
    "error": pl.String,
}

VERSIONS = {
    "token": "v1.18.2+builtin.vault",
    "kubernetes": "v0.20.0+builtin",
    "approle": "v1.18.2+builtin.vault",
    "database": "v1.18.2+builtin.vault",
    "kv": "v0.21.0+builtin",
    "system": "v1.18.2+builtin.vault",
}


def hmac_of(salt: str, value: str) -> str:
    """The audit device's HMAC of a string (a stand-in keyed by the simulation seed)."""
    return "hmac-sha256:" + hashlib.sha256(f"{salt}\x00{value}".encode()).hexdigest()


def token_auth(
    *,
    token: pl.Expr,
    accessor: pl.Expr,
    display: pl.Expr,
    entity: pl.Expr,
    policies: pl.Expr,
    meta: pl.Expr,
    ttl: pl.Expr,
    issue: pl.Expr | None,
) -> pl.Expr:
    """The ``auth`` object Vault logs for a token (issued, renewed or calling)."""
    return f.obj(
        ("client_token", f.q(token)),
        ("accessor", f.q(accessor)),
        ("display_name", f.q(display)),
        ("entity_id", f.q(entity)),
        ("metadata", meta),
        ("policies", policies),
        ("token_policies", policies),
        ("token_type", f.lit('"service"')),
        ("token_ttl", f.num(ttl)),
        ("token_issue_time", None if issue is None else f.q(f.instant(issue, f.ISO_S))),
    )


def render(df: pl.DataFrame) -> pl.DataFrame:
    """Two rendered lines per request row: ``ts`` (logged µs) and ``line``."""
    c = pl.col
    skew = SKEW_US["vault"]
    policy_results = f.obj(
        ("allowed", f.boolean(c("allowed"))), ("granting_policies", c("granting"))
    )
    caller = f.obj(
        ("client_token", f.q(c("caller_token"))),
        ("accessor", f.q(c("caller_accessor"))),
        ("display_name", f.q(c("caller_display"))),
        ("entity_id", f.q(c("caller_entity"))),
        ("metadata", c("caller_meta")),
        ("policies", c("caller_policies")),
        ("policy_results", policy_results),
        ("token_policies", c("caller_policies")),
        ("token_issue_time", f.q(f.instant(c("caller_issue"), f.ISO_S))),
        ("token_ttl", f.num(c("caller_ttl"))),
        ("token_type", f.lit('"service"')),
    )
    login_req_auth = f.obj(("policy_results", policy_results), ("token_type", f.lit('"default"')))
    req_auth = pl.when(c("is_login")).then(login_req_auth).otherwise(caller)
    resp_auth = pl.when(c("is_login")).then(c("new_auth")).otherwise(caller)
    version = c("mount_type").replace_strict(VERSIONS, default="v1.18.2+builtin.vault")
    mount = [
        ("mount_accessor", f.q(c("mount_accessor"))),
        ("mount_class", f.q(c("mount_class"))),
        ("mount_point", f.q(c("mount_point"))),
    ]
    request = f.obj(
        ("id", f.q(c("req_id"))),
        ("client_id", f.q(c("caller_entity"))),
        ("client_token", f.q(c("caller_token"))),
        ("client_token_accessor", f.q(c("caller_accessor"))),
        ("data", c("req_data")),
        *mount,
        ("mount_running_version", f.q(version)),
        ("mount_type", f.q(c("mount_type"))),
        ("namespace", f.lit('{"id":"root"}')),
        ("operation", f.q(c("op"))),
        ("path", f.q(c("path"))),
        ("remote_address", f.q(c("remote_addr"))),
        ("remote_port", f.num(c("remote_port"))),
    )
    response = f.obj(
        ("mount_type", f.q(c("mount_type"))),
        ("auth", c("new_auth")),
        ("data", c("resp_data")),
        *mount,
        ("mount_running_plugin_version", f.q(version)),
        (
            "secret",
            pl.when(c("lease").is_not_null()).then(f.cat('{"lease_id":"', c("lease"), '"}')),
        ),
    )
    error = (
        pl.when(c("error").is_not_null())
        .then(f.cat(',"error":', f.text(c("error"))))
        .otherwise(pl.lit(""))
    )
    t_req = c("t") + skew
    t_resp = c("t") + c("lat") + skew
    req_line = f.cat(
        '{"time":"',
        f.instant(t_req, f.ISO_NS),
        '","type":"request","auth":',
        req_auth,
        ',"request":',
        request,
        error,
        "}",
    )
    resp_line = f.cat(
        '{"time":"',
        f.instant(t_resp, f.ISO_NS),
        '","type":"response","auth":',
        resp_auth,
        ',"request":',
        request,
        ',"response":',
        response,
        error,
        "}",
    )
    lines = df.select(
        pl.concat_list(t_req, t_resp).alias("ts"), pl.concat_list(req_line, resp_line).alias("line")
    )
    return lines.explode(["ts", "line"])


def sink(out: Path) -> LineSink:
    return LineSink(out, daily("vault/audit/vault_audit-", ".log"))
