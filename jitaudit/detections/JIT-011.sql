-- JIT-011 ungoverned-use: on a target that a decision point governs (it appears in the
-- decision logs), a successful use with no allowing decision for the same request (request
-- id, else same agent, action and resource shortly before), or whose own decision denied it.
WITH governed AS (
  SELECT DISTINCT target FROM decisions WHERE target IS NOT NULL
),
candidates AS (
  SELECT u.* FROM replay_uses u JOIN governed t ON t.target = u.target
  WHERE u.outcome = 'success'
),
by_request AS (
  SELECT c.source, c.event_id,
         max(CASE WHEN d.allowed THEN 1 ELSE 0 END) AS allowed,
         max(CASE WHEN NOT d.allowed THEN 1 ELSE 0 END) AS denied
  FROM candidates c JOIN decisions d ON d.request_id = c.request_id
  WHERE c.request_id IS NOT NULL
  GROUP BY c.source, c.event_id
),
by_window AS (
  SELECT c.source, c.event_id
  FROM candidates c JOIN decisions d
    ON d.agent_id = c.effective_agent_id AND d.action = c.action
   AND coalesce(d.resource, '') = coalesce(c.resource, '')
   AND d.allowed
   AND date_diff('microsecond', d.event_time, c.event_time)
       BETWEEN -${skew_seconds} * 1000000 AND ${window_seconds} * 1000000
  GROUP BY c.source, c.event_id
)
SELECT coalesce('grant:' || c.grant_id, 'credential:' || c.credential_id,
                'agent:' || c.effective_agent_id) AS subject,
       'uses' AS event_table, c.event_id, c.event_time, c.effective_agent_id AS agent_id,
       c.principal_id, c.credential_id, c.effective_task_id AS task_id,
       c.source, c.source_file, c.source_offset,
       CASE WHEN r.denied = 1 AND coalesce(r.allowed, 0) = 0
            THEN concat(c.action, ' on ', c.target, ' succeeded although its decision denied it')
            ELSE concat(c.action, ' on ', c.target, ' has no allowing decision') END AS detail
FROM candidates c
LEFT JOIN by_request r ON r.source = c.source AND r.event_id = c.event_id
LEFT JOIN by_window w ON w.source = c.source AND w.event_id = c.event_id
WHERE coalesce(r.allowed, 0) = 0
  AND (r.denied = 1 OR w.event_id IS NULL)
