-- JIT-004 stale-grant: a grant still valid more than the grace after its task ended, and not
-- revoked by then. One row per grant (the finding's time is the task's end).
SELECT 'grant:' || g.grant_id AS subject, 'grants' AS event_table, g.event_id,
       t.ended_at AS event_time, g.agent_id, g.principal_id, g.credential_id, g.task_id,
       g.source, g.source_file, g.source_offset,
       concat('valid ', CAST(date_diff('minute', t.ended_at, g.valid_until) AS VARCHAR),
              ' min after its task ended') AS detail
FROM replay_grants g
JOIN replay_tasks t ON t.task_id = g.task_id
WHERE t.ended_at IS NOT NULL AND g.issued_at <= t.ended_at AND g.valid_until IS NOT NULL
  AND date_diff('microsecond', t.ended_at, g.valid_until) > ${stale_minutes} * 60000000
