"""GCP Cloud Audit Logs as a Cloud Storage sink writes them: hourly JSON-lines LogEntry shards."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from jitaudit.simulate.organisation import GCP_PROJECT, SKEW_US
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers.files import LineSink

COLUMNS: dict[str, type[pl.DataType] | pl.DataType] = {
    "t": pl.Int64,
    "insert_id": pl.String,
    "service": pl.String,
    "method": pl.String,
    "resource_name": pl.String,
    "principal_email": pl.String,
    "principal_subject": pl.String,
    "delegation": pl.String,  # JSON array or null
    "sa_key": pl.String,
    "permission": pl.String,
    "granted": pl.Boolean,
    "caller_ip": pl.String,
    "caller_ua": pl.String,
    "request": pl.String,
    "response": pl.String,
    "labels": pl.String,
    "resource_type": pl.String,
    "resource_labels": pl.String,
    "receive_delay": pl.Int64,
}


def render(df: pl.DataFrame) -> pl.DataFrame:
    c = pl.col
    t = c("t") + SKEW_US["gcp"]
    denied = ~c("granted")
    status = (
        pl.when(denied)
        .then(pl.lit('{"code":7,"message":"PERMISSION_DENIED"}'))
        .otherwise(pl.lit("{}"))
    )
    authn = f.obj(
        ("principalEmail", f.q(c("principal_email"))),
        ("principalSubject", f.q(c("principal_subject"))),
        ("serviceAccountKeyName", f.q(c("sa_key"))),
        ("serviceAccountDelegationInfo", c("delegation")),
    )
    authz = f.cat(
        '[{"resource":"',
        c("resource_name"),
        '","permission":"',
        c("permission"),
        '","granted":',
        f.boolean(c("granted")),
        ',"resourceAttributes":{}}]',
    )
    meta = f.cat(
        '{"callerIp":"',
        c("caller_ip"),
        '","callerSuppliedUserAgent":',
        f.text(c("caller_ua")),
        ',"requestAttributes":{"time":"',
        f.instant(t, f.ISO_NS),
        '","auth":{}},"destinationAttributes":{}}',
    )
    payload = f.obj(
        ("@type", f.lit('"type.googleapis.com/google.cloud.audit.AuditLog"')),
        ("status", status),
        ("authenticationInfo", authn),
        ("requestMetadata", meta),
        ("serviceName", f.q(c("service"))),
        ("methodName", f.q(c("method"))),
        ("authorizationInfo", authz),
        ("resourceName", f.q(c("resource_name"))),
        ("request", c("request")),
        ("response", c("response")),
    )
    entry = f.obj(
        ("protoPayload", payload),
        ("insertId", f.q(c("insert_id"))),
        (
            "resource",
            f.cat('{"type":"', c("resource_type"), '","labels":', c("resource_labels"), "}"),
        ),
        ("timestamp", f.q(f.instant(t, f.ISO_NS))),
        ("severity", pl.when(denied).then(pl.lit('"ERROR"')).otherwise(pl.lit('"INFO"'))),
        ("labels", c("labels")),
        (
            "logName",
            f.lit(f'"projects/{GCP_PROJECT}/logs/cloudaudit.googleapis.com%2Fdata_access"'),
        ),
        ("receiveTimestamp", f.q(f.instant(t + c("receive_delay"), f.ISO_NS))),
    )
    return df.select(t.alias("ts"), entry.alias("line"))


def sink(out: Path) -> LineSink:
    hour = pl.col("ts").cast(pl.Datetime("us"))
    name = pl.concat_str(
        [
            pl.lit("gcp/cloudaudit.googleapis.com/data_access/"),
            hour.dt.strftime("%Y/%m/%d/%H:00:00_"),
            hour.dt.strftime("%H:59:59_S0.json"),
        ]
    )
    return LineSink(out, name)
