"""Envoy ingest: 1,000,000 Istio JSON access log lines against a bare DuckDB read of them.

The files are generated in DuckDB (vectorised) as eight rotated 90 MB files, as a sidecar's
log rotation would leave them. The baseline reads the same files with ``read_json`` and keeps
the columns the ingester uses; ``jitaudit ingest`` runs in a child process of its own, so its
peak RSS is measured cleanly. Target: ingest ≤ 1.5 × the baseline.

A floor puts the target in proportion: in one child, the same read into memory, then the two
steps no ingest may skip, the keyed fingerprint of every ``authorization`` header (the header
is never stored) and the zstd Parquet write of the columns the lake keeps of it (with the
fingerprint in place of the header), each timed on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from benchmarks.harness import Result, run_child, scaled
from jitaudit.ingest.envoy import DEFAULT_KEYS

LINES = scaled(1_000_000)
FILES = 8
TARGET_RATIO = 1.5

#: the keys the ingester reads (Istio's default keys + the agent headers) that the files carry
COLUMNS = tuple(k for k in DEFAULT_KEYS if k not in ("principal_id", "trace_id"))

_RECORD = """
  strftime(TIMESTAMP '2026-11-01 10:00:00' + to_microseconds(i * 1000), '%Y-%m-%dT%H:%M:%S.%g')
    || 'Z' AS start_time,
  ['GET', 'POST', 'PUT', 'DELETE'][1 + i % 4] AS method,
  '/orders/' || (i % 9973) || '/items'
    || CASE WHEN i % 10 = 0 THEN '?access_token=tok' || i ELSE '' END AS path,
  'HTTP/1.1' AS protocol,
  CASE WHEN i % 50 = 0 THEN 403 WHEN i % 97 = 0 THEN 503 ELSE 200 END AS response_code,
  CASE WHEN i % 50 = 0 THEN 'UAEX' WHEN i % 97 = 0 THEN 'URX' ELSE '-' END AS response_flags,
  CASE WHEN i % 50 = 0 THEN 'ext_authz_denied' ELSE 'via_upstream' END AS response_code_details,
  NULL AS connection_termination_details,
  i % 2000 AS bytes_received, i % 5000 AS bytes_sent, i % 300 AS duration,
  CAST(i % 250 AS VARCHAR) AS upstream_service_time,
  NULL AS x_forwarded_for,
  'agent-sdk/1.2' AS user_agent,
  CAST(uuid() AS VARCHAR) AS request_id,
  'api-' || (i % 20) || '.internal:8443' AS authority,
  '10.2.0.' || (i % 250) || ':8443' AS upstream_host,
  'outbound|8443||api.internal' AS upstream_cluster,
  '10.3.' || (i % 250) || '.' || (i % 200) || ':' || (30000 + i % 20000)
    AS downstream_remote_address,
  NULL AS requested_server_name,
  'default' AS route_name,
  'agent-' || (i % 500) AS agent_id,
  'task-' || (i % 5000) AS task_id,
  CASE WHEN i % 3 = 0 THEN NULL ELSE 'cred-' || (i % 700) END AS credential_id,
  'Bearer eyJhbGciOi.' || md5(CAST(i % 700 AS VARCHAR)) || '.sig' AS authorization
"""

_BASELINE = """
import sys, duckdb
files, columns = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(
    "CREATE TABLE t AS SELECT * FROM read_json(" + files + ", format='newline_delimited', "
    "columns=" + columns + ")"
)
print(con.execute("SELECT count(*) FROM t").fetchall()[0][0])
"""

_FLOOR = """
import sys, time, duckdb
from jitaudit.ingest import transforms
from jitaudit.lake import ZSTD_LEVEL
files, columns, out = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
transforms.register(con, bytes(32))
header = '"authorization"'
steps = {
    "read": "CREATE TABLE t AS SELECT * FROM read_json(" + files + ", "
            "format='newline_delimited', columns=" + columns + ")",
    "fingerprint": "CREATE TABLE f AS SELECT bearer_fp(" + header + ") AS fp FROM t",
    # the header itself is never written: its fingerprint is, as in the lake; the counters
    # and addresses no canonical column keeps are left out too
    "write": "COPY (SELECT * EXCLUDE (" + header + ", protocol, bytes_received, bytes_sent, "
             "duration, upstream_host), f.fp FROM t POSITIONAL JOIN f) TO '"
             + out + "' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL "
             + str(ZSTD_LEVEL) + ")",
}
for name, sql in steps.items():
    t0 = time.perf_counter()
    con.execute(sql)
    print(name, time.perf_counter() - t0)
"""

_INGEST = """
import sys
from jitaudit.cli import main
sys.exit(main(["ingest", sys.argv[1], "--lake", sys.argv[2], "--format", "envoy", "--quiet"]))
"""


def generate(out: Path, lines: int = LINES, files: int = FILES) -> list[Path]:
    """``files`` JSON-lines files holding ``lines`` Istio access log records in all."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    paths = []
    for k in range(files):
        path = out / f"istio-proxy-{k}.log"
        lo, hi = k * lines // files, (k + 1) * lines // files
        con.execute(
            f"COPY (SELECT {_RECORD} FROM range({lo}, {hi}) t(i)) TO '{path}' (FORMAT json)"
        )
        paths.append(path)
    con.close()
    return paths


def run(workdir: Path) -> list[Result]:
    paths = generate(workdir / "logs")
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    files = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    # typed JSON: numbers stay numbers in the baseline, as a reader of these files would see
    columns = json.dumps({c: "VARCHAR" for c in COLUMNS}).replace('"', "'")
    base_s, _, out = run_child(_BASELINE, [files, columns])
    assert int(out.strip()) == LINES, out
    ingest_s, peak_mb, _ = run_child(_INGEST, [str(workdir / "logs"), str(workdir / "lake")])
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT count(*) FROM read_parquet('{workdir / 'lake' / 'uses'}/**/*.parquet')"
    ).fetchall()[0][0]
    con.close()
    assert rows == LINES, rows
    ratio = ingest_s / base_s
    _, _, floor_out = run_child(_FLOOR, [files, columns, str(workdir / "floor.parquet")])
    floor = {k: float(v) for k, v in (line.split() for line in floor_out.splitlines())}
    floor_s = sum(floor.values())
    return [
        Result(f"envoy: input ({FILES} files, {LINES:,} lines)", size_mb, "MB"),
        Result("envoy: bare DuckDB read_json of the same columns", base_s, "s"),
        Result("envoy: jitaudit ingest", ingest_s, "s"),
        Result("envoy: ingest throughput", LINES / ingest_s, "lines/s"),
        Result("envoy: ingest / baseline", ratio, "x", f"<= {TARGET_RATIO}", ratio <= TARGET_RATIO),
        Result("envoy: ingest peak RSS", peak_mb, "MiB"),
        Result("envoy floor: read in memory", floor["read"], "s"),
        Result("envoy floor: fingerprint every authorization header", floor["fingerprint"], "s"),
        Result("envoy floor: zstd Parquet write of the columns kept", floor["write"], "s"),
        Result("envoy floor: the three / baseline", floor_s / base_s, "x"),
    ]
