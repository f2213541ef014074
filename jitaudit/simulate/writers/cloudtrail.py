"""AWS CloudTrail: gzip files holding ``{"Records":[...]}``, one per account, region and batch.

CloudTrail batches roughly five minutes of events per file and delivers it a few minutes later;
the S3 key carries the delivery time. A few records are delivered twice (in the next file), as
CloudTrail's at-least-once delivery does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from jitaudit.simulate.organisation import (
    ACCOUNT,
    CLOUDTRAIL_LATE_BIN,
    EKS_OIDC,
    MINUTE,
    REGION,
    SKEW_US,
)
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers.files import BATCH_5MIN, Sink, gzip_bytes

COLUMNS: dict[str, type[pl.DataType] | pl.DataType] = {
    "t": pl.Int64,
    "account": pl.String,
    "event_id": pl.String,
    "request_id": pl.String,
    "source": pl.String,  # service, e.g. "sts", "s3"
    "name": pl.String,
    "ui": pl.String,  # rendered userIdentity
    "src_ip": pl.String,
    "user_agent": pl.String,
    "req_params": pl.String,
    "resp": pl.String,
    "add_data": pl.String,
    "resources": pl.String,
    "read_only": pl.Boolean,
    "management": pl.Boolean,
    "error_code": pl.String,
    "error_message": pl.String,
    "shared_event_id": pl.String,
    "duplicate": pl.Boolean,
}


def web_identity_user(agent: pl.Expr, account: str) -> pl.Expr:
    subject = f.cat("system:serviceaccount:agents:", agent)
    return f.obj(
        ("type", f.lit('"WebIdentityUser"')),
        ("principalId", f.cat('"', f.lit(EKS_OIDC), ":sts.amazonaws.com:", subject, '"')),
        ("userName", f.q(subject)),
        ("identityProvider", f.lit(f'"arn:aws:iam::{account}:oidc-provider/{EKS_OIDC}"')),
    )


def assumed_role(
    *,
    account: pl.Expr,
    role: pl.Expr,
    role_id: pl.Expr,
    session: pl.Expr,
    key: pl.Expr,
    created: pl.Expr,
    source_identity: pl.Expr,
    web_identity: bool,
) -> pl.Expr:
    issuer = f.obj(
        ("type", f.lit('"Role"')),
        ("principalId", f.q(role_id)),
        ("arn", f.cat('"arn:aws:iam::', account, ":role/", role, '"')),
        ("accountId", f.q(account)),
        ("userName", f.q(role)),
    )
    web = (
        f.lit(
            f'{{"federatedProvider":"arn:aws:iam::111122223333:oidc-provider/{EKS_OIDC}",'
            '"attributes":{}}'
        )
        if web_identity
        else None
    )
    context = f.obj(
        ("sessionIssuer", issuer),
        ("webIdFederationData", web),
        (
            "attributes",
            f.cat(
                '{"creationDate":"', f.instant(created, f.ISO_S), '","mfaAuthenticated":"false"}'
            ),
        ),
        ("sourceIdentity", f.q(source_identity)),
    )
    return f.obj(
        ("type", f.lit('"AssumedRole"')),
        ("principalId", f.cat('"', role_id, ":", session, '"')),
        ("arn", f.cat('"arn:aws:sts::', account, ":assumed-role/", role, "/", session, '"')),
        ("accountId", f.q(account)),
        ("accessKeyId", f.q(key)),
        ("sessionContext", context),
    )


def credentials(key: pl.Expr, session_token: pl.Expr, expires: pl.Expr) -> pl.Expr:
    """STS credentials as CloudTrail logs them (expiry in the console's non-ISO form)."""
    return f.cat(
        '{"accessKeyId":"',
        key,
        '","sessionToken":"',
        session_token,
        '","expiration":"',
        f.instant(expires, f.CLOUDTRAIL_EXPIRY),
        '"}',
    )


def s3_resources(account: pl.Expr, bucket: pl.Expr, key: pl.Expr) -> pl.Expr:
    return f.cat(
        '[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::',
        bucket,
        "/",
        key,
        '"},{"accountId":"',
        account,
        '","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::',
        bucket,
        '"}]',
    )


def role_resources(account: pl.Expr, role_arn: pl.Expr) -> pl.Expr:
    return f.cat('[{"accountId":"', account, '","type":"AWS::IAM::Role","ARN":"', role_arn, '"}]')


def render(df: pl.DataFrame) -> pl.DataFrame:
    c = pl.col
    t = c("t") + SKEW_US["cloudtrail"]
    service = c("source")
    data = ~c("management")
    tls = f.cat(
        '{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"',
        pl.when(service == "s3")
        .then(c("req_params").str.extract(r'"Host":"([^"]+)"'))
        .otherwise(f.cat(service, ".amazonaws.com")),
        '"}',
    )
    record = f.obj(
        ("eventVersion", pl.when(data).then(pl.lit('"1.10"')).otherwise(pl.lit('"1.11"'))),
        ("userIdentity", c("ui")),
        ("eventTime", f.q(f.instant(t, f.ISO_S))),
        ("eventSource", f.cat('"', service, '.amazonaws.com"')),
        ("eventName", f.q(c("name"))),
        ("awsRegion", f.lit(f'"{REGION}"')),
        ("sourceIPAddress", f.q(c("src_ip"))),
        ("userAgent", f.text(c("user_agent"))),
        ("errorCode", f.q(c("error_code"))),
        ("errorMessage", f.text(c("error_message"))),
        ("requestParameters", c("req_params").fill_null("null")),
        ("responseElements", c("resp").fill_null("null")),
        ("additionalEventData", c("add_data")),
        ("requestID", f.q(c("request_id"))),
        ("eventID", f.q(c("event_id"))),
        ("readOnly", f.boolean(c("read_only"))),
        ("resources", c("resources")),
        ("eventType", f.lit('"AwsApiCall"')),
        ("managementEvent", f.boolean(c("management"))),
        ("recipientAccountId", f.q(c("account"))),
        ("sharedEventID", f.q(c("shared_event_id"))),
        ("eventCategory", pl.when(data).then(pl.lit('"Data"')).otherwise(pl.lit('"Management"'))),
        ("tlsDetails", tls),
    )
    return df.select(t.alias("ts"), c("account"), c("duplicate"), record.alias("line"))


class CloudTrailSink(Sink):
    def __init__(self, out: Path, seed: int) -> None:
        super().__init__(out)
        self.seed = seed
        self.late_bin: int | None = None

    def add(self, frame: pl.DataFrame) -> None:
        if not frame.height:
            return
        batch = pl.col("ts") // BATCH_5MIN
        copies = frame.filter(pl.col("duplicate")).with_columns((batch + 1).alias("bin"))
        super().add(pl.concat([frame.with_columns(batch.alias("bin")), copies]).drop("duplicate"))

    def delivery(self, account: str, batch: int) -> int:
        """Delivery time of a batch file (µs): one to four minutes after the batch closes."""
        digest = hashlib.sha256(f"{self.seed}:{account}:{batch}".encode()).digest()
        delay = 60_000_000 + int.from_bytes(digest[:4], "big") % 140_000_000
        if batch == self.late_bin:
            delay += 45 * MINUTE
        return (batch + 1) * BATCH_5MIN + delay

    def flush(self, upto: int | None) -> None:
        final = None if upto is None else (pl.col("bin") + 1) * BATCH_5MIN <= upto
        ready = self._take(final)
        if not ready.height:
            return
        grouped = (
            ready.sort(["bin", "account", "ts", "seq"])
            .group_by(["account", "bin"], maintain_order=True)
            .agg(pl.col("line").str.join(","))
        )
        for account, batch, body in grouped.iter_rows():
            if self.late_bin is None and account == ACCOUNT and batch >= CLOUDTRAIL_LATE_BIN:
                self.late_bin = batch  # the first batch from then on is delivered late
            sent = self.delivery(account, batch)
            stamp = pl.select(f.instant(pl.lit(sent), "%Y/%m/%d|%Y%m%dT%H%MZ")).item()
            folder, when = stamp.split("|")
            token = hashlib.sha256(f"{self.seed}:{account}:{batch}:file".encode()).hexdigest()
            suffix = token[:16].upper().translate(str.maketrans("0189", "QRST"))
            name = (
                f"cloudtrail/AWSLogs/{account}/CloudTrail/{REGION}/{folder}/"
                f"{account}_CloudTrail_{REGION}_{when}_{suffix}.json.gz"
            )
            payload = gzip_bytes(('{"Records":[' + body + "]}").encode())
            self._write_bytes(name, payload)
