"""Teleport audit events: approved access requests and issued certificates as grants.

Input is what Teleport's file / stdout audit log writes (``/var/lib/teleport/log/*.log``, one
JSON event per line; the same lines the event-handler plugin forwards) or an exported JSON array
of events. Every event carries ``event`` (type), ``code``, ``uid``, ``time``, ``cluster_name``.

Mapping choices (ARCHITECTURE §3: agent = ``user``, task/objective = ``reason``, credential =
access request ``id``):

* **An access request is a grant once it is APPROVED.** The grant row is read from the request's
  first approving event in the batch: a ``access_request.review`` whose post-review ``state`` is
  APPROVED, an ``access_request.update`` to APPROVED, or an ``access_request.create`` already
  APPROVED. ``grant_id = credential_id = id``; ``issued_at`` = the approval time; ``expires_at``
  = the access expiry ``expires`` (else ``max_duration``); agent/principal = the requesting
  ``user``, task_id = objective = ``reason``, ``targets`` = the requested ``resource_ids`` as
  Teleport writes resource ids (``/<cluster>/<kind>/<name>[/<sub_resource>]``), all from the
  request's ``access_request.create``. Role names go to ``policies``; ``scope`` stays NULL,
  because what a role allows is not in the audit log (``role:<name>`` items would match no use
  and make every multi-role grant look over-broad). ``approval`` = ``human`` for a reviewer or
  updater, ``policy`` for Teleport's automatic reviewer (``@teleport-…``), ``auto`` for a bot
  or a request created approved; ``decision_id`` = the approving event's uid.
  A request never approved in the batch (still PENDING, DENIED, PROMOTED) is no grant.
* **Grant events**: the approving review/update → ``issue`` (actor = reviewer, delegator or
  ``updated_by``); a review/update that leaves the request DENIED → ``revoke`` with
  ``outcome = denied`` (the refusal is kept on the request's timeline, but as a non-successful
  event replay never lets it shape a validity interval); ``access_request.expire`` → ``expire``.
  ``access_request.delete`` revokes nothing (certificates already issued stay valid) → no row.
* **Decisions**: every review is one reviewer's decision (``allowed`` = ``proposed_state`` is
  APPROVED) and every update to APPROVED/DENIED is one, so repeated denials are visible to the
  denial-escalation detection.
* **cert.create** → a grant of the certificate: ``grant_id = credential_id`` = the event uid
  (the event carries no serial); principal/agent = ``identity.user`` (Machine ID bots are
  ``bot-<name>``, ``workload_identity`` = ``identity.bot_instance_id``); ``expires_at =
  identity.expires``; ``policies = identity.roles``; ``parent_grant_id`` = the first of
  ``identity.access_requests``, so the certificate inherits the request's task in replay.

Limits: the join of an approval to its create is within one batch; an approval whose create was
ingested earlier yields a grant without agent, reason and targets. ``0001-01-01T00:00:00Z`` is
Go's zero time and reads as unknown. Events of other types are read and produce no rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from jitaudit.ingest import mapping
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputFile
from jitaudit.ingest.opa_helpers import count, fields_list, load_records, read_fields, redact_extra

FIELDS: dict[str, str] = {
    "etype": "$.event",
    "uid": "$.uid",
    "code": "$.code",
    "time_txt": "$.time",
    "cluster": "$.cluster_name",
    "usr": "$.user",
    "req_id": "$.id",
    "state": "$.state",
    "proposed": "$.proposed_state",
    "reviewer": "$.reviewer",
    "reason": "$.reason",
    "delegator": "$.delegator",
    "updated_by": "$.updated_by",
    "expires_txt": "$.expires",
    "max_duration_txt": "$.max_duration",
    "id_user": "$.identity.user",
    "id_expires_txt": "$.identity.expires",
    "id_bot_name": "$.identity.bot_name",
    "id_bot_instance": "$.identity.bot_instance_id",
    "id_cluster": "$.identity.teleport_cluster",
    "id_first_request": "$.identity.access_requests[0]",
}

REQUEST_EVENTS = ("access_request.create", "access_request.review", "access_request.update")
LIFECYCLE_EVENTS = (*REQUEST_EVENTS, "access_request.expire")

_EVENT = re.compile(r'"event"\s*:\s*"[a-z0-9_]+(\.[a-z0-9_]+)*"')
#: Teleport event codes: T5000I, TC000I, TAL001I, CJ001I, T1000W, ...
_CODE = re.compile(r'"code"\s*:\s*"[A-Z]{1,6}[0-9]{2,5}[IWE]"')
_UID_OR_EI = re.compile(r'"(uid|ei)"\s*:')

#: keys of other Teleport events whose values may be credentials in quarantined raw text:
#: HTTP header values and bodies of app-session recordings, OIDC claim hashes
_TELEPORT_SECRETS = r"value|data|raw_query|at_hash|c_hash|jti"


#: requested resources as Teleport writes resource ids: /<cluster>/<kind>/<name>[/<sub>]
_RESOURCE_IDS = '[{"cluster":"VARCHAR","kind":"VARCHAR","name":"VARCHAR","sub_resource":"VARCHAR"}]'
_TARGETS_LIST = (
    f"list_transform(json_transform(json_extract(j, '$.resource_ids'), '{_RESOURCE_IDS}'), "
    "lambda r: '/' || r.cluster || '/' || r.kind || '/' || r.name "
    "|| coalesce('/' || r.sub_resource, ''))"
)


def _ts(expr: str) -> str:
    """parse_ts, with Go's zero time (``0001-01-01T00:00:00Z``) as unknown."""
    return f"CASE WHEN {expr} LIKE '0001-01-01%' THEN CAST(NULL AS TIMESTAMP) ELSE parse_ts({expr}) END"


def _list(expr: str) -> str:
    """A JSON array of strings as VARCHAR[]; missing or empty → NULL."""
    return f"CASE WHEN len({expr}) > 0 THEN {expr} END"


_TARGETS = _list(_TARGETS_LIST)

_STAGE = f"""
CREATE OR REPLACE TEMP TABLE tp_ev AS
SELECT *,
  coalesce(uid, content_id(raw)) AS eid,
  {_ts("time_txt")} AS ts,
  {_ts("expires_txt")} AS expires,
  {_ts("max_duration_txt")} AS max_duration,
  {_ts("id_expires_txt")} AS id_expires,
  coalesce(reviewer, delegator, updated_by) AS actor,
  CASE WHEN etype IS NULL THEN 'not a Teleport audit event (no "event" type)'
       WHEN etype IN {LIFECYCLE_EVENTS} AND req_id IS NULL
         THEN 'access request event without id'
       WHEN etype = 'cert.create' AND id_user IS NULL THEN 'cert.create without identity.user'
  END AS bad_reason
FROM (SELECT source_file, source_offset, raw, {read_fields(FIELDS)},
             {_list("json_extract_string(j, '$.roles[*]')")} AS roles,
             {_list("json_extract_string(j, '$.identity.roles[*]')")} AS id_roles,
             {_TARGETS} AS targets
      FROM (SELECT *, {fields_list(FIELDS, "j")} AS v FROM __RECORDS__));

-- the request as created: who asked, for which roles and resources, and why
CREATE OR REPLACE TEMP TABLE tp_req AS
SELECT req_id, usr, roles, targets, reason, expires, max_duration FROM tp_ev
WHERE bad_reason IS NULL AND etype = 'access_request.create'
QUALIFY row_number() OVER (PARTITION BY req_id ORDER BY ts, eid, source_file, source_offset) = 1;

CREATE OR REPLACE TEMP TABLE tp_changes AS
SELECT e.*, r.usr AS req_usr, r.roles AS req_roles, r.targets AS req_targets,
       r.reason AS req_reason, r.expires AS req_expires, r.max_duration AS req_max_duration
FROM tp_ev e LEFT JOIN tp_req r USING (req_id)
WHERE e.bad_reason IS NULL AND e.etype IN {LIFECYCLE_EVENTS};

CREATE OR REPLACE TEMP VIEW tp_grant_src AS
SELECT source_file, source_offset, 'request' AS kind, eid, ts, req_id AS gid,
       CAST(NULL AS VARCHAR) AS parent, req_usr AS usr, coalesce(roles, req_roles) AS roles,
       req_targets AS targets, req_reason AS reason,
       coalesce(expires, req_expires, max_duration, req_max_duration) AS expires, cluster,
       CASE WHEN etype = 'access_request.create' THEN 'auto'
            WHEN actor LIKE '@teleport%' THEN 'policy'
            WHEN actor LIKE 'bot-%' THEN 'auto'
            WHEN actor IS NOT NULL THEN 'human' END AS approval,
       CASE WHEN etype <> 'access_request.create' THEN eid END AS decision,
       CAST(NULL AS VARCHAR) AS bot_instance, CAST(NULL AS VARCHAR) AS bot_name
FROM tp_changes
WHERE state = 'APPROVED' AND etype IN {REQUEST_EVENTS}
QUALIFY row_number() OVER (PARTITION BY req_id ORDER BY ts, eid, source_file, source_offset) = 1
UNION ALL
SELECT source_file, source_offset, 'cert', eid, ts, eid, id_first_request, id_user, id_roles,
       CAST(NULL AS VARCHAR[]), CAST(NULL AS VARCHAR), id_expires, coalesce(cluster, id_cluster),
       'auto', CAST(NULL AS VARCHAR), id_bot_instance, id_bot_name
FROM tp_ev WHERE bad_reason IS NULL AND etype = 'cert.create';

CREATE OR REPLACE TEMP VIEW tp_life AS
SELECT source_file, source_offset, eid, ts, req_id, req_usr AS usr, actor,
       coalesce(expires, req_expires, max_duration, req_max_duration) AS expires,
       CASE WHEN etype = 'access_request.expire' THEN 'expire'
            WHEN state = 'APPROVED' THEN 'issue' ELSE 'revoke' END AS ev_kind,
       etype <> 'access_request.expire' AND state = 'DENIED' AS denied
FROM tp_changes
WHERE etype = 'access_request.expire'
   OR (etype IN ('access_request.review', 'access_request.update')
       AND state IN ('APPROVED', 'DENIED'));

CREATE OR REPLACE TEMP VIEW tp_votes AS
SELECT source_file, source_offset, eid, ts, etype, req_id, req_usr AS usr, req_reason AS task,
       cluster, reason,
       CASE WHEN etype = 'access_request.review' THEN proposed ELSE state END = 'APPROVED'
         AS allowed
FROM tp_changes
WHERE (etype = 'access_request.review' AND proposed IN ('APPROVED', 'DENIED'))
   OR (etype = 'access_request.update' AND state IN ('APPROVED', 'DENIED'));
"""


class TeleportIngester:
    name = "teleport"
    description = "Teleport audit events (access requests, certificate issuance)"

    def sniff(self, head: str) -> bool:
        return (
            _EVENT.search(head) is not None
            and _CODE.search(head) is not None
            and _UID_OR_EI.search(head) is not None
            and '"time"' in head
        )

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        rec, bad = load_records(con, files, "tp")
        con.execute(_STAGE.replace("__RECORDS__", rec))

        def rows(table: str, view: str) -> str:
            return (
                f"SELECT 'teleport' AS source, source_file, source_offset, "
                f"{mapping.select('teleport', table)} FROM {view}"
            )

        tables = {
            "grants": con.sql(rows("grants", "tp_grant_src")),
            "grant_events": con.sql(rows("grant_events", "tp_life")),
            "decisions": con.sql(rows("decisions", "tp_votes")),
        }
        raw = redact_extra(
            f'regexp_replace(raw, \'(?i)("({_TELEPORT_SECRETS})"\\s*:\\s*)"(\\\\.|[^"\\\\])*"?\', '
            "'\\1\"<redacted>\"', 'g')"
        )
        quarantine = con.sql(
            f"""SELECT 'teleport' AS source, source_file, source_offset, reason, {raw} AS raw
                FROM (SELECT source_file, source_offset, reason, raw FROM {bad}
                      UNION ALL
                      SELECT source_file, source_offset, bad_reason, raw
                      FROM tp_ev WHERE bad_reason IS NOT NULL)"""
        )
        # copies of one event (same uid) that yield no row of their own: the pipeline only
        # sees repeats among rows, so these are counted here
        duplicates = count(
            con,
            """(SELECT eid, row_number() OVER (PARTITION BY eid ORDER BY source_file, source_offset)
                  AS n, etype, state, proposed FROM tp_ev WHERE bad_reason IS NULL)""",
            "n > 1 AND NOT (etype IN ('cert.create', 'access_request.expire') "
            "OR (etype IN ('access_request.review', 'access_request.update') "
            "    AND state IN ('APPROVED', 'DENIED')) "
            "OR (etype = 'access_request.review' AND proposed IN ('APPROVED', 'DENIED')))",
        )
        read = count(con, "tp_ev") + count(con, bad)
        return Normalised(tables=tables, quarantine=quarantine, read=read, duplicates=duplicates)


INGESTER = TeleportIngester()
