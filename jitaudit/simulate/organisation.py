"""The simulated organisation: period, accounts, teams, agents, clocks and id makers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

US = 1_000_000  # microseconds per second
MINUTE = 60 * US
HOUR = 60 * MINUTE


def ts(text: str) -> int:
    """Microseconds since the epoch of an ISO instant (UTC)."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * US


PERIOD_START = ts("2026-11-02T00:00:00")
PERIOD_END = ts("2026-11-05T00:00:00")
#: the grant-approval policy bundle moves to a new revision at this instant
REVISION_CHANGE = ts("2026-11-03T14:00:00")
REVISION_OLD = "jit-policies@2026.11.01-r41"
REVISION_NEW = "jit-policies@2026.11.03-r42"
#: GCP's sink stops delivering here (injected JIT-014 silence)
GCP_SILENCE = (ts("2026-11-04T03:00:00"), ts("2026-11-04T11:00:00"))
#: the first CloudTrail batch from here on is delivered 45 min late (injected JIT-014 delay)
CLOUDTRAIL_LATE_BIN = ts("2026-11-02T16:05:00") // (5 * MINUTE)

ACCOUNT = "111122223333"
PARTNER_ACCOUNT = "444455556666"
REGION = "us-east-1"
GCP_PROJECT = "acme-agents"
GCP_PROJECT_NUMBER = "483920115524"
EKS_OIDC = "oidc.eks.us-east-1.amazonaws.com/id/5C1A9E07B3D24F0E8A61C2E9D4B7F310"
NAMESPACE = "agents"

#: fixed clock offset of each source against true time (a few seconds of skew)
SKEW_US: dict[str, int] = {
    "vault": 0,
    "opa": 350_000,
    "envoy": 1_200_000,
    "cloudtrail": -2_000_000,
    "kubernetes": 2_500_000,
    "gcp": -1_500_000,
    "otel": 800_000,
}


@dataclass(frozen=True)
class Team:
    """A team of worker agents and the systems its tasks touch."""

    name: str
    cloud: str  # "aws" or "gcp"
    account: str  # AWS account of the task role and bucket ("" for gcp)
    bucket: str
    api_host: str
    db_role: str
    objectives: tuple[str, ...]

    def targets(self) -> str:
        """The task's declared targets, comma-separated, in each system's naming."""
        vault = f"database/creds/{self.db_role}"
        if self.cloud == "aws":
            data = f"arn:aws:s3:::{self.bucket}/*"
        else:
            data = f"projects/_/buckets/{self.bucket}/objects/*"
        return ",".join((vault, data, self.api_host))

    def task_role(self) -> str:
        return f"arn:aws:iam::{self.account}:role/agent-task-{self.name}"

    def base_role(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/agent-base-{self.name}"


TEAMS: tuple[Team, ...] = (
    Team(
        "billing",
        "aws",
        ACCOUNT,
        "acme-billing-reports",
        "billing-api.internal",
        "billing-ro",
        (
            "Reconcile daily invoices against the ledger",
            "Prepare the dunning list for overdue accounts",
            "Summarise refunds issued yesterday",
        ),
    ),
    Team(
        "payments",
        "aws",
        PARTNER_ACCOUNT,
        "acme-payments-ledger",
        "payments-api.internal",
        "payments-ro",
        (
            "Match card settlements to orders",
            "Flag chargebacks that need evidence",
            "Export the settlement summary for finance",
        ),
    ),
    Team(
        "analytics",
        "gcp",
        "",
        "acme-analytics-exports",
        "metrics-api.internal",
        "analytics-ro",
        (
            "Build the weekly churn cohort table",
            "Refresh the product usage dashboard extract",
            "Score leads for the sales queue",
        ),
    ),
)


def worker_name(team: str, n: int) -> str:
    return f"worker-{team}-{n:03d}"


def planner_name(n: int) -> str:
    return f"planner-{n:03d}"


def gcp_sa(agent: str) -> str:
    return f"{agent}@{GCP_PROJECT}.iam.gserviceaccount.com"


def k8s_user(agent: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{agent}"


# ---------------------------------------------------------------------------------------------
# id makers: vectorised (numpy random bytes → polars strings) for the background,
# and a seeded scalar maker for the hand-built injections


HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
BASE62 = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)


def random_text(rng: np.random.Generator, n: int, length: int, alphabet: np.ndarray) -> pl.Series:
    """n random strings of ``length`` characters drawn from ``alphabet`` (vectorised)."""
    picks = rng.integers(0, len(alphabet), size=(n, length), dtype=np.int64)
    chars = np.ascontiguousarray(alphabet[picks])
    # the characters are never NUL, so the fixed-width bytes view loses nothing
    raw = pl.Series(chars.view(f"S{length}").ravel(), dtype=pl.Binary)
    return raw.cast(pl.String)


def hex_ids(rng: np.random.Generator, n: int, width: int) -> pl.Series:
    """n random ids of ``width`` bytes as lowercase hex."""
    return random_text(rng, n, 2 * width, HEX)


def uuid_expr(hex32: pl.Expr) -> pl.Expr:
    """Format 32 hex digits as a version-4 style UUID."""
    return pl.concat_str(
        [
            hex32.str.slice(0, 8),
            hex32.str.slice(8, 4),
            pl.lit("4") + hex32.str.slice(13, 3),
            pl.lit("a") + hex32.str.slice(17, 3),
            hex32.str.slice(20, 12),
        ],
        separator="-",
    )


def aws_key_expr(prefix: str, hex16: pl.Expr) -> pl.Expr:
    """An AWS access key id: prefix + 16 characters of A-Z and 2-7."""
    digits = hex16.str.to_uppercase().str.replace_many(["0", "1", "8", "9"], ["Q", "R", "S", "T"])
    return pl.lit(prefix) + digits


class IdSource:
    """Vectorised random ids from one seeded generator (deterministic per seed)."""

    def __init__(self, seed: int, stream: int) -> None:
        self.rng = np.random.default_rng([seed, stream])

    def hex(self, n: int, width: int) -> pl.Series:
        return hex_ids(self.rng, n, width)

    def uuid(self, n: int) -> pl.Series:
        return pl.select(uuid_expr(pl.lit(self.hex(n, 16)))).to_series()

    def b62(self, n: int, length: int) -> pl.Series:
        return random_text(self.rng, n, length, BASE62)

    def aws_key(self, n: int, prefix: str) -> pl.Series:
        return pl.select(aws_key_expr(prefix, pl.lit(self.hex(n, 8)))).to_series()

    def ints(self, n: int, low: int, high: int) -> np.ndarray:
        return self.rng.integers(low, high, size=n)

    def uniform(self, n: int) -> np.ndarray:
        return self.rng.random(n)


def stable_hex(*parts: object, width: int = 16) -> str:
    """A deterministic hex id derived from names (entity ids, uids)."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[: 2 * width]


def stable_uuid(*parts: object) -> str:
    h = stable_hex(*parts)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
