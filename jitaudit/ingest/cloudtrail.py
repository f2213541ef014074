"""AWS CloudTrail ingester: log files, NDJSON, EventBridge and LookupEvents → grants, revocations, uses.

get (:mod:`cloudtrail_load`: every container unwrapped to records, one parse per record) →
normalise (SQL over the batch: ``mappings/cloudtrail.yaml``, IAM naming from
:mod:`cloudtrail_iam`, STS detail from :mod:`cloudtrail_sts`) → the pipeline loads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from jitaudit.ingest import mapping
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.cloudtrail_iam import ACTION_SQL, RESOURCE_FROM_PARAMS_SQL
from jitaudit.ingest.cloudtrail_load import load, records_view
from jitaudit.ingest.cloudtrail_sts import SCOPE_SQL, grant_source_sql, revocation_sql
from jitaudit.ingest.files import InputFile

NAME = "cloudtrail"

_SNIFF = (
    # a log file / NDJSON record / LookupEvents record: an AWS service endpoint as eventSource
    re.compile(r'"eventSource"\s*:\s*"[a-z0-9.\-]+\.amazonaws\.com"'),
    # an EventBridge envelope of a CloudTrail event
    re.compile(r'"detail-type"\s*:\s*"[^"]*via CloudTrail"'),
    # LookupEvents output (the record itself is an escaped string)
    re.compile(r'"Events"\s*:\s*\[.*"CloudTrailEvent"\s*:', re.S),
    # a digest file beside the logs: claimed so that a whole AWSLogs/ tree ingests; no records
    re.compile(r'"digestPublicKeyFingerprint"\s*:'),
)
_EMPTY_LOG = re.compile(r'^\s*\{\s*"Records"\s*:\s*\[\s*\]\s*\}\s*$')

# Secrets in text that redact_raw cannot see: keys inside an escaped JSON string (a
# LookupEvents CloudTrailEvent) and STS session tokens by their fixed base64 prefixes.
_REDACT_MACRO = r"""
CREATE OR REPLACE TEMP MACRO ct_redact(text) AS
  regexp_replace(regexp_replace(CAST(text AS VARCHAR),
    '(?i)(\\"[a-z_\-]*(token|secret|password|passwd|signature|credential)[a-z_\-]*\\"\s*:\s*\\")[^"\\]*',
    '\1<redacted>', 'g'),
    '(IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz|AQoDYXdz|AgoJb3JpZ2lu)[A-Za-z0-9+/=]*',
    '<redacted>', 'g');
CREATE OR REPLACE TEMP MACRO ct_time(t) AS
  coalesce(CASE WHEN suffix(t, 'Z') THEN TRY_CAST(t AS TIMESTAMP) END, parse_ts(t));
"""

_BAD = (
    "malformed IS NOT NULL OR event_name IS NULL OR event_source IS NULL "
    "OR ct_time(event_time_text) IS NULL"
)

_OK_VIEW = f"""
CREATE OR REPLACE TEMP VIEW ct_ok AS
SELECT *,
       {ACTION_SQL} AS action,
       coalesce(resource0, {RESOURCE_FROM_PARAMS_SQL}) AS resource
FROM (
  SELECT r.source_file, r.source_offset, r.logged_time,
         -- the copies of one cross-account event share one id, so that a copy delivered in
         -- a later batch is recognised as a repeat too
         coalesce(CASE WHEN nullif(r.shared_event_id, '') IS NOT NULL
                       THEN 'shared:' || r.shared_event_id || ':' || r.event_name END,
                  nullif(r.event_id, ''), content_id(concat_ws('|', r.event_time_text,
                  r.event_source, r.event_name, r.request_id, r.ui_arn, r.request_parameters)))
           AS eid,
         ct_time(r.event_time_text) AS event_time,
         r.event_source, r.event_name, r.region,
         coalesce(nullif(r.recipient_account, ''), nullif(r.ui_account, '')) AS account,
         nullif(r.src_ip, '') AS src_ip, nullif(r.user_agent, '') AS user_agent,
         nullif(r.error_code, '') AS error_code, nullif(r.request_id, '') AS request_id,
         nullif(r.ui_type, '') AS ui_type, nullif(r.ui_arn, '') AS ui_arn,
         nullif(r.ui_key, '') AS ui_key, nullif(r.ui_user, '') AS ui_user,
         nullif(r.source_identity, '') AS source_identity,
         nullif(r.on_behalf_of, '') AS on_behalf_of,
         nullif(r.resource0, '') AS resource0, r.request_parameters,
         r.p_bucket, r.p_key, r.p_role_name, r.p_user_name, r.p_policy_arn, r.p_topic_arn,
         r.p_table, r.p_function, r.p_secret, r.p_key_id, r.p_name, r.p_log_group,
         r.p_queue_url, r.detail
  FROM ct_rec AS r
  ANTI JOIN ct_shared_drop AS d USING (source_file, source_offset)
  WHERE NOT ({_BAD})
)
"""

# copies of one cross-account event (same sharedEventID + eventName): keep the copy that names
# the caller's key, then the lowest recipientAccountId
_SHARED_DROP = (
    """
CREATE OR REPLACE TEMP TABLE ct_shared_drop AS
SELECT source_file, source_offset FROM ct_rec
WHERE nullif(shared_event_id, '') IS NOT NULL AND NOT ("""
    + _BAD
    + """)
QUALIFY row_number() OVER (PARTITION BY shared_event_id, event_name
                           ORDER BY nullif(ui_key, '') IS NULL, recipient_account,
                                    source_file, source_offset) > 1
"""
)

_QUARANTINE = f"""
SELECT '{NAME}' AS source, source_file, source_offset,
       CASE WHEN malformed IS NOT NULL THEN 'malformed CloudTrailEvent JSON string'
            WHEN event_name IS NULL OR event_source IS NULL
              THEN 'not a CloudTrail record: no eventName or eventSource'
            WHEN event_time_text IS NULL THEN 'missing eventTime'
            ELSE 'bad eventTime: ' || left(event_time_text, 60) END AS reason,
       ct_redact(coalesce(malformed, detail)) AS raw
FROM ct_rec WHERE ({_BAD})
  -- an Insights event (CloudTrail-Insight/ files) describes unusual API activity, not a call:
  -- read and passed over, like a digest file
  AND NOT (event_name IS NULL AND malformed IS NULL
           AND contains(detail, '"AwsCloudTrailInsight"'))
UNION ALL
SELECT '{NAME}', source_file, source_offset, reason, ct_redact(raw) FROM ct_bad
"""


class CloudTrailIngester:
    """AWS CloudTrail: STS grants, revocations and every call made with a session key."""

    #: records are read from disk by DuckDB (``read_json_objects``), not held in Python, and
    #: DuckDB's memory limit bounds the rest: larger batches than the default cost less
    batch_bytes = 512 << 20

    name = NAME
    description = (
        "AWS CloudTrail: gzip {Records:[…]} log files, NDJSON, EventBridge envelopes, "
        "LookupEvents output"
    )

    def sniff(self, head: str) -> bool:
        return bool(_EMPTY_LOG.match(head)) or any(p.search(head) for p in _SNIFF)

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        con.execute(_REDACT_MACRO)
        load(con, files)
        records_view(con)
        con.execute(_SHARED_DROP)
        con.execute(_OK_VIEW)
        read, duplicates = con.execute(
            "SELECT (SELECT count(*) FROM ct_stage) + (SELECT count(*) FROM ct_bad), "
            "(SELECT count(*) FROM ct_shared_drop)"
        ).fetchall()[0]

        uses = con.sql(
            f"SELECT {mapping.select(NAME, 'uses', action='action', resource='resource', target='resource')} "
            "FROM ct_ok WHERE ui_key IS NOT NULL "
            # managing one's own key (deleting / deactivating it) is a grant event, not a use
            "AND NOT (event_name IN ('DeleteAccessKey', 'UpdateAccessKey') AND detail IS NOT NULL "
            "AND json_extract_string(detail, '$.requestParameters.accessKeyId') = ui_key)"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE ct_grant_src AS {grant_source_sql('ct_ok')}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE ct_scope AS {SCOPE_SQL}")
        grants = con.sql(
            f"SELECT {mapping.select(NAME, 'grants')} FROM ct_grant_src "
            "LEFT JOIN ct_scope USING (source_file, source_offset)"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE ct_revoke AS SELECT * FROM ({revocation_sql('ct_ok')}) "
            "WHERE (event_name = 'PutRolePolicy' AND r[1] = 'AWSRevokeOlderSessions') "
            "OR event_name = 'DeleteAccessKey' "
            "OR (event_name = 'UpdateAccessKey' AND lower(r[4]) = 'inactive')"
        )
        revocations = con.sql(f"SELECT {mapping.select(NAME, 'grant_events')} FROM ct_revoke")
        return Normalised(
            tables={"uses": uses, "grants": grants, "grant_events": revocations},
            quarantine=con.sql(_QUARANTINE),
            read=int(read),
            duplicates=int(duplicates),
        )


INGESTER = CloudTrailIngester()
