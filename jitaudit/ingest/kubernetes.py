"""Kubernetes API server audit log (audit.k8s.io/v1 Event JSON lines, or webhook EventLists)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from jitaudit.ingest import mapping
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputFile
from jitaudit.ingest.kubernetes_records import load_records

_SNIFF = re.compile(r'"apiVersion"\s*:\s*"audit\.k8s\.io/v1')
#: AKS: an Azure diagnostic record of category kube-audit whose properties.log holds the Event
#: as a JSON string (one record per line in the storage account's PT1H.json, or under
#: "records" from Event Hubs)
_AKS = re.compile(r'"category"\s*:\s*"kube-audit(?:-admin)?"')
_AKS_CATEGORIES = "('kube-audit', 'kube-audit-admin')"

#: (column, JSON path) extracted once per record with one multi-path json_extract_string call
_FIELDS: tuple[tuple[str, str], ...] = (
    ("kind", "$.kind"),
    ("api_version", "$.apiVersion"),
    ("audit_id", "$.auditID"),
    ("stage", "$.stage"),
    ("verb", "$.verb"),
    ("request_uri", "$.requestURI"),
    ("username", "$.user.username"),
    ("credential", '$.user.extra."authentication.kubernetes.io/credential-id"[0]'),
    ("pod_name", '$.user.extra."authentication.kubernetes.io/pod-name"[0]'),
    ("impersonated", "$.impersonatedUser.username"),
    ("src_ip", "$.sourceIPs[0]"),
    ("user_agent", "$.userAgent"),
    ("obj_resource", "$.objectRef.resource"),
    ("obj_namespace", "$.objectRef.namespace"),
    ("obj_name", "$.objectRef.name"),
    ("obj_subresource", "$.objectRef.subresource"),
    ("code", "$.responseStatus.code"),
    ("status_reason", "$.responseStatus.reason"),
    ("received", "$.requestReceivedTimestamp"),
    ("stage_ts", "$.stageTimestamp"),
    ("decision", '$.annotations."authorization.k8s.io/decision"'),
    ("decision_reason", '$.annotations."authorization.k8s.io/reason"'),
    ("issued_credential", '$.annotations."authentication.kubernetes.io/issued-credential-id"'),
    ("req_expiration_seconds", "$.requestObject.spec.expirationSeconds"),
    ("bound_kind", "$.requestObject.spec.boundObjectRef.kind"),
    ("bound_name", "$.requestObject.spec.boundObjectRef.name"),
    ("resp_expiration", "$.responseObject.status.expirationTimestamp"),
)

_STAGE_RANK = (
    "CASE stage WHEN 'Panic' THEN 4 WHEN 'ResponseComplete' THEN 3 "
    "WHEN 'ResponseStarted' THEN 2 WHEN 'RequestReceived' THEN 1 END"
)

# request/response bodies can hold Secret data under arbitrary keys: never keep them in raw
_RAW = (
    "CASE WHEN json_type(CASE WHEN json_valid(rec) THEN rec END) = 'OBJECT' "
    "THEN CAST(json_merge_patch(rec, "
    """'{"requestObject":null,"responseObject":null}') AS VARCHAR) """
    "ELSE regexp_replace(rec, "
    """'"(requestObject|responseObject|data|stringData)"\\s*:.*$', '"\\1":"<redacted>"') END"""
)


class KubernetesIngester:
    name = "kubernetes"
    description = "Kubernetes API server audit log (audit.k8s.io/v1 Event lines, EventList)"

    def sniff(self, head: str) -> bool:
        start = head.lstrip()[:1]
        if start not in ("{", "["):
            return False
        if _AKS.search(head) and "audit.k8s.io/v1" in head:
            return True
        return bool(_SNIFF.search(head)) and '"auditID"' in head

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        load_records(
            con,
            files,
            "k8s_rec",
            "CASE WHEN json_extract_string(j, '$.kind') = 'EventList' "
            "THEN json_extract(j, '$.items[*]') "
            "WHEN json_type(j) = 'ARRAY' THEN json_extract(j, '$[*]') "
            f"WHEN json_extract_string(j, '$.category') IN {_AKS_CATEGORIES} "
            "THEN [json_extract_string(j, '$.properties.log')] "
            "WHEN json_type(j, '$.records') = 'ARRAY' THEN list_transform(list_filter("
            "json_extract(j, '$.records[*]'), "
            f"lambda r: json_extract_string(r, '$.category') IN {_AKS_CATEGORIES}), "
            "lambda r: json_extract_string(r, '$.properties.log')) END",
        )
        paths = ", ".join(f"'{p}'" for _, p in _FIELDS)
        cols = ", ".join(f"nullif_empty(f[{i}]) AS {c}" for i, (c, _) in enumerate(_FIELDS, 1))
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE k8s_ev AS
            -- the raw text is kept only where quarantine may need it
            SELECT * REPLACE (CASE WHEN bad IS NOT NULL OR stage_rank = 1 THEN rec END AS rec)
            FROM (
            SELECT *, {_STAGE_RANK} AS stage_rank,
                   CASE WHEN reason IS NOT NULL THEN reason
                        WHEN coalesce(kind, '') <> 'Event'
                          OR NOT starts_with(coalesce(api_version, ''), 'audit.k8s.io/')
                          THEN 'not an audit.k8s.io Event'
                        WHEN audit_id IS NULL THEN 'missing auditID'
                        WHEN {_STAGE_RANK} IS NULL THEN 'missing or unknown stage'
                        WHEN parse_ts(received) IS NULL
                          THEN 'missing or bad requestReceivedTimestamp'
                   END AS bad
            FROM (SELECT source_file, source_offset, rec, reason, {cols}
                  FROM (SELECT *, CASE WHEN reason IS NULL AND json_type(rec) = 'OBJECT'
                                       THEN json_extract_string(rec, [{paths}]) END AS f
                        FROM k8s_rec)))
            """
        )
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE k8s_uniq AS
            SELECT * FROM k8s_ev WHERE bad IS NULL
            QUALIFY row_number() OVER (PARTITION BY audit_id, stage
                                       ORDER BY source_file, source_offset) = 1;
            -- one row per auditID: the last stage seen wins
            CREATE OR REPLACE TEMP TABLE k8s_fold AS
            SELECT * FROM k8s_uniq
            QUALIFY row_number() OVER (PARTITION BY audit_id
                                       ORDER BY stage_rank DESC, source_file, source_offset) = 1;
            CREATE OR REPLACE TEMP TABLE k8s_rows AS
            SELECT *,
                   parse_ts(received) AS event_time,
                   parse_ts(stage_ts) AS logged_time,
                   TRY_CAST(code AS INTEGER) AS status,
                   coalesce(
                     CASE WHEN obj_resource IS NOT NULL THEN concat_ws('/',
                       'namespaces/' || obj_namespace, obj_resource, obj_name, obj_subresource)
                     END,
                     nullif_empty(split_part(request_uri, '?', 1))) AS resource_path,
                   CASE WHEN starts_with(username, 'system:serviceaccount:') THEN username
                        END AS sa_user,
                   CASE WHEN obj_resource = 'serviceaccounts' AND obj_namespace IS NOT NULL
                         AND obj_name IS NOT NULL THEN
                     'system:serviceaccount:' || obj_namespace || ':' || obj_name
                   END AS object_sa,
                   CASE WHEN starts_with(username, 'system:serviceaccount:') THEN
                     'namespaces/' || split_part(username, ':', 3) || '/pods/' || pod_name
                   END AS user_pod,
                   CASE WHEN bound_kind = 'Pod' THEN
                     'namespaces/' || obj_namespace || '/pods/' || bound_name
                   END AS bound_pod
            FROM k8s_fold WHERE stage_rank > 1
            """
        )
        tables = {
            table: con.sql(f"SELECT {mapping.select(self.name, table)} FROM k8s_rows WHERE {cond}")
            for table, cond in _TABLE_ROWS.items()
        }
        quarantine = con.sql(
            f"""
            SELECT '{self.name}' AS source, source_file, source_offset, bad AS reason,
                   {_RAW} AS raw
            FROM k8s_ev WHERE bad IS NOT NULL
            UNION ALL
            SELECT '{self.name}', source_file, source_offset,
                   'only the RequestReceived stage was seen: no response stage in this batch',
                   {_RAW}
            FROM k8s_fold WHERE stage_rank = 1
            """
        )
        read, uniq = con.execute(
            "SELECT (SELECT count(*) FROM k8s_ev), (SELECT count(*) FROM k8s_uniq)"
        ).fetchall()[0]
        ok = con.execute("SELECT count(*) FROM k8s_ev WHERE bad IS NULL").fetchall()[0][0]
        return Normalised(
            tables=tables, quarantine=quarantine, read=int(read), duplicates=int(ok) - int(uniq)
        )


#: which folded events become rows of which table (columns come from mappings/kubernetes.yaml)
_TABLE_ROWS: dict[str, str] = {
    "grants": (
        "issued_credential IS NOT NULL AND verb = 'create' "
        "AND obj_resource = 'serviceaccounts' AND obj_subresource = 'token'"
    ),
    # deleting a service account invalidates every token issued for it
    "grant_events": (
        "verb = 'delete' AND obj_resource = 'serviceaccounts' AND obj_subresource IS NULL "
        "AND object_sa IS NOT NULL AND status BETWEEN 200 AND 299"
    ),
    "uses": "true",
    "decisions": "decision IS NOT NULL",
}

INGESTER = KubernetesIngester()
