"""Load CloudTrail files into one parsed-record table (``ct_rec``), never losing a record.

Every container CloudTrail uses is unwrapped to plain records: ``{"Records":[…]}`` log files
(one JSON document, usually gzip), NDJSON of records, EventBridge envelopes (``detail``, one per
line or concatenated as Firehose writes them) and ``LookupEvents`` output (``Events[]`` whose
``CloudTrailEvent`` is the record as a JSON *string*).

The fast path is DuckDB's ``read_json_objects`` over the whole batch + ``json_extract`` of
``$.Records[*]`` and one multi-path ``json_extract_string`` per record (one parse per record),
not ``read_json`` with a typed ``Records`` struct (reported ~5× slower over many gzip files). A group of files that
DuckDB cannot read (malformed JSON, a truncated gzip) is retried file by file, and a file that
still fails is split into lines in Python: valid JSON lines are kept, the others are quarantined
with their line number; a broken single document is quarantined whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from jitaudit.ingest.files import InputFile

#: canonical-ish column → JSON path inside one record, extracted with one parse per record
FIELDS: dict[str, str] = {
    "event_id": "$.eventID",
    "event_time_text": "$.eventTime",
    "event_source": "$.eventSource",
    "event_name": "$.eventName",
    "region": "$.awsRegion",
    "src_ip": "$.sourceIPAddress",
    "user_agent": "$.userAgent",
    "error_code": "$.errorCode",
    "request_id": "$.requestID",
    "shared_event_id": "$.sharedEventID",
    "recipient_account": "$.recipientAccountId",
    "ui_type": "$.userIdentity.type",
    "ui_arn": "$.userIdentity.arn",
    "ui_key": "$.userIdentity.accessKeyId",
    "ui_account": "$.userIdentity.accountId",
    "ui_user": "$.userIdentity.userName",
    "source_identity": "$.userIdentity.sessionContext.sourceIdentity",
    "on_behalf_of": "$.userIdentity.onBehalfOf.userId",
    "resource0": "$.resources[0].ARN",
    "request_parameters": "$.requestParameters",
    "p_bucket": "$.requestParameters.bucketName",
    "p_key": "$.requestParameters.key",
    "p_role_name": "$.requestParameters.roleName",
    "p_user_name": "$.requestParameters.userName",
    "p_policy_arn": "$.requestParameters.policyArn",
    "p_topic_arn": "$.requestParameters.topicArn",
    "p_table": "$.requestParameters.tableName",
    "p_function": "$.requestParameters.functionName",
    "p_secret": "$.requestParameters.secretId",
    "p_key_id": "$.requestParameters.keyId",
    "p_name": "$.requestParameters.name",
    "p_log_group": "$.requestParameters.logGroupName",
    "p_queue_url": "$.requestParameters.queueUrl",
    "malformed": "$.__ct_malformed",
}

#: records whose full text is kept for the grant / revocation passes (a small subset)
DETAIL_EVENTS = (
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "GetSessionToken",
    "GetFederationToken",
    "PutRolePolicy",
    "DeleteAccessKey",
    "UpdateAccessKey",
)

_MARK = "__ct_malformed"

# A JSON value → the list of CloudTrail records it holds (as JSON text). A LookupEvents
# CloudTrailEvent string that is not JSON is wrapped in a marker object, so that every record is
# valid JSON for the one-parse extraction and the bad ones are quarantined by the marker.
_MACROS = f"""
CREATE OR REPLACE TEMP MACRO ct_lookup_record(s) AS
  CASE WHEN s IS NULL OR json_valid(s) THEN s
       ELSE '{{"{_MARK}": ' || to_json(left(s, 4000)) || '}}' END;
CREATE OR REPLACE TEMP MACRO ct_records(j) AS
  CASE
    WHEN prefix(j, '{{"Records":[') THEN CAST(json_extract(j, '$.Records[*]') AS VARCHAR[])
    WHEN json_type(j) <> 'OBJECT' THEN [CAST(j AS VARCHAR)]
    WHEN json_exists(j, '$.Records') THEN CAST(json_extract(j, '$.Records[*]') AS VARCHAR[])
    WHEN json_exists(j, '$.Events') THEN list_transform(
        json_extract(j, '$.Events[*]'),
        lambda e: ct_lookup_record(json_extract_string(e, '$.CloudTrailEvent')))
    WHEN json_exists(j, '$."detail-type"') THEN [CAST(json_extract(j, '$.detail') AS VARCHAR)]
    WHEN json_exists(j, '$.digestStartTime') THEN CAST([] AS VARCHAR[])
    ELSE [CAST(j AS VARCHAR)]
  END;
"""

_STAGE_COLUMNS = (
    "source_file VARCHAR, line_offset BIGINT, "
    + ", ".join(f"{c} VARCHAR" for c in FIELDS)
    + ", detail VARCHAR"
)


def _extract_select(values_sql: str) -> str:
    """SELECT of staged columns from ``values_sql`` (source_file, line_offset, j)."""
    paths = ", ".join(f"'{p}'" for p in FIELDS.values())
    cols = ", ".join(f"f[{i}] AS {c}" for i, c in enumerate(FIELDS, 1))
    detail_names = ", ".join(f"'{n}'" for n in DETAIL_EVENTS)
    return f"""
    SELECT source_file, line_offset, {cols},
           CASE WHEN f[{_pos("event_name")}] IN ({detail_names})
                  OR f[{_pos("event_time_text")}] IS NULL OR f[{_pos("event_name")}] IS NULL
                  OR f[{_pos("event_source")}] IS NULL OR f[{_pos("malformed")}] IS NOT NULL
                THEN rec END AS detail
    FROM (SELECT source_file, line_offset, rec, json_extract_string(rec, [{paths}]) AS f
          FROM (SELECT source_file,
                       CASE WHEN len(recs) = 1 THEN line_offset END AS line_offset,
                       unnest(recs) AS rec
                FROM (SELECT source_file, line_offset, ct_records(j) AS recs FROM ({values_sql}))))
    """


def _pos(column: str) -> int:
    return list(FIELDS).index(column) + 1


def _read_sql(files: Sequence[InputFile], gz: bool, limit: int) -> str:
    names = ", ".join("'" + f.name.replace("'", "''") + "'" for f in files)
    return (
        f"SELECT filename AS source_file, CAST(NULL AS BIGINT) AS line_offset, json AS j "
        f"FROM read_json_objects([{names}], format='auto', filename=true, "
        f"compression='{'gzip' if gz else 'none'}', maximum_object_size={limit})"
    )


#: DuckDB's default largest JSON value; its read buffers grow with this limit (2 x per
#: thread), so the batch uses it and only a file with a bigger document is read with more
_OBJECT_LIMIT = 16 << 20


def load(con: duckdb.DuckDBPyConnection, files: Sequence[InputFile]) -> None:
    """Create ``ct_stage`` (parsed records) and ``ct_bad`` (values that are not JSON)."""
    con.execute(_MACROS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE ct_stage ({_STAGE_COLUMNS})")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ct_bad (source_file VARCHAR, source_offset BIGINT, "
        "reason VARCHAR, raw VARCHAR)"
    )
    for gz in (True, False):
        group = [f for f in files if f.gzipped == gz]
        if group and not _try_load(con, group, gz, _OBJECT_LIMIT):
            # a failed INSERT adds nothing: retry file by file to isolate the bad ones
            for f in group:
                # a CloudTrail log file is one JSON document: allow its decompressed size
                limit = max(_OBJECT_LIMIT, min(f.size * (40 if gz else 1), 1 << 31) + (1 << 20))
                if not _try_load(con, [f], gz, limit):
                    _load_salvaged(con, f)


def _try_load(
    con: duckdb.DuckDBPyConnection, files: Sequence[InputFile], gz: bool, limit: int
) -> bool:
    try:
        con.execute(f"INSERT INTO ct_stage {_extract_select(_read_sql(files, gz, limit))}")
    except duckdb.Error:
        return False
    return True


def _load_salvaged(con: duckdb.DuckDBPyConnection, f: InputFile) -> None:
    """A file DuckDB cannot read: keep its valid JSON lines, quarantine the rest."""
    text = f.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    con.register(
        "ct_salvage_lines",
        pa.table(
            {
                "source_file": pa.array([f.name] * len(lines), pa.string()),
                "line_offset": pa.array(range(len(lines)), pa.int64()),
                "line": pa.array([ln.rstrip("\r") for ln in lines], pa.string()),
            }
        ),
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ct_salvage AS SELECT *, "
        "coalesce(CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' END, false) AS ok "
        "FROM ct_salvage_lines WHERE trim(line) <> ''"
    )
    con.unregister("ct_salvage_lines")
    whole = text.strip()
    n_ok = int(con.execute("SELECT count(*) FROM ct_salvage WHERE ok").fetchall()[0][0])
    if n_ok == 0:
        # one broken document (a truncated single-line log file, a damaged pretty-printed one)
        if whole:
            con.execute(
                "INSERT INTO ct_bad VALUES (?, 0, 'malformed JSON document', ?)",
                [f.name, whole[:4000]],
            )
        return
    values = "SELECT source_file, line_offset, line AS j FROM ct_salvage WHERE ok"
    con.execute(f"INSERT INTO ct_stage {_extract_select(values)}")
    con.execute(
        "INSERT INTO ct_bad SELECT source_file, line_offset, 'malformed JSON line', "
        "left(line, 4000) FROM ct_salvage WHERE NOT ok"
    )


def records_view(con: duckdb.DuckDBPyConnection) -> None:
    """``ct_rec``: staged records with ``source_offset`` = the record's index in its file
    (the line number for records read line by line). Insertion order is file order (DuckDB
    preserves it), so the rowid distance from the file's first record is that index. What
    depends on the file alone (that first rowid, the delivery time in its name) is computed
    once per file in ``ct_files``, not once per record."""
    con.execute(
        """CREATE OR REPLACE TEMP TABLE ct_files AS
        SELECT source_file, base,
               -- delivery time from the S3 key: <acct>_CloudTrail_<region>_YYYYMMDDTHHMMZ_<id>
               TRY_STRPTIME(nullif(regexp_extract(source_file,
                 '[0-9]{12}_CloudTrail_[a-z0-9-]+_([0-9]{8}T[0-9]{4}Z)_[A-Za-z0-9]+[.]json(?:[.]gz)?$',
                 1), ''), '%Y%m%dT%H%MZ') AS logged_time
        FROM (SELECT source_file, min(rowid) AS base FROM ct_stage GROUP BY source_file)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP VIEW ct_rec AS
        SELECT s.* EXCLUDE (line_offset),
               coalesce(s.line_offset, s.rowid - b.base) AS source_offset, b.logged_time
        FROM ct_stage AS s JOIN ct_files AS b USING (source_file)"""
    )
