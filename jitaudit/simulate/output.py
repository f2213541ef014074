"""Where generated records go: one sink per log, plus the canonical row counts they imply."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import polars as pl

from jitaudit.simulate.organisation import ACCOUNT, GCP_SILENCE, SKEW_US
from jitaudit.simulate.writers import cloudtrail, envoy, gcp, kubernetes, opa, otel, vault
from jitaudit.simulate.writers.files import Sink

STS_GRANTS = [
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "GetSessionToken",
    "GetFederationToken",
]
TABLES = ("grants", "grant_events", "uses", "decisions", "tasks")

#: the directories this simulator owns inside --out (cleared before writing)
OWNED = ("cloudtrail", "vault", "opa", "envoy", "otel", "kubernetes", "gcp")


class Output:
    """Renders semantic frames into their sinks and tallies expected canonical rows."""

    def __init__(self, out: Path, seed: int) -> None:
        self.sinks: dict[str, Sink] = {
            "vault": vault.sink(out),
            "opa_console": opa.console_sink(out),
            "opa_upload": opa.upload_sink(out),
            "envoy": envoy.sink(out),
            "cloudtrail": cloudtrail.CloudTrailSink(out, seed),
            "kubernetes": kubernetes.sink(out),
            "gcp": gcp.sink(out),
            "otel": otel.OtelSink(out),
        }
        self.counts: dict[str, dict[str, int]] = {t: defaultdict(int) for t in TABLES}
        self.events = 0

    def count(self, table: str, source: str, n: int) -> None:
        if n:
            self.counts[table][source] += n

    # one method per log; GCP drops what falls in its silent window

    def vault(self, df: pl.DataFrame) -> None:
        c = pl.col
        path = c("path")
        ok = c("error").is_null()
        token_grant = (
            (
                path.str.contains(r"^auth/[^/]+/login(/|$)")
                | path.str.starts_with("auth/token/create")
            )
            & c("new_auth").is_not_null()
            & ok
        )
        lease_grant = c("lease").is_not_null() & (c("op") == "read") & ok
        lifecycle = pl.any_horizontal(
            path.str.starts_with(p)
            for p in (
                "sys/leases/renew",
                "sys/leases/revoke",
                "auth/token/renew",
                "auth/token/revoke",
            )
        )
        # minting a child token is also a use of the token that asked for it
        use = ~lifecycle & c("caller_accessor").is_not_null()
        tally = df.select(
            token_grant.sum().alias("g"),
            lease_grant.sum().alias("l"),
            lifecycle.sum().alias("e"),
            use.sum().alias("u"),
        ).row(0)
        self.count("grants", "vault", tally[0] + tally[1])
        self.count("grant_events", "vault", tally[2])
        self.count("uses", "vault", tally[3])
        self.count("decisions", "vault", df.height)
        self._add("vault", vault.render(df))

    def opa_envoy(self, df: pl.DataFrame) -> None:
        self.count("decisions", "opa", df.height)
        self._add("opa_console", opa.render_envoy(df))

    def opa_grant(self, df: pl.DataFrame) -> None:
        self.count("decisions", "opa", df.height)
        self._add("opa_upload", opa.render_grant(df))

    def envoy(self, df: pl.DataFrame) -> None:
        self.count("uses", "envoy", df.height)
        self._add("envoy", envoy.render(df))

    def cloudtrail(self, df: pl.DataFrame) -> None:
        c = pl.col
        # the copy of a cross-account event with the lowest recipientAccountId is the one kept
        kept = df.filter(c("shared_event_id").is_null() | (c("account") == ACCOUNT))
        grant = c("name").is_in(STS_GRANTS) & c("error_code").is_null()
        revoke = (c("name") == "DeleteAccessKey") | (
            (c("name") == "PutRolePolicy") & c("req_params").str.contains("AWSRevokeOlderSessions")
        )
        use = c("ui").str.contains('"accessKeyId"', literal=True)
        tally = kept.select(
            grant.sum().alias("g"), revoke.sum().alias("e"), use.sum().alias("u")
        ).row(0)
        self.count("grants", "cloudtrail", tally[0])
        self.count("grant_events", "cloudtrail", tally[1])
        self.count("uses", "cloudtrail", tally[2])
        self._add("cloudtrail", cloudtrail.render(df))

    def kubernetes(self, df: pl.DataFrame) -> None:
        c = pl.col
        grant = (c("verb") == "create") & c("uri").str.ends_with("/token") & (c("code") < 300)
        self.count("grants", "kubernetes", int(df.select(grant.sum()).item()))
        self.count("uses", "kubernetes", df.height)
        self.count("decisions", "kubernetes", df.height)
        self._add("kubernetes", kubernetes.render(df))

    def gcp(self, df: pl.DataFrame) -> pl.DataFrame:
        logged = pl.col("t") + SKEW_US["gcp"]
        kept = df.filter(~logged.is_between(GCP_SILENCE[0], GCP_SILENCE[1], closed="left"))
        grant = pl.col("method").is_in(["GenerateAccessToken", "GenerateIdToken"])
        n_grants = int(kept.select(grant.sum()).item())
        self.count("grants", "gcp", n_grants)
        # a GenerateAccessToken call is also a use of the caller's identity
        self.count("uses", "gcp", kept.height)
        self._add("gcp", gcp.render(kept))
        return kept

    def otel(self, df: pl.DataFrame) -> None:
        kind = pl.col("name").str.split(" ").list.first()
        tally = df.select(
            (kind == "invoke_agent").sum().alias("t"), (kind == "execute_tool").sum().alias("u")
        ).row(0)
        self.count("tasks", "otel", tally[0])
        self.count("uses", "otel", tally[1])
        self._add("otel", otel.render(df))

    def _add(self, sink: str, frame: pl.DataFrame) -> None:
        self.events += frame.height
        self.sinks[sink].add(frame)

    def flush(self, upto: int | None) -> None:
        for sink in self.sinks.values():
            sink.flush(upto)

    def expected_counts(self) -> dict[str, dict[str, int]]:
        return {t: dict(sorted(self.counts[t].items())) for t in TABLES}
