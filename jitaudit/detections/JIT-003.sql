-- JIT-003 use-after-revocation: successful uses after the grant was revoked (grace for
-- propagation), including revocations in a broker that a gateway or cloud did not honour.
SELECT coalesce('grant:' || u.grant_id, 'credential:' || u.credential_id) AS subject,
       'uses' AS event_table, u.event_id, u.event_time, u.effective_agent_id AS agent_id,
       u.principal_id, u.credential_id, u.effective_task_id AS task_id,
       u.source, u.source_file, u.source_offset,
       concat('used ', CAST(date_diff('second', u.grant_revoked_at, u.event_time) AS VARCHAR),
              ' s after revocation') AS detail
FROM replay_uses u
WHERE u.outcome = 'success' AND u.join_basis = 'credential'
  AND u.grant_revoked_at IS NOT NULL
  AND (u.grant_expires_at IS NULL OR u.grant_revoked_at <= u.grant_expires_at)
  AND date_diff('microsecond', u.grant_revoked_at, u.event_time) > ${grace_seconds} * 1000000
