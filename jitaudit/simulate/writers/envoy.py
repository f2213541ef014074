"""Envoy (Istio sidecar) access log: JSON lines with Istio's default keys plus agent headers.

A line is written when the request completes; ``authorization`` carries the bearer token as
the sidecar logged it (a secret the ingester must fingerprint).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from jitaudit.simulate.organisation import SKEW_US
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers.files import LineSink, daily

COLUMNS: dict[str, type[pl.DataType] | pl.DataType] = {
    "t": pl.Int64,
    "duration_ms": pl.Int64,
    "method": pl.String,
    "path": pl.String,
    "host": pl.String,
    "code": pl.Int64,
    "flags": pl.String,
    "details": pl.String,
    "request_id": pl.String,
    "agent_id": pl.String,
    "task_id": pl.String,
    "credential_id": pl.String,
    "token": pl.String,
    "src_ip": pl.String,
    "src_port": pl.Int64,
    "user_agent": pl.String,
    "upstream_host": pl.String,
    "bytes_in": pl.Int64,
    "bytes_out": pl.Int64,
}


def render(df: pl.DataFrame) -> pl.DataFrame:
    c = pl.col
    start = c("t") + SKEW_US["envoy"]
    ok = c("code") < 400
    upstream = pl.when(c("flags") == "UAEX").then(pl.lit(None)).otherwise(c("upstream_host"))
    line = f.obj(
        ("start_time", f.q(f.instant(start, f.ISO_MS))),
        ("agent_id", f.q(c("agent_id"))),
        ("authority", f.q(c("host"))),
        ("authorization", f.cat('"Bearer ', c("token"), '"')),
        ("bytes_received", f.num(c("bytes_in"))),
        ("bytes_sent", f.num(c("bytes_out"))),
        ("connection_termination_details", f.lit("null")),
        ("credential_id", f.q(c("credential_id"))),
        ("downstream_local_address", f.lit('"10.96.0.15:8080"')),
        ("downstream_remote_address", f.cat('"', c("src_ip"), ":", f.num(c("src_port")), '"')),
        ("duration", f.num(c("duration_ms"))),
        ("method", f.q(c("method"))),
        ("path", f.q(c("path"))),
        ("protocol", f.lit('"HTTP/1.1"')),
        ("request_id", f.q(c("request_id"))),
        ("requested_server_name", f.lit("null")),
        ("response_code", f.num(c("code"))),
        ("response_code_details", f.q(c("details"))),
        ("response_flags", f.q(c("flags"))),
        ("route_name", f.lit('"default"')),
        ("task_id", f.q(c("task_id"))),
        ("upstream_cluster", f.cat('"outbound|8080||', c("host"), '"')),
        (
            "upstream_host",
            pl.when(upstream.is_null()).then(pl.lit("null")).otherwise(f.cat('"', upstream, '"')),
        ),
        (
            "upstream_local_address",
            pl.when(ok).then(pl.lit('"10.42.7.3:41872"')).otherwise(pl.lit("null")),
        ),
        (
            "upstream_service_time",
            pl.when(ok).then(f.q(c("duration_ms") - 1)).otherwise(pl.lit("null")),
        ),
        ("upstream_transport_failure_reason", f.lit("null")),
        ("user_agent", f.q(c("user_agent"))),
        ("x_forwarded_for", f.lit("null")),
    )
    return df.select((start + c("duration_ms") * 1000).alias("ts"), line.alias("line"))


def sink(out: Path) -> LineSink:
    return LineSink(out, daily("envoy/istio-proxy-access-", ".log"))
