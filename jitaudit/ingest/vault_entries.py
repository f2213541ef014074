"""Vault audit staging in SQL: strip the ``prefix``, parse, pair request/response entries by
``request.id``, resolve the calling token, and classify each request.

Builds the temp table ``_vault_rec`` (one row per request id; the response entry when there
is one, else the request entry) that ``mappings/vault.yaml`` selects canonical rows from.
Client tokens are fingerprinted at parse time: no table here holds a token in clear.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

SOURCE = "vault"

#: scalar fields, extracted in one JSON parse per line (empty strings become NULL)
_STRINGS: tuple[tuple[str, str], ...] = (
    ("type", "$.type"),
    ("time", "$.time"),
    ("err", "$.error"),
    ("rid", "$.request.id"),
    ("op", "$.request.operation"),
    ("raw_path", "$.request.path"),
    ("mount_type", "$.request.mount_type"),
    ("mount_point", "$.request.mount_point"),
    ("remote_addr", "$.request.remote_address"),
    ("req_token", "$.request.client_token"),
    ("req_accessor", "$.request.client_token_accessor"),
    ("ua", '$.request.headers."user-agent"[0]'),
    ("a_accessor", "$.auth.accessor"),
    ("a_token", "$.auth.client_token"),
    ("a_display", "$.auth.display_name"),
    ("a_entity", "$.auth.entity_id"),
    ("a_allowed", "$.auth.policy_results.allowed"),
    ("r_accessor", "$.response.auth.accessor"),
    ("r_token", "$.response.auth.client_token"),
    ("r_display", "$.response.auth.display_name"),
    ("r_entity", "$.response.auth.entity_id"),
    ("r_ttl", "$.response.auth.token_ttl"),
    ("r_issue", "$.response.auth.token_issue_time"),
    ("lease", "$.response.secret.lease_id"),
    ("d_lease", "$.request.data.lease_id"),
    ("d_url_lease", "$.request.data.url_lease_id"),
    ("d_accessor", "$.request.data.accessor"),
    ("d_token", "$.request.data.token"),
    ("d_increment", "$.request.data.increment"),
)
#: structured fields kept as JSON
_OBJECTS: tuple[tuple[str, str], ...] = (
    ("a_meta", "$.auth.metadata"),
    ("a_granting", "$.auth.policy_results.granting_policies"),
    ("r_meta", "$.response.auth.metadata"),
    ("r_policies", "$.response.auth.policies"),
    ("r_tok_pol", "$.response.auth.token_policies"),
    ("r_id_pol", "$.response.auth.identity_policies"),
)
_META = (
    "agent_id",
    "task_id",
    "objective",
    "targets",
    "parent_task_id",
    "decision_id",
    "service_account_name",
    "service_account_namespace",
    "role_name",
    "role",
)
_SECRETS = ("req_token", "a_token", "r_token", "d_token")
#: token paths whose last segment is a token in clear (deprecated URL forms)
_TOKEN_IN_PATH = r"^auth/token/(lookup|revoke|revoke-orphan|renew)/.+"

#: parts of an entry that may hold secrets, removed from quarantined raw JSON
_UNSAFE = (
    "$.auth.client_token",
    "$.request.client_token",
    "$.request.data",
    "$.request.headers",
    "$.response.auth.client_token",
    "$.response.data",
    "$.response.wrap_info",
    "$.response.headers",
)

#: keys whose values stay readable in a quarantined line that is not JSON
_KEEP = ("time", "type", "id", "operation", "path", "mount_point", "mount_type", "error")

_JSON_START = r'(\{"(?:time|type|auth|request|response|error|forwarded)".*)$'


@dataclass(frozen=True)
class Staged:
    """Counts of one batch after staging: records read, and repeats dropped."""

    read: int
    duplicates: int


def _strip(expr: str) -> str:
    for path in _UNSAFE:
        expr = f"json_remove({expr}, '{path}')"
    return expr


def _mask_values(expr: str) -> str:
    """A line that is not JSON (a log_raw line cut short can hold any secret): every string
    value is masked except those of keys that identify the request."""
    keep = "|".join(_KEEP)
    protected = (
        f'regexp_replace({expr}, \'"({keep})"(\\s*:\\s*)"((?:\\\\.|[^"\\\\])*)"\', '
        "'\"\\1\"\\2' || chr(1) || '\\3' || chr(2), 'g')"
    )
    masked = (
        f"regexp_replace(regexp_replace({protected}, "
        "'\"(?:\\\\.|[^\"\\\\])*\"(\\s*(?:[,\\]}]|$))', '\"<redacted>\"\\1', 'g'), "
        "'\"(?:\\\\.|[^\"\\\\])+$', '\"<redacted>')"
    )
    return f"replace(replace({masked}, chr(1), '\"'), chr(2), '\"')"


def _list(pairs: tuple[tuple[str, str], ...]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for _, p in pairs) + "]"


def _meta_cols(prefix: str) -> tuple[str, str]:
    paths = "[" + ", ".join(f"'$.{k}'" for k in _META) + "]"
    cols = [f"nullif_empty(_{prefix}m[{i}]) AS {prefix}_{k}" for i, k in enumerate(_META, 1)]
    return f"json_extract_string({prefix}_meta, {paths}) AS _{prefix}m", ", ".join(cols)


def stage(con: duckdb.DuckDBPyConnection) -> Staged:
    """From the registered ``_vault_lines`` build ``_vault_bad`` and ``_vault_rec``."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _vault_raw2 AS
        SELECT source_file, source_offset, j, json_valid(j) AS is_json,
               CASE WHEN json_valid(j) THEN json_type(j) = 'OBJECT' ELSE false END AS is_obj
        FROM (SELECT source_file, source_offset,
                     CASE WHEN starts_with(ltrim(line), '{{') THEN ltrim(line)
                          ELSE coalesce(nullif(regexp_extract(line, '{_JSON_START}', 1), ''), line)
                     END AS j
              FROM _vault_lines)"""
    )
    s = ", ".join(
        f"{'fp(' if n in _SECRETS else ''}nullif_empty(_s[{i}]){')' if n in _SECRETS else ''}"
        f" AS {n}{'_fp' if n in _SECRETS else ''}"
        for i, (n, _) in enumerate(_STRINGS, 1)
    )
    o = ", ".join(f"_o[{i}] AS {n}" for i, (n, _) in enumerate(_OBJECTS, 1))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _vault_e AS
        SELECT source_file, source_offset, {s}, {o}
        FROM (SELECT source_file, source_offset,
                     json_extract_string(j, {_list(_STRINGS)}) AS _s,
                     json_extract(j, {_list(_OBJECTS)}) AS _o
              FROM _vault_raw2 WHERE is_obj)"""
    )
    # an entry without request.id (old versions log some, e.g. operation "help") is named by
    # its request object, which its request and response entries log alike, so they still pair
    con.execute(
        """UPDATE _vault_e AS e
        SET rid = content_id(CASE WHEN r.is_obj THEN json_extract(r.j, '$.request') END)
        FROM _vault_raw2 AS r
        WHERE e.rid IS NULL AND r.source_file = e.source_file
          AND r.source_offset = e.source_offset
          AND CASE WHEN r.is_obj THEN json_exists(r.j, '$.request') ELSE false END"""
    )
    con.execute(
        rf"""CREATE OR REPLACE TEMP TABLE _vault_bad AS
        SELECT source_file, source_offset, reason,
               regexp_replace(regexp_replace(raw,
                 '("(?i:x-vault-token|authorization|cookie|proxy-authorization)"\s*:\s*)\[[^\]]*\]?',
                 '\1["<redacted>"]', 'g'),
                 '(auth/token/(?:lookup|revoke|revoke-orphan|renew)/)[^"\s]+', '\1<redacted>', 'g')
                 AS raw
        FROM (
          SELECT r.source_file, r.source_offset,
                 CASE WHEN NOT r.is_json THEN 'not valid JSON (truncated or corrupt line)'
                      WHEN NOT r.is_obj THEN 'not a JSON object'
                      WHEN e.type IS NULL OR e.type NOT IN ('request', 'response')
                        THEN 'not a Vault audit entry: type is not request or response'
                      WHEN e.rid IS NULL THEN 'Vault audit entry without request.id'
                      ELSE 'Vault audit entry without request.path' END AS reason,
                 CASE WHEN r.is_obj THEN CAST({_strip("r.j")} AS VARCHAR)
                      ELSE {_mask_values("r.j")} END AS raw
          FROM _vault_raw2 r
          LEFT JOIN _vault_e e USING (source_file, source_offset)
          WHERE NOT r.is_obj OR e.type IS NULL OR e.type NOT IN ('request', 'response')
                OR e.rid IS NULL OR e.raw_path IS NULL)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _vault_ranked AS
        SELECT *, row_number() OVER (PARTITION BY rid, type
                                     ORDER BY source_file, source_offset) AS copy_n
        FROM _vault_e
        WHERE type IN ('request', 'response') AND rid IS NOT NULL AND raw_path IS NOT NULL"""
    )
    # a token's HMAC'd (or fingerprinted raw) value → its accessor, from every entry that
    # shows both: lets a request made with an expired or revoked token (logged without an
    # accessor) and token paths that name the token join the accessor-keyed grants
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _vault_tokmap AS
        SELECT tok, min(acc) AS acc FROM (
          SELECT a_token_fp AS tok, a_accessor AS acc FROM _vault_ranked
          UNION ALL SELECT r_token_fp, r_accessor FROM _vault_ranked
          UNION ALL SELECT req_token_fp, req_accessor FROM _vault_ranked
        ) WHERE tok IS NOT NULL AND acc IS NOT NULL GROUP BY tok"""
    )
    a_ext, a_cols = _meta_cols("a")
    r_ext, r_cols = _meta_cols("r")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _vault_pre AS
        WITH firsts AS (SELECT * FROM _vault_ranked WHERE copy_n = 1),
        prim AS (SELECT * FROM firsts QUALIFY row_number() OVER (
                   PARTITION BY rid ORDER BY type = 'response' DESC) = 1),
        -- a login's policy_results is only on its request entry (the response carries the
        -- new token's auth), so the decision falls back to the request entry's
        req AS (SELECT rid, parse_ts(time) AS req_time, a_allowed AS req_allowed,
                       a_granting AS req_granting FROM firsts WHERE type = 'request')
        SELECT p.* EXCLUDE (copy_n, raw_path, a_allowed, a_granting), req.req_time,
               coalesce(p.a_allowed, req.req_allowed) AS a_allowed,
               coalesce(p.a_granting, req.req_granting) AS a_granting,
               parse_ts(p.time) AS t,
               CASE WHEN regexp_matches(p.raw_path, '{_TOKEN_IN_PATH}')
                    THEN regexp_extract(p.raw_path, '^(auth/token/[a-z-]+/)', 1)
                         || fp(regexp_extract(p.raw_path, '^auth/token/[a-z-]+/(.+)$', 1))
                    ELSE p.raw_path END AS path,
               CASE WHEN regexp_matches(p.raw_path, '{_TOKEN_IN_PATH}')
                    THEN fp(regexp_extract(p.raw_path, '^auth/token/[a-z-]+/(.+)$', 1))
               END AS path_token_fp,
               coalesce(p.a_accessor, p.req_accessor, m1.acc, m2.acc) AS caller_acc,
               {a_ext}, {r_ext}
        FROM prim p
        LEFT JOIN req USING (rid)
        LEFT JOIN _vault_tokmap m1 ON m1.tok = p.a_token_fp
        LEFT JOIN _vault_tokmap m2 ON m2.tok = p.req_token_fp"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _vault_cls AS
        SELECT * EXCLUDE (_am, _rm), {a_cols}, {r_cols},
          CASE
            WHEN regexp_matches(path, '^auth/token/create') THEN 'token_create'
            WHEN regexp_matches(path, '^auth/token/renew') THEN 'token_renew'
            WHEN regexp_matches(path, '^auth/token/revoke') THEN 'token_revoke'
            WHEN regexp_matches(path, '^sys/(leases/)?renew(/|$)') THEN 'lease_renew'
            WHEN regexp_matches(path, '^sys/(leases/)?revoke') THEN 'lease_revoke'
            WHEN path IN ('auth/token/lookup-self', 'sys/leases/lookup')
              OR (path = 'auth/token/lookup'
                  AND d_token_fp IN (a_token_fp, req_token_fp)) THEN 'self_lookup'
            WHEN starts_with(path, 'auth/') AND NOT starts_with(path, 'auth/token/')
              AND (r_accessor IS NOT NULL OR regexp_matches(path, '^auth/.+/login(/|$)'))
              THEN 'login'
            ELSE 'request'
          END AS kind
        FROM _vault_pre"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _vault_tgt AS
        SELECT c.*,
          CASE
            WHEN kind IN ('token_renew', 'token_revoke') THEN
              CASE WHEN ends_with(path, '-self') THEN caller_acc
                   WHEN regexp_matches(path, '-accessor(/|$)')
                     THEN coalesce(r_accessor,
                                   nullif_empty(regexp_extract(path, '-accessor/(.+)$', 1)),
                                   d_accessor)
                   ELSE coalesce(r_accessor, mt.acc, mp.acc, d_token_fp, path_token_fp) END
            WHEN kind IN ('lease_renew', 'lease_revoke') THEN
              coalesce(CASE WHEN kind = 'lease_renew' THEN lease END,
                       nullif_empty(regexp_extract(path,
                         '^sys/(?:leases/)?(?:renew|revoke|revoke-prefix|revoke-force)/(.+)$', 1)),
                       d_lease, d_url_lease)
          END AS target_grant,
          regexp_matches(path, '^sys/(leases/)?revoke-(prefix|force)') AS prefix_op
        FROM _vault_cls c
        LEFT JOIN _vault_tokmap mt ON mt.tok = c.d_token_fp
        LEFT JOIN _vault_tokmap mp ON mp.tok = c.path_token_fp"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _vault_rec AS
        WITH lease_owner AS (
          SELECT lease AS owned_lease, min(caller_acc) AS owner FROM _vault_tgt
          WHERE lease IS NOT NULL AND kind <> 'lease_renew' GROUP BY lease),
        rec AS (
          SELECT t.*,
            CASE WHEN kind IN ('login', 'token_create') AND r_accessor IS NOT NULL
                   AND err IS NULL THEN 'token'
                 WHEN lease IS NOT NULL AND kind NOT IN ('lease_renew', 'lease_revoke')
                   AND err IS NULL THEN 'lease' END AS grant_kind,
            CASE WHEN kind IN ('token_renew', 'token_revoke')
                   THEN ends_with(path, '-self') OR target_grant = caller_acc
                 WHEN kind IN ('lease_renew', 'lease_revoke')
                   THEN NOT prefix_op AND (o.owner IS NULL OR o.owner = caller_acc)
            END AS own,
            regexp_replace(coalesce(CASE WHEN kind LIKE 'lease_%' THEN target_grant END, lease),
                           '/[^/]*$', '') AS lease_role_path
          FROM _vault_tgt t LEFT JOIN lease_owner o ON o.owned_lease = t.target_grant)
        SELECT rec.*, ttl.ttl_s AS role_ttl_s, sc.scope,
          coalesce(from_json(r_policies, '["VARCHAR"]'),
                   list_concat(from_json(r_tok_pol, '["VARCHAR"]'),
                               from_json(r_id_pol, '["VARCHAR"]'))) AS r_policy_list,
          list_transform(from_json(a_granting, '[{"name":"VARCHAR"}]'),
                         lambda p: p.name) AS granting,
          coalesce(a_agent_id, a_service_account_name, a_role_name, a_role) AS a_agent,
          CASE WHEN a_service_account_name IS NOT NULL
               THEN 'system:serviceaccount:' || coalesce(a_service_account_namespace, '')
                    || ':' || a_service_account_name END AS a_workload,
          coalesce(r_agent_id, r_service_account_name, r_role_name, r_role) AS r_agent,
          CASE WHEN r_service_account_name IS NOT NULL
               THEN 'system:serviceaccount:' || coalesce(r_service_account_namespace, '')
                    || ':' || r_service_account_name END AS r_workload,
          coalesce(req_time, t) AS event_t
        FROM rec
        LEFT JOIN (
          SELECT r.rid, t.ttl_s FROM rec r
          JOIN _vault_role_ttl t ON r.lease_role_path LIKE t.like_pattern ESCAPE '\\'
          QUALIFY row_number() OVER (PARTITION BY r.rid ORDER BY length(t.pattern) DESC) = 1
        ) ttl USING (rid)
        LEFT JOIN (
          SELECT x.rid,
                 CASE WHEN bool_and(p.name IS NOT NULL)
                      THEN list_sort(list_distinct(flatten(list(p.items)))) END AS scope
          FROM (SELECT rid, unnest(coalesce(from_json(r_policies, '["VARCHAR"]'),
                       list_concat(from_json(r_tok_pol, '["VARCHAR"]'),
                                   from_json(r_id_pol, '["VARCHAR"]')))) AS pname
                FROM rec WHERE grant_kind = 'token') x
          LEFT JOIN _vault_policy p ON p.name = x.pname
          GROUP BY x.rid
        ) sc USING (rid)"""
    )
    row = con.execute(
        """SELECT (SELECT count(*) FROM _vault_lines),
                  (SELECT count(*) FROM _vault_ranked WHERE copy_n > 1)"""
    ).fetchall()[0]
    return Staged(read=int(row[0]), duplicates=int(row[1]))
