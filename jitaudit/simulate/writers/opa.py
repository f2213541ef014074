"""OPA decision logs: the Envoy sidecar's console lines and the grant broker's gzipped uploads.

Both OPAs run the same bundle (``jit-policies``), so a revision change shows in both. The
sidecar masks the ``authorization`` header (``system.log.mask``), which OPA records in
``erased``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from jitaudit.simulate.organisation import MINUTE, SKEW_US
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers.files import LineSink, Sink, daily, gzip_bytes

BUNDLE = "jit-policies"

ENVOY_COLUMNS: dict[str, type[pl.DataType] | pl.DataType] = {
    "t": pl.Int64,
    "decision_id": pl.String,
    "revision": pl.String,
    "allowed": pl.Boolean,
    "method": pl.String,
    "path": pl.String,
    "host": pl.String,
    "request_id": pl.String,
    "agent_id": pl.String,
    "task_id": pl.String,
    "credential_id": pl.String,
    "src_ip": pl.String,
    "src_port": pl.Int64,
    "user_agent": pl.String,
    "traceparent": pl.String,
    "envoy_id": pl.String,
}

GRANT_COLUMNS: dict[str, type[pl.DataType] | pl.DataType] = {
    "t": pl.Int64,
    "decision_id": pl.String,
    "revision": pl.String,
    "allowed": pl.Boolean,
    "agent_id": pl.String,
    "task_id": pl.String,
    "parent_task_id": pl.String,
    "objective": pl.String,
    "targets": pl.String,
    "broker": pl.String,
    "ttl": pl.Int64,
    "reason": pl.String,
    "requested_by": pl.String,
}


def _metrics(seq: pl.Expr) -> pl.Expr:
    # deterministic, plausible evaluation timings (ns)
    eval_ns = (seq * 7919) % 400_000 + 90_000
    return f.obj(
        ("counter_server_query_cache_hit", f.lit("1")),
        ("timer_rego_query_eval_ns", f.num(eval_ns)),
        ("timer_server_handler_ns", f.num(eval_ns + 61_000)),
    )


def render_envoy(df: pl.DataFrame) -> pl.DataFrame:
    c = pl.col
    t = c("t") + SKEW_US["opa"]
    seq = pl.int_range(pl.len(), dtype=pl.Int64)
    segments = c("path").str.split("?").list.first().str.strip_chars_start("/").str.split("/")
    parsed_path = f.cat("[", segments.list.eval(f.q(pl.element())).list.join(","), "]")
    headers = f.obj(
        (":authority", f.q(c("host"))),
        (":method", f.q(c("method"))),
        (":path", f.q(c("path"))),
        (":scheme", f.lit('"http"')),
        ("traceparent", f.q(c("traceparent"))),
        ("user-agent", f.q(c("user_agent"))),
        ("x-agent-id", f.q(c("agent_id"))),
        ("x-credential-id", f.q(c("credential_id"))),
        ("x-forwarded-proto", f.lit('"http"')),
        ("x-request-id", f.q(c("request_id"))),
        ("x-task-id", f.q(c("task_id"))),
    )
    http = f.obj(
        ("headers", headers),
        ("host", f.q(c("host"))),
        ("id", f.q(c("envoy_id"))),
        ("method", f.q(c("method"))),
        ("path", f.q(c("path"))),
        ("protocol", f.lit('"HTTP/1.1"')),
        ("scheme", f.lit('"http"')),
    )
    source = f.cat(
        '{"address":{"socketAddress":{"address":"',
        c("src_ip"),
        '","portValue":',
        f.num(c("src_port")),
        "}}}",
    )
    attributes = f.obj(
        (
            "destination",
            f.lit('{"address":{"socketAddress":{"address":"10.96.0.15","portValue":8080}}}'),
        ),
        ("metadataContext", f.lit("{}")),
        ("request", f.cat('{"http":', http, ',"time":"', f.instant(c("t"), f.ISO_US), '"}')),
        ("source", source),
    )
    inp = f.obj(
        ("attributes", attributes),
        ("parsed_body", f.lit("null")),
        ("parsed_path", parsed_path),
        ("parsed_query", f.lit("{}")),
        ("truncated_body", f.lit("false")),
        ("version", f.lit('{"encoding":"protojson","ext_authz":"v3"}')),
    )
    line = f.obj(
        ("bundles", f.cat('{"', f.lit(BUNDLE), '":{"revision":"', c("revision"), '"}}')),
        ("decision_id", f.q(c("decision_id"))),
        ("erased", f.lit('["/input/attributes/request/http/headers/authorization"]')),
        ("input", inp),
        ("labels", f.lit('{"id":"3b1f0c62-5d0e-4b8e-9f7a-opa-sidecar","version":"1.4.2-envoy"}')),
        ("level", f.lit('"info"')),
        ("metrics", _metrics(seq)),
        ("msg", f.lit('"Decision Log"')),
        ("path", f.lit('"envoy/authz/allow"')),
        ("requested_by", f.lit('""')),
        ("result", f.boolean(c("allowed"))),
        ("time", f.q(f.instant(t + 400, f.ISO_S))),
        ("timestamp", f.q(f.instant(t, f.ISO_NS))),
        ("type", f.lit('"openpolicyagent.org/decision_logs"')),
    )
    return df.select(t.alias("ts"), line.alias("line"))


def render_grant(df: pl.DataFrame) -> pl.DataFrame:
    c = pl.col
    t = c("t") + SKEW_US["opa"]
    seq = pl.int_range(pl.len(), dtype=pl.Int64)
    targets = f.cat(
        "[", c("targets").str.split(",").list.eval(f.q(pl.element())).list.join(","), "]"
    )
    task = f.obj(("id", f.q(c("task_id"))), ("parent_id", f.q(c("parent_task_id"))))
    inp = f.obj(
        ("action", f.lit('"issue_credential"')),
        ("agent", f.cat('{"id":"', c("agent_id"), '"}')),
        ("broker", f.q(c("broker"))),
        ("objective", f.text(c("objective"))),
        ("requested_targets", targets),
        ("requested_ttl_seconds", f.num(c("ttl"))),
        ("task", task),
    )
    result = f.obj(("allow", f.boolean(c("allowed"))), ("reason", f.text(c("reason"))))
    event = f.obj(
        ("labels", f.lit('{"app":"jit-broker","id":"9d41a7e2-opa-grants","version":"1.4.2"}')),
        ("decision_id", f.q(c("decision_id"))),
        ("bundles", f.cat('{"', f.lit(BUNDLE), '":{"revision":"', c("revision"), '"}}')),
        ("path", f.lit('"jit/grants/decision"')),
        ("input", inp),
        ("result", result),
        ("requested_by", f.q(c("requested_by"))),
        ("timestamp", f.q(f.instant(t, f.ISO_NS))),
        ("metrics", _metrics(seq)),
    )
    return df.select(t.alias("ts"), event.alias("line"))


def console_sink(out: Path) -> LineSink:
    return LineSink(out, daily("opa/envoy-sidecar/decision-log-", ".jsonl"))


UPLOAD_EVERY = 2 * MINUTE


class UploadSink(Sink):
    """Gzipped JSON arrays, one per upload interval, as OPA POSTs them to the log service.

    Some uploads are retried after a timeout although the service had stored the first
    attempt, so the same batch (same decision_ids) arrives twice.
    """

    def flush(self, upto: int | None) -> None:
        batch = pl.col("ts") // UPLOAD_EVERY
        final = None if upto is None else (batch + 1) * UPLOAD_EVERY <= upto
        ready = self._take(final)
        if not ready.height:
            return
        ready = ready.with_columns(batch.alias("batch"))
        grouped = ready.group_by("batch", maintain_order=True).agg(pl.col("line").str.join(","))
        for batch_no, body in grouped.iter_rows():
            payload = gzip_bytes(("[" + body + "]").encode())
            sends = 2 if is_retried(batch_no) else 1
            for attempt in range(sends):
                sent = (batch_no + 1) * UPLOAD_EVERY + 3_000_000 + attempt * 30_000_000
                stamp = pl.select(f.instant(pl.lit(sent), "%Y/%m/%d/%Y%m%dT%H%M%SZ")).item()
                name = f"opa/grant-approvals/uploads/{stamp}-{batch_no % 1_000_000:06d}.json.gz"
                self._write_bytes(name, payload)


def is_retried(batch_no: int) -> bool:
    """Whether the upload of this batch was sent twice (duplicate delivery)."""
    return batch_no % 23 == 7


def upload_sink(out: Path) -> UploadSink:
    return UploadSink(out)
