"""Shared pieces of the task steps: user agents, addresses, mounts, frames, clocks, HMAC."""

from __future__ import annotations

import polars as pl

from jitaudit.simulate.organisation import (
    US,
)
from jitaudit.simulate.writers import vault

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
