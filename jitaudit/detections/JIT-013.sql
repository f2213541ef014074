-- JIT-013 human-use-of-agent-credential: an agent's credential used interactively — from a
-- browser, through a console sign-in, or by a human SSO identity.
SELECT coalesce('grant:' || u.grant_id, 'credential:' || u.credential_id) AS subject,
       'uses' AS event_table, u.event_id, u.event_time,
       coalesce(u.grant_agent_id, u.agent_id) AS agent_id, u.principal_id, u.credential_id,
       u.effective_task_id AS task_id, u.source, u.source_file, u.source_offset,
       concat(u.action, ' from ', coalesce(u.src_ip, '?'), ' with user agent ',
              coalesce(u.user_agent, '?')) AS detail
FROM replay_uses u
WHERE u.credential_id IS NOT NULL
  AND coalesce(u.grant_agent_id, u.agent_id) IS NOT NULL
  AND (u.user_agent LIKE ${browser_like}
       OR u.action IN ('signin:ConsoleLogin', 'signin:GetSigninToken', 'ConsoleLogin')
       OR u.user_agent LIKE '%console.amazonaws.com%'
       OR u.user_agent LIKE 'AWS Internal%Console%')
