-- JIT-016 grant-outlives-policy-change: a grant approved under policy revision R still used
-- after a policy path its revision decided on started deciding under another revision.
WITH revisions AS (
  SELECT coalesce(policy_path, '') AS policy_path, policy_revision, min(event_time) AS first_seen
  FROM decisions WHERE policy_revision IS NOT NULL
  GROUP BY coalesce(policy_path, ''), policy_revision
),
approved AS (
  SELECT g.grant_id, g.policy_revision, coalesce(d.policy_path, '') AS policy_path,
         coalesce(d.event_time, g.issued_at) AS approved_at
  FROM replay_grants g LEFT JOIN decisions d ON d.decision_id = g.decision_id
  WHERE g.policy_revision IS NOT NULL
),
-- a revision is superseded where another revision starts deciding on a policy path it decided
-- on (the approval path, or the paths its bundle also serves)
changed AS (
  SELECT a.grant_id, min(r2.first_seen) AS changed_at
  FROM approved a
  JOIN revisions r1 ON r1.policy_revision = a.policy_revision
  JOIN revisions r2
    ON r2.policy_path = r1.policy_path AND r2.policy_revision <> a.policy_revision
   AND r2.first_seen > a.approved_at
  GROUP BY a.grant_id
)
SELECT 'grant:' || u.grant_id AS subject, 'uses' AS event_table, u.event_id, u.event_time,
       coalesce(u.grant_agent_id, u.agent_id) AS agent_id, u.principal_id, u.credential_id,
       u.effective_task_id AS task_id, u.source, u.source_file, u.source_offset,
       concat('granted under ', u.grant_policy_revision, '; the policy changed at ',
              CAST(c.changed_at AS VARCHAR)) AS detail
FROM replay_uses u JOIN changed c ON c.grant_id = u.grant_id
WHERE u.outcome = 'success'
  AND date_diff('microsecond', c.changed_at, u.event_time) > ${grace_seconds} * 1000000
