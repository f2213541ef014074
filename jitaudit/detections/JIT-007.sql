-- JIT-007 excessive-ttl: a grant's declared TTL is above the maximum for one of its targets,
-- or at least task_multiple times the duration its task actually ran.
WITH sized AS (
  -- compared in microseconds: whole-second date_diff counts second boundaries crossed in
  -- DuckDB (elapsed whole seconds in Spark), which misjudges TTLs issued off the second
  SELECT g.*, date_diff('microsecond', g.issued_at, g.declared_expires_at) AS ttl_us,
         date_diff('second', g.issued_at, g.declared_expires_at) AS ttl_seconds,
         CASE WHEN t.started_at IS NOT NULL AND t.ended_at IS NOT NULL
              THEN date_diff('microsecond', t.started_at, t.ended_at) END AS task_us,
         CASE WHEN t.started_at IS NOT NULL AND t.ended_at IS NOT NULL
              THEN date_diff('second', t.started_at, t.ended_at) END AS task_seconds
  FROM replay_grants g LEFT JOIN replay_tasks t ON t.task_id = g.task_id
  WHERE g.declared_expires_at IS NOT NULL
),
per_target AS (
  SELECT grant_id, UNNEST(targets) AS target FROM sized WHERE targets IS NOT NULL
),
limits AS (
  SELECT s.grant_id, min(${max_ttl_seconds:p.target}) AS max_ttl
  FROM sized s LEFT JOIN per_target p ON p.grant_id = s.grant_id
  GROUP BY s.grant_id
)
SELECT 'grant:' || s.grant_id AS subject, 'grants' AS event_table, s.event_id,
       s.issued_at AS event_time, s.agent_id, s.principal_id, s.credential_id, s.task_id,
       s.source, s.source_file, s.source_offset,
       CASE WHEN s.ttl_us > l.max_ttl * 1000000
            THEN concat('TTL ', CAST(s.ttl_seconds AS VARCHAR), ' s above the maximum ',
                        CAST(l.max_ttl AS VARCHAR), ' s')
            ELSE concat('TTL ', CAST(s.ttl_seconds AS VARCHAR), ' s for a task that ran ',
                        CAST(s.task_seconds AS VARCHAR), ' s') END AS detail
FROM sized s JOIN limits l ON l.grant_id = s.grant_id
WHERE s.ttl_us > l.max_ttl * 1000000
   OR (s.task_us > 0 AND s.ttl_us >= ${task_multiple} * s.task_us)
