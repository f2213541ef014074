"""CloudTrail STS grants and IAM revocations: SQL over the few records whose text was kept.

Grants come from successful ``sts:AssumeRole*`` / ``GetSessionToken`` / ``GetFederationToken``
records; their session tags, session policy (a JSON *string* whose Statement, Action and
Resource may each be one value or a list) and credentials are read here. Revocations are
``iam:PutRolePolicy`` of the console's ``AWSRevokeOlderSessions`` deny-before policy, and
``DeleteAccessKey`` / ``UpdateAccessKey`` to ``Inactive``.
"""

from __future__ import annotations

GRANT_EVENTS = (
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "GetSessionToken",
    "GetFederationToken",
)

#: grant detail column → JSON path in the record text (one parse per grant record)
GRANT_FIELDS: dict[str, str] = {
    "cred_key": "$.responseElements.credentials.accessKeyId",
    "cred_expiration": "$.responseElements.credentials.expiration",
    "assumed_arn": "$.responseElements.assumedRoleUser.arn",
    "federated_arn": "$.responseElements.federatedUser.arn",
    "tags": "$.requestParameters.tags",
    "principal_tags": "$.requestParameters.principalTags",
    "transitive_tags": "$.requestParameters.incomingTransitiveTags",
    "req_source_identity": "$.requestParameters.sourceIdentity",
    "role_session_name": "$.requestParameters.roleSessionName",
    "federated_name": "$.requestParameters.name",
    "policy": "$.requestParameters.policy",
    "policy_arns": "$.requestParameters.policyArns",
    "duration_seconds": "$.requestParameters.durationSeconds",
    "web_subject": "$.responseElements.subjectFromWebIdentityToken",
    "saml_subject": "$.responseElements.subject",
    "provider": "$.responseElements.provider",
    "saml_issuer": "$.responseElements.issuer",
}

_TAG_KEYS = ("agent_id", "task_id", "objective", "targets", "decision_id")


def _tag(key: str) -> str:
    """A session tag: ``tags`` ([{key, value}], keys case-insensitive), else ``principalTags``
    (web identity / SAML), else tags inherited transitively from the calling session."""
    return (
        f"coalesce(tag_values[list_position(tag_keys, '{key}')], "
        f"json_extract_string(principal_tags, '$.{key}'), "
        f"json_extract_string(transitive_tags, '$.{key}'))"
    )


def grant_source_sql(ok_view: str) -> str:
    """One row per successful STS credential issue, with its detail columns parsed."""
    paths = ", ".join(f"'{p}'" for p in GRANT_FIELDS.values())
    cols = ", ".join(f"nullif(d[{i}], '') AS {c}" for i, c in enumerate(GRANT_FIELDS, 1))
    names = ", ".join(f"'{n}'" for n in GRANT_EVENTS)
    tag_cols = ", ".join(f"{_tag(k)} AS tag_{k}" for k in _TAG_KEYS)
    return f"""
    SELECT *, {tag_cols}
    FROM (SELECT *,
                 list_transform(CAST(json_extract_string(tags, '$[*].key') AS VARCHAR[]),
                                lambda k: lower(k)) AS tag_keys,
                 CAST(json_extract_string(tags, '$[*].value') AS VARCHAR[]) AS tag_values
          FROM (SELECT o.*, {cols}
                FROM (SELECT *, json_extract_string(detail, [{paths}]) AS d FROM {ok_view}
                      WHERE event_source = 'sts.amazonaws.com' AND event_name IN ({names})
                        AND error_code IS NULL AND detail IS NOT NULL) AS o))
    """


#: scope per grant with a session policy: Allow statements' Action × Resource as
#: ``action:resource`` (``action`` alone for Resource ``*``). A policy that is not JSON, or uses
#: NotAction / NotResource, or lacks Action / Resource, cannot be expressed as globs: NULL.
#: Managed session policies (policyArns) are not in the log: scope NULL (unknown) too.
SCOPE_SQL = """
WITH st AS (
  SELECT source_file, source_offset,
         unnest(CASE WHEN NOT json_valid(policy) THEN [NULL]
                     WHEN json_type(policy, '$.Statement') = 'ARRAY'
                       THEN CAST(json_extract(policy, '$.Statement[*]') AS VARCHAR[])
                     ELSE [CAST(json_extract(policy, '$.Statement') AS VARCHAR)] END) AS s
  FROM ct_grant_src WHERE policy IS NOT NULL AND policy_arns IS NULL
), parts AS (
  SELECT source_file, source_offset, s,
         json_extract_string(s, '$.Effect') AS effect,
         CASE json_type(s, '$.Action')
           WHEN 'ARRAY' THEN CAST(json_extract_string(s, '$.Action[*]') AS VARCHAR[])
           WHEN 'VARCHAR' THEN [json_extract_string(s, '$.Action')] END AS acts,
         CASE json_type(s, '$.Resource')
           WHEN 'ARRAY' THEN CAST(json_extract_string(s, '$.Resource[*]') AS VARCHAR[])
           WHEN 'VARCHAR' THEN [json_extract_string(s, '$.Resource')] END AS ress
  FROM st
)
SELECT source_file, source_offset,
  CASE WHEN bool_or(s IS NULL OR json_exists(s, '$.NotAction') OR json_exists(s, '$.NotResource')
                    OR (effect = 'Allow' AND (acts IS NULL OR ress IS NULL))) THEN NULL
       ELSE coalesce(list_sort(list_distinct(flatten(
              list(flatten(list_transform(acts, lambda a: list_transform(ress,
                   lambda r: CASE WHEN r = '*' THEN a ELSE a || ':' || r END))))
              FILTER (WHERE effect = 'Allow')))), CAST([] AS VARCHAR[])) END AS scope
FROM parts GROUP BY source_file, source_offset
"""


def revocation_sql(ok_view: str) -> str:
    """grant_events rows: AWSRevokeOlderSessions on a role, access keys deleted / deactivated.

    Failed attempts are kept with their outcome (a revocation the cloud did not honour)."""
    return f"""
    SELECT *, json_extract_string(detail, ['$.requestParameters.policyName',
                                           '$.requestParameters.policyDocument',
                                           '$.requestParameters.accessKeyId',
                                           '$.requestParameters.status']) AS r
    FROM {ok_view}
    WHERE event_source = 'iam.amazonaws.com'
      AND event_name IN ('PutRolePolicy', 'DeleteAccessKey', 'UpdateAccessKey')
      AND detail IS NOT NULL
    """
