"""Azure: Entra service-principal / managed-identity sign-ins (grants) and Activity Log records (uses).

Diagnostic settings write both as the Azure Monitor resource-log schema: one JSON object per
line in storage (``PT1H.json`` blobs), or ``{"records": [...]}`` bodies through Event Hubs. A
sign-in is a token issue keyed by ``uniqueTokenIdentifier``; an Activity Log record made with
that token carries it as ``identity.claims.uti``, which is the join. Activity records of other
categories (Policy, ResourceHealth, …) are read but are not access events and yield no rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from jitaudit.ingest import mapping
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputFile
from jitaudit.ingest.opa_helpers import count, fields_list, load_records, read_fields, redact_extra

SIGNIN_CATEGORIES = ("ServicePrincipalSignInLogs", "ManagedIdentitySignInLogs")
#: Administrative, and the legacy log-profile categories of the same events
ACTIVITY_CATEGORIES = ("Administrative", "Write", "Action", "Delete")

_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
FIELDS: dict[str, str] = {
    "category": "$.category",
    "time": "$.time",
    "op": "$.operationName",
    "result_type": "$.resultType",
    "result_sig": "$.resultSignature",
    "resource_id": "$.resourceId",
    "caller_ip": "$.callerIpAddress",
    "correlation_id": "$.correlationId",
    "tenant_id": "$.tenantId",
    "p_id": "$.properties.id",
    "p_created": "$.properties.createdDateTime",
    "p_sp_id": "$.properties.servicePrincipalId",
    "p_app_id": "$.properties.appId",
    "p_uti": "$.properties.uniqueTokenIdentifier",
    "p_cct": "$.properties.clientCredentialType",
    "p_error": "$.properties.status.errorCode",
    "p_failure": "$.properties.status.failureReason",
    "p_resource": "$.properties.resourceDisplayName",
    "p_status_code": "$.properties.statusCode",
    "p_status_msg": "$.properties.statusMessage",
    "authz_action": "$.identity.authorization.action",
    "authz_scope": "$.identity.authorization.scope",
    "ev_role": "$.identity.authorization.evidence.role",
    "ev_assignment": "$.identity.authorization.evidence.roleAssignmentId",
    "uti": "$.identity.claims.uti",
    "oid": f'$.identity.claims."{_OID}"',
    "appid": "$.identity.claims.appid",
}

_CATEGORY = re.compile(
    r'"category"\s*:\s*"(' + "|".join(SIGNIN_CATEGORIES + ACTIVITY_CATEGORIES) + ')"'
)
_RESOURCE_LOG = (re.compile(r'"operationName"\s*:'), re.compile(r'"resourceId"\s*:'))


def _list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_STAGE = f"""
CREATE OR REPLACE TEMP TABLE az_ev AS
SELECT *,
  CASE WHEN kind = 'signin' THEN p_error = '0'
       WHEN outcome = 'denied' THEN false
       WHEN ev_role IS NOT NULL OR ev_assignment IS NOT NULL THEN true END AS allowed,
  -- an operation's 'Start' record folds into its final record when both are in the batch
  kind = 'activity' AND result_type = 'Start'
    AND bool_or(result_type <> 'Start') OVER (PARTITION BY correlation_id, upper(op)) AS folded
FROM (
  SELECT *,
    CASE WHEN category IN ({_list(SIGNIN_CATEGORIES)}) THEN 'signin'
         WHEN category IN ({_list(ACTIVITY_CATEGORIES)}) THEN 'activity'
         WHEN category IS NOT NULL AND op IS NOT NULL THEN 'ignored'
         ELSE 'other' END AS kind,
    CASE WHEN result_type IN ('Failure', 'Failed') THEN
           CASE WHEN p_status_code = 'Forbidden' OR result_sig LIKE '%Forbidden%'
                     OR p_status_msg LIKE '%AuthorizationFailed%' THEN 'denied' ELSE 'error' END
         ELSE 'success' END AS outcome
  FROM (SELECT source_file, source_offset, raw, content_id(json(raw)) AS raw_id,
               {read_fields(FIELDS)}
        FROM (SELECT *, {fields_list(FIELDS)} AS v FROM {{records}})))
"""


class AzureIngester:
    name = "azure"
    description = "Entra sign-in logs and Azure Activity Log (diagnostic-settings JSON)"

    def sniff(self, head: str) -> bool:
        return _CATEGORY.search(head) is not None and all(r.search(head) for r in _RESOURCE_LOG)

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        rec, bad = load_records(con, files, "az", envelope="records")
        con.execute(_STAGE.format(records=rec))

        def rows(table: str, where: str) -> str:
            return (
                f"SELECT 'azure' AS source, source_file, source_offset, "
                f"{mapping.select('azure', table)} FROM az_ev WHERE {where}"
            )

        tables = {
            "grants": con.sql(rows("grants", "kind = 'signin' AND allowed AND p_uti IS NOT NULL")),
            "uses": con.sql(rows("uses", "kind = 'activity' AND NOT folded")),
            "decisions": con.sql(
                rows(
                    "decisions",
                    "kind IN ('signin', 'activity') AND NOT folded AND allowed IS NOT NULL",
                )
            ),
        }
        quarantine = con.sql(
            f"""SELECT 'azure' AS source, source_file, source_offset, reason,
                       {redact_extra("raw")} AS raw
                FROM (SELECT source_file, source_offset, reason, raw FROM {bad}
                      UNION ALL
                      SELECT source_file, source_offset,
                             'not an Azure resource-log record (no category/operationName)', raw
                      FROM az_ev WHERE kind = 'other')"""
        )
        read = count(con, "az_ev") + count(con, bad)
        return Normalised(tables=tables, quarantine=quarantine, read=read)


INGESTER = AzureIngester()
