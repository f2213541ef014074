"""OpenTelemetry GenAI spans: agent invocations, chats and tool calls."""

from __future__ import annotations

import polars as pl

from jitaudit.simulate.flows.common import c, frame
from jitaudit.simulate.organisation import (
    IdSource,
)
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers import otel


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
