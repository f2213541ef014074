-- JIT-001 scope-drift: successful uses outside the scope of the grant valid at that instant,
-- or on a target outside the task's declared targets. One row per offending use.
-- Scope and targets are checked once per distinct combination (replay_*_checks), so this is
-- one pass over the uses.
SELECT coalesce('grant:' || u.grant_id, 'credential:' || u.credential_id,
                'agent:' || u.effective_agent_id) AS subject,
       'uses' AS event_table, u.event_id, u.event_time, u.effective_agent_id AS agent_id,
       u.principal_id, u.credential_id, u.effective_task_id AS task_id,
       u.source, u.source_file, u.source_offset,
       CASE WHEN u.grant_scope_key IS NOT NULL AND coalesce(s.in_scope, 0) = 0
            THEN concat(u.action, ' ', coalesce(u.resource, ''), ' is outside the grant''s scope')
            ELSE concat(coalesce(u.target, ''), ' is outside the task''s targets') END AS detail
FROM replay_uses u
LEFT JOIN replay_task_targets t ON t.task_id = u.effective_task_id
LEFT JOIN replay_scope_checks s
  ON s.scope_key = u.grant_scope_key AND s.action = u.action
 AND s.resource = coalesce(u.resource, '')
LEFT JOIN replay_target_checks c
  ON c.targets_key = coalesce(t.targets_key, u.grant_targets_key) AND c.target = u.target
WHERE u.outcome = 'success' AND NOT u.mints_credential
  AND ((u.grant_scope_key IS NOT NULL AND coalesce(s.in_scope, 0) = 0)
       OR (u.target IS NOT NULL AND coalesce(t.targets_key, u.grant_targets_key) IS NOT NULL
           AND coalesce(c.on_target, 0) = 0))
