"""OpenTelemetry GenAI spans as the collector's file exporter writes them: one OTLP JSON
``ExportTraceServiceRequest`` per line, batched every ten seconds per service."""

from __future__ import annotations

import polars as pl

from jitaudit.simulate.organisation import SKEW_US, US
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers.files import Sink

COLUMNS: dict[str, type[pl.DataType] | pl.DataType] = {
    "t_start": pl.Int64,
    "t_end": pl.Int64,
    "trace_id": pl.String,
    "span_id": pl.String,
    "parent_id": pl.String,
    "name": pl.String,
    "kind": pl.Int64,
    "status": pl.Int64,  # 0 unset, 1 ok, 2 error
    "service": pl.String,
    "attrs": pl.String,  # rendered OTLP attribute array
}

SCOPE = '{"name":"opentelemetry.instrumentation.agents","version":"0.52b1"}'
SCHEMA = "https://opentelemetry.io/schemas/1.37.0"
BATCH = 10 * US


def s_attr(key: str, value: pl.Expr) -> pl.Expr:
    return f.cat('{"key":"', f.lit(key), '","value":{"stringValue":', f.text(value), "}}")


def i_attr(key: str, value: pl.Expr) -> pl.Expr:
    return f.cat('{"key":"', f.lit(key), '","value":{"intValue":"', f.num(value), '"}}')


def attrs(*items: pl.Expr | None) -> pl.Expr:
    """An attribute array; absent (None) and null items are skipped."""
    present = [item for item in items if item is not None]
    return f.cat("[", pl.concat_str(present, separator=",", ignore_nulls=True), "]")


def render(df: pl.DataFrame) -> pl.DataFrame:
    c = pl.col
    skew = SKEW_US["otel"]
    status = (
        pl.when(c("status") == 2)
        .then(pl.lit('{"code":2,"message":"tool call failed"}'))
        .when(c("status") == 1)
        .then(pl.lit('{"code":1}'))
        .otherwise(pl.lit("{}"))
    )
    span = f.obj(
        ("traceId", f.q(c("trace_id"))),
        ("spanId", f.q(c("span_id"))),
        ("parentSpanId", f.q(c("parent_id"))),
        ("flags", f.lit("257")),
        ("name", f.text(c("name"))),
        ("kind", f.num(c("kind"))),
        ("startTimeUnixNano", f.cat('"', f.num((c("t_start") + skew) * 1000), '"')),
        ("endTimeUnixNano", f.cat('"', f.num((c("t_end") + skew) * 1000), '"')),
        ("attributes", c("attrs")),
        ("status", status),
    )
    return df.select((c("t_end") + skew).alias("ts"), c("service"), span.alias("line"))


class OtelSink(Sink):
    def flush(self, upto: int | None) -> None:
        batch = pl.col("ts") // BATCH
        final = None if upto is None else (batch + 1) * BATCH <= upto
        ready = self._take(final)
        if not ready.height:
            return
        grouped = (
            ready.with_columns(batch.alias("batch"))
            .sort(["batch", "service", "ts", "seq"])
            .group_by(["batch", "service"], maintain_order=True)
            .agg(pl.col("line").str.join(","))
        )
        resource = f.cat(
            '{"resourceSpans":[{"resource":{"attributes":[',
            '{"key":"service.name","value":{"stringValue":"',
            pl.col("service"),
            '"}},',
            '{"key":"k8s.namespace.name","value":{"stringValue":"agents"}},',
            '{"key":"telemetry.sdk.language","value":{"stringValue":"python"}}]},',
            f'"scopeSpans":[{{"scope":{SCOPE},"spans":[',
            pl.col("line"),
            "]}],",
            f'"schemaUrl":"{SCHEMA}"}}]}}',
        )
        files = grouped.select(
            f.cat(
                "otel/traces-",
                f.instant(pl.col("batch") * BATCH, "%Y-%m-%d"),
                ".jsonl",
            ).alias("file"),
            resource.alias("line"),
        )
        for name, lines in (
            files.group_by("file", maintain_order=True)
            .agg(pl.col("line").str.join("\n"))
            .iter_rows()
        ):
            self._append(name, lines + "\n")
