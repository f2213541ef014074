"""GCP: service-account access tokens and Cloud Storage reads."""

from __future__ import annotations

import polars as pl

from jitaudit.simulate.flows.common import GCP_NAT_IP, GCP_UA, c, frame
from jitaudit.simulate.organisation import (
    GCP_PROJECT,
    NAMESPACE,
    SKEW_US,
    US,
    IdSource,
)
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers import gcp


def gcp_labels() -> pl.Expr:
    return f.obj(
        ("decision_id", f.q(c("decision_id"))),
        ("objective", f.text(c("objective"))),
        ("targets", f.q(c("targets"))),
        ("task_id", f.q(c("task_id"))),
    )


def gcp_sa_email() -> pl.Expr:
    return f.cat(c("agent"), f"@{GCP_PROJECT}.iam.gserviceaccount.com")


def workload_subject() -> pl.Expr:
    return f.cat(f"serviceAccount:{GCP_PROJECT}.svc.id.goog[{NAMESPACE}/", c("agent"), "]")


def gcp_access_token(
    tasks: pl.DataFrame, ids: IdSource, *, t: pl.Expr, key_name: pl.Expr | None = None
) -> pl.DataFrame:
    """iamcredentials GenerateAccessToken for the agent's task service account."""
    n = tasks.height
    expires = t + SKEW_US["gcp"] + c("gcp_seconds") * US
    request = f.cat(
        '{"@type":"type.googleapis.com/google.iam.credentials.v1.GenerateAccessTokenRequest",'
        '"name":"projects/-/serviceAccounts/',
        gcp_sa_email(),
        '","lifetime":"',
        f.num(c("gcp_seconds")),
        's","scope":["https://www.googleapis.com/auth/devstorage.read_only"]}',
    )
    response = f.cat(
        '{"@type":"type.googleapis.com/google.iam.credentials.v1.GenerateAccessTokenResponse",'
        '"expireTime":"',
        f.instant(expires, f.ISO_S),
        '"}',
    )
    resource_labels = f.cat(
        '{"email_id":"',
        gcp_sa_email(),
        f'","project_id":"{GCP_PROJECT}",',
        '"unique_id":"',
        c("sa_number"),
        '"}',
    )
    return frame(
        gcp.COLUMNS,
        tasks,
        t=t,
        insert_id=pl.lit(ids.hex(n, 7)).str.slice(0, 12),
        service="iamcredentials.googleapis.com",
        method="GenerateAccessToken",
        resource_name=f.cat("projects/-/serviceAccounts/", c("sa_number")),
        principal_email=None
        if key_name is None
        else f.cat("deployer@", pl.lit(GCP_PROJECT), ".iam.gserviceaccount.com"),
        principal_subject=workload_subject() if key_name is None else None,
        sa_key=key_name,
        permission="iam.serviceAccounts.getAccessToken",
        granted=True,
        caller_ip=GCP_NAT_IP,
        caller_ua=GCP_UA,
        request=request,
        response=response,
        labels=gcp_labels(),
        resource_type="service_account",
        resource_labels=resource_labels,
        receive_delay=300_000 + (pl.int_range(pl.len(), dtype=pl.Int64) * 104_729) % 2_200_000,
    )


def gcs_get(tasks: pl.DataFrame, ids: IdSource, *, t: pl.Expr, key: pl.Expr) -> pl.DataFrame:
    n = tasks.height
    name = f.cat("projects/_/buckets/", c("bucket"), "/objects/", key)
    resource_labels = f.cat(
        '{"bucket_name":"',
        c("bucket"),
        '","location":"us-east1",',
        f'"project_id":"{GCP_PROJECT}"}}',
    )
    return frame(
        gcp.COLUMNS,
        tasks,
        t=t,
        insert_id=pl.lit(ids.hex(n, 7)).str.slice(0, 12),
        service="storage.googleapis.com",
        method="storage.objects.get",
        resource_name=name,
        principal_email=gcp_sa_email(),
        delegation=f.cat('[{"principalSubject":"', workload_subject(), '"}]'),
        permission="storage.objects.get",
        granted=True,
        caller_ip=GCP_NAT_IP,
        caller_ua=GCP_UA,
        labels=gcp_labels(),
        resource_type="gcs_bucket",
        resource_labels=resource_labels,
        receive_delay=250_000 + (pl.int_range(pl.len(), dtype=pl.Int64) * 91_283) % 1_900_000,
    )
