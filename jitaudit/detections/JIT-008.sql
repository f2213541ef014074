-- JIT-008 credential-not-task-bound: a credential used under two or more task ids, or a
-- credential bound to no task used for work (anything but minting task-bound credentials).
WITH multi AS (
  SELECT credential_id FROM uses
  WHERE credential_id IS NOT NULL AND task_id IS NOT NULL AND outcome = 'success'
  GROUP BY credential_id HAVING count(DISTINCT task_id) >= ${min_tasks}
),
multi_rows AS (
  SELECT coalesce('grant:' || u.grant_id, 'credential:' || u.credential_id) AS subject,
         'uses' AS event_table, u.event_id, u.event_time,
         coalesce(u.grant_agent_id, u.agent_id) AS agent_id, u.principal_id, u.credential_id,
         CAST(NULL AS VARCHAR) AS task_id, u.source, u.source_file, u.source_offset,
         concat('used under task ', u.task_id) AS detail
  FROM replay_uses u JOIN multi m ON m.credential_id = u.credential_id
  WHERE u.task_id IS NOT NULL AND u.outcome = 'success'
),
unbound AS (
  SELECT 'grant:' || u.grant_id AS subject, 'uses' AS event_table, u.event_id, u.event_time,
         u.grant_agent_id AS agent_id, u.principal_id, u.credential_id,
         CAST(NULL AS VARCHAR) AS task_id, u.source, u.source_file, u.source_offset,
         concat(u.action, ' ', coalesce(u.resource, ''), ' with a credential bound to no task') AS detail
  FROM replay_uses u
  WHERE u.grant_id IS NOT NULL AND u.join_basis = 'credential' AND u.outcome = 'success'
    AND u.grant_task_id IS NULL AND u.task_id IS NULL
    AND u.grant_agent_id IS NOT NULL
    -- minting task-bound credentials is what an unbound login credential is for
    AND NOT u.mints_credential
)
SELECT * FROM multi_rows
UNION ALL
SELECT * FROM unbound
