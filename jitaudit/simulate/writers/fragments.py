"""Polars expressions that render JSON fragments, so whole columns of records format at once.

Values the simulator produces contain no characters that need escaping except free text, which
goes through ``text``.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

Part = str | pl.Expr


def cat(*parts: Part) -> pl.Expr:
    """Concatenate literal text and expressions (null if any expression is null)."""
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts], separator="")


def q(expr: pl.Expr) -> pl.Expr:
    """A JSON string of a value that needs no escaping."""
    return cat('"', expr.cast(pl.String), '"')


def text(expr: pl.Expr) -> pl.Expr:
    """A JSON string of free text (escapes backslashes and quotes)."""
    escaped = expr.cast(pl.String).str.replace_all("\\", "\\\\", literal=True)
    return cat('"', escaped.str.replace_all('"', '\\"', literal=True), '"')


def num(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String)


def boolean(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr).then(pl.lit("true")).otherwise(pl.lit("false"))


def obj(*members: tuple[str, pl.Expr | None]) -> pl.Expr:
    """A JSON object from (key, rendered value) pairs; a null value drops its member."""
    pieces = [cat(f',"{key}":', value) for key, value in members if value is not None]
    body = pl.concat_str(pieces, separator="", ignore_nulls=True).str.strip_prefix(",")
    return cat("{", body, "}")


def arr(items: Iterable[pl.Expr]) -> pl.Expr:
    return cat("[", pl.concat_str(list(items), separator=","), "]")


def str_list(values: Iterable[str]) -> pl.Expr:
    """A literal JSON array of strings."""
    return pl.lit("[" + ",".join(f'"{v}"' for v in values) + "]")


def lit(value: str) -> pl.Expr:
    return pl.lit(value)


def instant(us: pl.Expr, fmt: str) -> pl.Expr:
    """Format microseconds since the epoch with a chrono format string."""
    return us.cast(pl.Datetime("us")).dt.strftime(fmt)


ISO_S = "%Y-%m-%dT%H:%M:%SZ"
ISO_MS = "%Y-%m-%dT%H:%M:%S%.3fZ"
ISO_US = "%Y-%m-%dT%H:%M:%S%.6fZ"
ISO_NS = "%Y-%m-%dT%H:%M:%S%.9fZ"
#: how CloudTrail renders STS credential expiry: "Nov 2, 2026, 11:15:03 AM"
CLOUDTRAIL_EXPIRY = "%b %-d, %Y, %-I:%M:%S %p"
