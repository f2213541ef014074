"""CloudTrail naming → IAM naming: service prefixes, action names and resource ARNs, as SQL.

CloudTrail names a call by ``eventSource`` and ``eventName``; IAM policies (and so grant
scopes) name it ``<prefix>:<Action>``. The two agree for most services; the tables below list
the documented exceptions. Everything here is data turned into DuckDB expressions over the
parsed record columns of :mod:`jitaudit.ingest.cloudtrail_load`.
"""

from __future__ import annotations

#: eventSource host prefix → IAM service prefix, where they differ
SERVICE_PREFIX: dict[str, str] = {
    "monitoring": "cloudwatch",
    "email": "ses",
    "s3-control": "s3",
    "runtime.sagemaker": "sagemaker",
    "bedrock-runtime": "bedrock",
    "bedrock-agent-runtime": "bedrock",
    "api.ecr": "ecr",
    "tagging": "tag",
}

#: ``<prefix>:<eventName>`` → IAM action, where the API operation is authorised by another
#: action (S3 HEAD requests, list calls and multipart uploads are the common ones)
ACTION_ALIAS: dict[str, str] = {
    "s3:ListBuckets": "s3:ListAllMyBuckets",
    "s3:GetBucketLifecycle": "s3:GetLifecycleConfiguration",
    "s3:PutBucketLifecycle": "s3:PutLifecycleConfiguration",
    "s3:DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "s3:GetBucketReplication": "s3:GetReplicationConfiguration",
    "s3:PutBucketReplication": "s3:PutReplicationConfiguration",
    "s3:DeleteBucketReplication": "s3:PutReplicationConfiguration",
    "s3:DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:HeadObject": "s3:GetObject",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:CopyObject": "s3:PutObject",
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:UploadPartCopy": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
    "s3:ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "s3:ListParts": "s3:ListMultipartUploadParts",
    "s3:DeleteObjects": "s3:DeleteObject",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetObjectAttributes": "s3:GetObject",
    "lambda:Invoke": "lambda:InvokeFunction",
    "bedrock:Converse": "bedrock:InvokeModel",
    "bedrock:ConverseStream": "bedrock:InvokeModelWithResponseStream",
}


def _map_literal(d: dict[str, str]) -> str:
    items = ", ".join(f"'{k}': '{v}'" for k, v in sorted(d.items()))
    return f"MAP {{{items}}}"


def _lookup(d: dict[str, str], key: str) -> str:
    return f"coalesce({_map_literal(d)}[{key}], {key})"


#: IAM service prefix of a record (``eventSource`` minus ``.amazonaws.com``, aliased); string
#: functions, not a regular expression, since this runs once per record
SERVICE_SQL = _lookup(
    SERVICE_PREFIX,
    "CASE WHEN suffix(event_source, '.amazonaws.com') "
    "THEN left(event_source, length(event_source) - 14) ELSE event_source END",
)

#: IAM action; Lambda's versioned event names (``GetFunction20150331v2``) lose the date suffix
#: (only a name holding ``20`` can carry one: the others skip the regular expression)
ACTION_SQL = _lookup(
    ACTION_ALIAS,
    f"({SERVICE_SQL} || ':' || CASE WHEN contains(event_name, '20') "
    "THEN regexp_replace(event_name, '20[0-9]{6}(v[0-9]+)?$', '') ELSE event_name END)",
)

_PARTITION = (
    "CASE WHEN starts_with(region, 'cn-') THEN 'aws-cn' "
    "WHEN starts_with(region, 'us-gov-') THEN 'aws-us-gov' ELSE 'aws' END"
)


def _arn(service: str, rest: str, regional: bool = True) -> str:
    region = "coalesce(region, '')" if regional else "''"
    return (
        f"'arn:' || {_PARTITION} || ':{service}:' || {region} || ':' || "
        f"coalesce(account, '') || ':' || {rest}"
    )


def _arn_or(value: str, service: str, rest: str, regional: bool = True) -> str:
    """``value`` when it already is an ARN, else the ARN built from it."""
    return (
        f"CASE WHEN {value} IS NULL THEN NULL WHEN starts_with({value}, 'arn:') THEN {value} "
        f"ELSE {_arn(service, rest, regional)} END"
    )


#: Resource ARN derived from request parameters when the record has no ``resources``.
#: Columns used: p_* request parameters, region, account, event_source, request_parameters.
RESOURCE_FROM_PARAMS_SQL = f"""coalesce(
  CASE WHEN nullif(p_bucket, '') IS NOT NULL AND event_source IN ('s3.amazonaws.com', 's3-control.amazonaws.com')
       THEN 'arn:' || {_PARTITION} || ':s3:::' || p_bucket || coalesce('/' || p_key, '') END,
  p_policy_arn, p_topic_arn,
  CASE WHEN event_source = 'iam.amazonaws.com' THEN
    CASE WHEN p_role_name IS NOT NULL THEN {_arn("iam", "'role/' || p_role_name", False)}
         WHEN p_user_name IS NOT NULL THEN {_arn("iam", "'user/' || p_user_name", False)} END END,
  CASE WHEN event_source = 'dynamodb.amazonaws.com'
       THEN {_arn_or("p_table", "dynamodb", "'table/' || p_table")} END,
  CASE WHEN event_source = 'lambda.amazonaws.com'
       THEN {_arn_or("p_function", "lambda", "'function:' || p_function")} END,
  CASE WHEN event_source = 'secretsmanager.amazonaws.com'
       THEN {_arn_or("p_secret", "secretsmanager", "'secret:' || p_secret")} END,
  CASE WHEN event_source = 'kms.amazonaws.com'
       THEN {_arn_or("p_key_id", "kms", "CASE WHEN starts_with(p_key_id, 'alias/') THEN p_key_id ELSE 'key/' || p_key_id END")} END,
  CASE WHEN event_source = 'ssm.amazonaws.com'
       THEN {_arn_or("p_name", "ssm", "'parameter/' || ltrim(p_name, '/')")} END,
  CASE WHEN event_source = 'logs.amazonaws.com'
       THEN {_arn_or("p_log_group", "logs", "'log-group:' || p_log_group")} END,
  CASE WHEN event_source = 'sqs.amazonaws.com' AND p_queue_url IS NOT NULL
       THEN {_arn("sqs", "regexp_extract(p_queue_url, '[^/]+$')")} END,
  CASE WHEN contains(request_parameters, '"arn:')
       THEN nullif(regexp_extract(request_parameters, '"(arn:[^"]+)"', 1), '') END
)"""
