-- JIT-009 shared-credential: one credential used by two or more distinct agents (or workload
-- identities) within the window (at least 30 min). Uses are grouped per half-hour bucket so
-- the pairing stays exact and cheap.
-- Each CTE is read once, so none is materialised: the uses stream twice instead.
WITH buckets AS (
  SELECT credential_id, coalesce(agent_id, workload_identity) AS actor,
         date_trunc('hour', event_time)
           + CASE WHEN minute(event_time) >= 30 THEN INTERVAL 30 MINUTE
                  ELSE INTERVAL 0 MINUTE END AS bucket,
         min(event_time) AS first_at, max(event_time) AS last_at
  FROM uses
  WHERE credential_id IS NOT NULL AND coalesce(agent_id, workload_identity) IS NOT NULL
  GROUP BY 1, 2, 3
),
pairs AS (
  -- within one half-hour bucket every pair is closer than the window; across buckets the
  -- closest pair is the gap between the two buckets' ranges
  SELECT a.credential_id, a.actor AS actor_a, a.bucket AS bucket_a,
         b.actor AS actor_b, b.bucket AS bucket_b
  FROM buckets a JOIN buckets b
    ON b.credential_id = a.credential_id AND b.actor <> a.actor
  WHERE a.bucket = b.bucket
     OR date_diff('microsecond', a.last_at, b.first_at) BETWEEN 0 AND ${window_minutes} * 60000000
     OR date_diff('microsecond', b.last_at, a.first_at) BETWEEN 0 AND ${window_minutes} * 60000000
),
involved AS (
  SELECT credential_id, actor_a AS actor, bucket_a AS bucket FROM pairs
  UNION
  SELECT credential_id, actor_b, bucket_b FROM pairs
)
SELECT coalesce('grant:' || u.grant_id, 'credential:' || u.credential_id) AS subject,
       'uses' AS event_table, u.event_id, u.event_time,
       coalesce(u.grant_agent_id, u.agent_id) AS agent_id, u.principal_id, u.credential_id,
       u.effective_task_id AS task_id, u.source, u.source_file, u.source_offset,
       concat('used by ', coalesce(u.agent_id, u.workload_identity)) AS detail
FROM replay_uses u
JOIN involved i
  ON i.credential_id = u.credential_id AND i.actor = coalesce(u.agent_id, u.workload_identity)
 AND i.bucket = date_trunc('hour', u.event_time)
                + CASE WHEN minute(u.event_time) >= 30 THEN INTERVAL 30 MINUTE
                       ELSE INTERVAL 0 MINUTE END
