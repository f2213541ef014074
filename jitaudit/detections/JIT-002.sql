-- JIT-002 use-outside-validity: successful uses before their grant was issued or after it
-- expired (beyond a clock-skew grace). A use after a revocation that came first is JIT-003.
SELECT coalesce('grant:' || u.grant_id, 'credential:' || u.credential_id) AS subject,
       'uses' AS event_table, u.event_id, u.event_time, u.effective_agent_id AS agent_id,
       u.principal_id, u.credential_id, u.effective_task_id AS task_id,
       u.source, u.source_file, u.source_offset,
       CASE WHEN u.event_time < u.grant_issued_at
            THEN concat('used ', CAST(date_diff('second', u.event_time, u.grant_issued_at) AS VARCHAR), ' s before issue')
            ELSE concat('used ', CAST(date_diff('second', u.grant_expires_at, u.event_time) AS VARCHAR), ' s after expiry') END AS detail
FROM replay_uses u
WHERE u.outcome = 'success' AND u.join_basis = 'credential'
  AND (date_diff('microsecond', u.event_time, u.grant_issued_at) > ${grace_seconds} * 1000000
       OR (u.grant_expires_at IS NOT NULL
           AND date_diff('microsecond', u.grant_expires_at, u.event_time) > ${grace_seconds} * 1000000
           AND (u.grant_revoked_at IS NULL OR u.grant_revoked_at > u.grant_expires_at)))
