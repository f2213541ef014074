-- JIT-001 scope-drift: successful uses outside the scope of the grant valid at that instant,
-- or on a target outside the task's declared targets. One row per offending use.
SELECT coalesce('grant:' || u.grant_id, 'credential:' || u.credential_id,
                'agent:' || u.effective_agent_id) AS subject,
       'uses' AS event_table, u.event_id, u.event_time, u.effective_agent_id AS agent_id,
       u.principal_id, u.credential_id, u.effective_task_id AS task_id,
       u.source, u.source_file, u.source_offset,
       CASE WHEN s.in_scope = 0 THEN concat(u.action, ' ', coalesce(u.resource, ''), ' is outside the grant''s scope')
            ELSE concat(coalesce(u.target, ''), ' is outside the task''s targets') END AS detail
FROM replay_uses u
LEFT JOIN replay_scope s ON s.source = u.source AND s.event_id = u.event_id
LEFT JOIN replay_targets t ON t.source = u.source AND t.event_id = u.event_id
WHERE u.outcome = 'success' AND NOT u.mints_credential
  AND (s.in_scope = 0 OR t.on_target = 0)
