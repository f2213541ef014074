"""GCP Cloud Audit Logs (LogEntry JSON lines from a logging sink, or gcloud's JSON array)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from jitaudit.ingest import mapping
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputFile
from jitaudit.ingest.kubernetes_records import load_records

_AUDIT_LOG = re.compile(
    r'"@type"\s*:\s*"type\.googleapis\.com/google\.cloud\.audit\.AuditLog"'
    r'|"logName"\s*:\s*"[^"]*/logs/cloudaudit\.googleapis\.com'
)
_PAYLOAD = re.compile(r'"protoPayload"\s*:')

_AUTHN = "$.protoPayload.authenticationInfo"
#: (column, JSON path) extracted once per record with one multi-path json_extract_string call
_FIELDS: tuple[tuple[str, str], ...] = (
    ("insert_id", "$.insertId"),
    ("log_name", "$.logName"),
    ("ts", "$.timestamp"),
    ("receive_ts", "$.receiveTimestamp"),
    ("payload_type", '$.protoPayload."@type"'),
    ("service", "$.protoPayload.serviceName"),
    ("method", "$.protoPayload.methodName"),
    ("resource_name", "$.protoPayload.resourceName"),
    ("status_code", "$.protoPayload.status.code"),
    ("principal_email", f"{_AUTHN}.principalEmail"),
    ("principal_subject", f"{_AUTHN}.principalSubject"),
    ("key_name", f"{_AUTHN}.serviceAccountKeyName"),
    (
        "delegator_email",
        f"{_AUTHN}.serviceAccountDelegationInfo[0].firstPartyPrincipal.principalEmail",
    ),
    ("delegator_subject", f"{_AUTHN}.serviceAccountDelegationInfo[0].principalSubject"),
    ("permission", "$.protoPayload.authorizationInfo[0].permission"),
    ("caller_ip", "$.protoPayload.requestMetadata.callerIp"),
    ("caller_ua", "$.protoPayload.requestMetadata.callerSuppliedUserAgent"),
    ("request_name", "$.protoPayload.request.name"),
    ("request_lifetime", "$.protoPayload.request.lifetime"),
    ("response_expire", "$.protoPayload.response.expireTime"),
    ("email_label", "$.resource.labels.email_id"),
    ("label_agent", "$.labels.agent_id"),
    ("label_task", "$.labels.task_id"),
    ("label_objective", "$.labels.objective"),
    ("label_targets", "$.labels.targets"),
    ("label_decision", "$.labels.decision_id"),
    ("trace", "$.trace"),
    ("span_id", "$.spanId"),
)

# response bodies (tokens, signed JWTs and blobs) are never kept, not even in quarantine
_RAW = (
    "CASE WHEN json_exists(CASE WHEN json_valid(rec) THEN rec END, '$.protoPayload.response') THEN CAST(json_merge_patch(rec, "
    """'{"protoPayload":{"response":null}}') AS VARCHAR) """
    """ELSE regexp_replace(rec, '"response"\\s*:.*$', '"response":"<redacted>"') END"""
)

_IS_MINT = (
    "service = 'iamcredentials.googleapis.com' "
    "AND regexp_matches(method, '(^|\\.)Generate(Access|Id)Token$')"
)


class GcpIngester:
    name = "gcp"
    description = "GCP Cloud Audit Logs (LogEntry JSON lines, gcloud logging read JSON)"

    def sniff(self, head: str) -> bool:
        start = head.lstrip()[:1]
        return start in ("{", "[") and bool(_PAYLOAD.search(head) and _AUDIT_LOG.search(head))

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        load_records(
            con,
            files,
            "gcp_rec",
            "CASE WHEN json_type(j) = 'ARRAY' THEN json_extract(j, '$[*]') "
            "WHEN json_type(j, '$.entries') = 'ARRAY' THEN json_extract(j, '$.entries[*]') END",
        )
        paths = ", ".join(f"'{p}'" for _, p in _FIELDS)
        cols = ", ".join(f"nullif_empty(f[{i}]) AS {c}" for i, (c, _) in enumerate(_FIELDS, 1))
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE gcp_ev AS
            -- the raw text is kept only where quarantine or a missing insertId needs it
            SELECT * REPLACE (CASE WHEN bad IS NOT NULL OR insert_id IS NULL THEN rec END AS rec)
            FROM (
            SELECT *,
                   CASE WHEN reason IS NOT NULL THEN reason
                        WHEN payload_type IS DISTINCT FROM
                             'type.googleapis.com/google.cloud.audit.AuditLog'
                          THEN 'not a Cloud Audit Logs entry (no AuditLog protoPayload)'
                        WHEN parse_ts(ts) IS NULL THEN 'missing or bad timestamp'
                        WHEN method IS NULL THEN 'missing protoPayload.methodName'
                   END AS bad
            FROM (SELECT source_file, source_offset, rec, reason, {cols}
                  FROM (SELECT *, CASE WHEN reason IS NULL AND json_type(rec) = 'OBJECT'
                                       THEN json_extract_string(rec, [{paths}]) END AS f
                        FROM gcp_rec)))
            """
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE gcp_rows AS
            SELECT *,
                   coalesce(insert_id, content_id(rec)) AS event_id,
                   parse_ts(ts) AS event_time,
                   parse_ts(receive_ts) AS logged_time,
                   coalesce(TRY_CAST(status_code AS INTEGER), 0) AS code,
                   coalesce(principal_email, principal_subject) AS caller,
                   CASE WHEN principal_email LIKE '%.gserviceaccount.com' THEN principal_email
                        END AS caller_sa,
                   coalesce(delegator_email, delegator_subject) AS delegator,
                   {_IS_MINT} AS is_mint,
                   coalesce(email_label,
                            regexp_extract(request_name, 'serviceAccounts/([^/]+)$', 1))
                     AS token_sa,
                   coalesce(TRY_CAST(rtrim(request_lifetime, 's') AS DOUBLE), 3600)
                     AS lifetime_s,
                   CASE WHEN key_name IS NOT NULL THEN 'service_account_key'
                        WHEN principal_subject LIKE 'principal://%'
                          OR principal_subject LIKE 'principalSet://%'
                          THEN 'workload_identity_federation'
                        WHEN principal_subject LIKE '%.svc.id.goog[%'
                          THEN 'gke_workload_identity'
                        WHEN principal_email LIKE '%.gserviceaccount.com'
                          AND delegator_email IS NULL AND delegator_subject IS NULL
                          THEN 'service_account'
                        WHEN principal_email LIKE '%.gserviceaccount.com' THEN 'impersonation'
                        WHEN principal_email IS NOT NULL THEN 'user'
                   END AS caller_auth
            FROM gcp_ev WHERE bad IS NULL
            """
        )
        tables = {
            table: con.sql(f"SELECT {mapping.select(self.name, table)} FROM gcp_rows WHERE {cond}")
            for table, cond in _TABLE_ROWS.items()
        }
        quarantine = con.sql(
            f"""SELECT '{self.name}' AS source, source_file, source_offset, bad AS reason,
                       {_RAW} AS raw
                FROM gcp_ev WHERE bad IS NOT NULL"""
        )
        read = con.execute("SELECT count(*) FROM gcp_ev").fetchall()[0][0]
        # repeats (the same insertId delivered twice) are dropped and counted by the pipeline
        return Normalised(tables=tables, quarantine=quarantine, read=int(read))


#: which entries become rows of which table (columns come from mappings/gcp.yaml)
_TABLE_ROWS: dict[str, str] = {
    "grants": "is_mint AND code = 0 AND token_sa IS NOT NULL",
    # minting a token is also a use of the caller's own credential
    "uses": "true",
}

INGESTER = GcpIngester()
