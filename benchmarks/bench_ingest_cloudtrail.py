"""CloudTrail ingest: ~1M records in native gzip log files vs a bare DuckDB extraction.

Generates realistic ``{"Records":[…]}`` gzip files under the S3 key layout (vectorised in
DuckDB: records are built as SQL strings and aggregated per file, Python only gzips whole
files), then times (a) a bare ``read_json_objects`` + ``json_extract`` extraction of the same
columns the ingester reads and (b) ``jitaudit ingest`` of the same files into a fresh lake in a
child process (peak RSS). Memory is shown to be bounded by the batch size by ingesting two input
sizes (1/4 and all of the files) and comparing their peaks.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

import duckdb

from benchmarks.harness import Result, run_child, scaled
from jitaudit.ingest.cloudtrail_load import FIELDS

RECORDS = int(os.environ.get("JITAUDIT_BENCH_CT_RECORDS", str(scaled(1_000_000))))
PER_FILE = 1000
ACCT = "111122223333"

# one record as a SQL string expression over (i, f); ~1.1 KB, the mix of a busy agent account:
# 1 % STS AssumeRole grants (tags + session policy), 3 % AccessDenied, 2 % AWS-service calls
# without an access key, the rest S3 / DynamoDB / KMS calls made with session keys
_RECORD_SQL = r"""
'{"eventVersion":"1.09","userIdentity":' ||
  CASE WHEN i % 50 = 7 THEN '{"type":"AWSService","invokedBy":"s3.amazonaws.com"}'
       ELSE '{"type":"AssumedRole","principalId":"AROAEXAMPLE' || (i % 97) || ':task-' || (i % 997) ||
            '","arn":"arn:aws:sts::111122223333:assumed-role/agent-' || (i % 97) || '/task-' || (i % 997) ||
            '","accountId":"111122223333","accessKeyId":"ASIA' || lpad(CAST(i % 9973 AS VARCHAR), 16, '0') ||
            '","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLE' || (i % 97) ||
            '","arn":"arn:aws:iam::111122223333:role/agent-' || (i % 97) ||
            '","accountId":"111122223333","userName":"agent-' || (i % 97) ||
            '"},"attributes":{"creationDate":"2024-06-02T20:00:00Z","mfaAuthenticated":"false"}}}' END ||
',"eventTime":"' || strftime(TIMESTAMP '2024-06-02 00:00:00' + to_milliseconds(i * 80), '%Y-%m-%dT%H:%M:%SZ') ||
'","eventSource":"' || CASE WHEN i % 100 = 3 THEN 'sts' WHEN i % 10 = 4 THEN 'dynamodb' WHEN i % 10 = 5 THEN 'kms'
                            ELSE 's3' END || '.amazonaws.com","eventName":"' ||
  CASE WHEN i % 100 = 3 THEN 'AssumeRole' WHEN i % 10 = 4 THEN 'GetItem' WHEN i % 10 = 5 THEN 'Decrypt'
       WHEN i % 3 = 0 THEN 'PutObject' ELSE 'GetObject' END ||
'","awsRegion":"us-east-1","sourceIPAddress":"10.0.' || (i % 250) || '.' || (i % 199) ||
'","userAgent":"[Boto3/1.34.' || (i % 40) || ' md/Botocore#1.34.' || (i % 40) || ' ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.8]"' ||
CASE WHEN i % 100 = 3 THEN
  ',"requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/agent-' || (i % 97) ||
  '","roleSessionName":"task-' || i || '","durationSeconds":900,"tags":[{"key":"agent_id","value":"agent-' || (i % 97) ||
  '"},{"key":"task_id","value":"task-' || i || '"}],"policy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\",\"s3:PutObject\"],\"Resource\":\"arn:aws:s3:::bucket-' || (i % 13) ||
  '/*\"}]}"},"responseElements":{"credentials":{"accessKeyId":"ASIA' || lpad(CAST(i AS VARCHAR), 16, '0') ||
  '","sessionToken":"IQoJb3JpZ2luX2VjEXAMPLETOKEN' || i || '","expiration":"Jun 2, 2024, 11:37:12 PM"},"assumedRoleUser":{"assumedRoleId":"AROAEXAMPLE:task-' || i ||
  '","arn":"arn:aws:sts::111122223333:assumed-role/agent-' || (i % 97) || '/task-' || i || '"}}'
WHEN i % 10 = 4 THEN ',"requestParameters":{"tableName":"invoices-' || (i % 13) || '","key":{"id":{"S":"' || i || '"}},"consistentRead":false},"responseElements":null'
WHEN i % 10 = 5 THEN ',"requestParameters":{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{"aws:s3:arn":"arn:aws:s3:::bucket-' || (i % 13) || '/obj"}},"responseElements":null,"resources":[{"accountId":"111122223333","type":"AWS::KMS::Key","ARN":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-' || lpad(CAST(i % 13 AS VARCHAR), 12, '0') || '"}]'
ELSE ',"requestParameters":{"bucketName":"bucket-' || (i % 13) || '","Host":"bucket-' || (i % 13) || '.s3.us-east-1.amazonaws.com","key":"reports/2024/06/' || i ||
  '.csv"},"responseElements":null,"additionalEventData":{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"EXAMPLE' || i ||
  '","bytesTransferredOut":' || (i % 5000) || '},"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::bucket-' || (i % 13) || '/reports/2024/06/' || i ||
  '.csv"},{"accountId":"111122223333","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::bucket-' || (i % 13) || '"}]'
END ||
CASE WHEN i % 33 = 1 THEN ',"errorCode":"AccessDenied","errorMessage":"Access Denied"' ELSE '' END ||
',"requestID":"' || upper(md5(CAST(i AS VARCHAR)))[:16] || '","eventID":"' || uuid() ||
'","readOnly":true,"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"111122223333","eventCategory":"Data","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"bucket.s3.us-east-1.amazonaws.com"}}'
"""


def generate(root: Path, records: int) -> tuple[list[Path], int]:
    """Write ``records`` records as gzip log files; returns the files and the JSON bytes."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    files: list[Path] = []
    raw = 0
    n_files = (records + PER_FILE - 1) // PER_FILE
    chunk = 50  # files per query: bounded memory while generating
    for start in range(0, n_files, chunk):
        rows = con.execute(
            f"""SELECT f, '{{"Records":[' || string_agg(rec, ',' ORDER BY i) || ']}}'
                FROM (SELECT i, i // {PER_FILE} AS f, {_RECORD_SQL} AS rec
                      FROM range({start * PER_FILE}, {min(records, (start + chunk) * PER_FILE)}) t(i))
                GROUP BY f ORDER BY f"""
        ).fetchall()
        for f, text in rows:
            minute = int(f) * 5
            day = 2 + minute // 1440
            stamp = f"202406{day:02d}T{(minute // 60) % 24:02d}{minute % 60:02d}Z"
            d = root / "AWSLogs" / ACCT / "CloudTrail" / "us-east-1" / "2024" / "06" / f"{day:02d}"
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"{ACCT}_CloudTrail_us-east-1_{stamp}_{int(f):016X}.json.gz"
            data = text.encode()
            raw += len(data)
            comp = zlib.compressobj(6, zlib.DEFLATED, 31)
            path.write_bytes(comp.compress(data) + comp.flush())
            files.append(path)
    con.close()
    return files, raw


def baseline(files: list[Path]) -> int:
    """Bare DuckDB: the same columns the ingester extracts, materialised in a temp table."""
    # the ingest connection's memory limit and thread count, for a like-for-like figure
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.execute("SET enable_progress_bar = false")
    names = ", ".join(f"'{p}'" for p in files)
    paths = ", ".join(f"'{p}'" for p in FIELDS.values())
    cols = ", ".join(f"f[{i}] AS {c}" for i, c in enumerate(FIELDS, 1))
    con.execute(
        f"""CREATE TEMP TABLE t AS
        SELECT source_file, {cols} FROM (
          SELECT source_file, json_extract_string(rec, [{paths}]) AS f FROM (
            SELECT filename AS source_file, unnest(json_extract(json, '$.Records[*]')) AS rec
            FROM read_json_objects([{names}], filename=true, compression='gzip')))"""
    )
    n = int(con.execute("SELECT count(*) FROM t").fetchall()[0][0])
    con.close()
    return n


_CHILD = """
import sys
from jitaudit.cli import main
code = main(["ingest", sys.argv[1], "--lake", sys.argv[2], "--json", "--quiet"])
assert code == 0
"""


def _ingest(inputs: Path, lake: Path) -> tuple[float, float, dict[str, object]]:
    """Ingest in a child process: seconds, the child's own peak RSS (MiB), the summary."""
    seconds, peak, out = run_child(_CHILD, [str(inputs), str(lake)])
    # DuckDB's progress bar may share the child's stdout: read from the summary on
    summary: dict[str, dict[str, object]] = json.loads(out[out.index('{\n  "cloudtrail"') :])
    return seconds, peak, summary["cloudtrail"]


def run(workdir: Path) -> list[Result]:
    t0 = time.perf_counter()
    all_files, raw = generate(workdir / "logs", RECORDS)
    gen_s = time.perf_counter() - t0
    gz = sum(p.stat().st_size for p in all_files)
    # a quarter of the same files, for the memory-scaling comparison
    small = workdir / "small"
    for p in all_files[: len(all_files) // 4]:
        dest = small / p.relative_to(workdir / "logs")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(p, dest)

    base_s = time.perf_counter()
    n = baseline(all_files)
    base_s = time.perf_counter() - base_s

    big_s, big_peak, summary = _ingest(workdir / "logs", workdir / "lake")
    small_s, small_peak, _ = _ingest(small, workdir / "lake-small")
    read = int(str(summary["read"]))
    rate = RECORDS / big_s
    return [
        Result(
            f"generated {len(all_files)} gzip files ({raw / 2**30:.2f} GiB JSON, {gz / 2**20:.0f} MiB gz)",
            gen_s,
            "s",
        ),
        Result("bare DuckDB read_json_objects + json_extract", n / base_s, "records/s"),
        Result(
            "jitaudit ingest (child process, fresh lake)",
            rate,
            "records/s",
            ">= 150,000",
            rate >= 150_000,
        ),
        Result("records read by ingest", float(read), "records", f"= {RECORDS}", read == RECORDS),
        Result(
            "ingest time / bare extraction time",
            big_s / base_s,
            "x",
            "<= 1.5",
            big_s / base_s <= 1.5,
        ),
        Result(
            f"peak RSS, ingest of {RECORDS:,} records", big_peak, "MiB", "< 2048", big_peak < 2048
        ),
        Result(f"peak RSS, ingest of {RECORDS // 4:,} records", small_peak, "MiB"),
        Result(
            "peak RSS growth for 4x the input (bounded: ~1)",
            big_peak / small_peak,
            "x",
            "<= 1.3",
            big_peak / small_peak <= 1.3,
        ),
        Result("ingest of 1/4 of the files", RECORDS // 4 / small_s, "records/s"),
    ]
