-- JIT-014 audit-log-delay: a source's records delivered more than max_delay_minutes after the
-- event (one finding per episode), or a source silent much longer than its usual gap while
-- other sources reported (one finding per silent window).
-- No CTE over every record is read twice (that would materialise it): the tables are read
-- once for late deliveries, once for the per-source timestamps, and the few rows at the edges
-- of silent windows once more.
WITH stored AS (
  SELECT 'uses' AS event_table, source, event_id, event_time, logged_time, source_file, source_offset FROM uses
  UNION ALL SELECT 'grants', source, event_id, event_time, logged_time, source_file, source_offset FROM grants
  UNION ALL SELECT 'grant_events', source, event_id, event_time, logged_time, source_file, source_offset FROM grant_events
  UNION ALL SELECT 'decisions', source, event_id, event_time, logged_time, source_file, source_offset FROM decisions
  UNION ALL SELECT 'tasks', source, event_id, event_time, logged_time, source_file, source_offset FROM tasks
),
edges AS (
  SELECT 'uses' AS event_table, source, event_id, event_time, source_file, source_offset FROM uses
  UNION ALL SELECT 'grants', source, event_id, event_time, source_file, source_offset FROM grants
  UNION ALL SELECT 'grant_events', source, event_id, event_time, source_file, source_offset FROM grant_events
  UNION ALL SELECT 'decisions', source, event_id, event_time, source_file, source_offset FROM decisions
  UNION ALL SELECT 'tasks', source, event_id, event_time, source_file, source_offset FROM tasks
),
-- an event delivered more than once was available from its first delivery on, whichever
-- copy the lake kept
first_delivery AS (
  SELECT table_name, source, event_id, min(logged_time) AS logged_time
  FROM redeliveries WHERE logged_time IS NOT NULL GROUP BY table_name, source, event_id
),
-- a first delivery is never later than the kept copy's, so only the rows late as stored (or
-- with no delivery time of their own) can be late: the rest never meet the redeliveries
candidates AS (
  SELECT * FROM stored
  WHERE event_time IS NOT NULL
    AND (logged_time IS NULL
         OR date_diff('microsecond', event_time, logged_time) > ${max_delay_minutes} * 60000000)
),
events AS (
  SELECT s.event_table, s.source, s.event_id, s.event_time,
         CASE WHEN r.logged_time IS NOT NULL AND (s.logged_time IS NULL OR r.logged_time < s.logged_time)
              THEN r.logged_time ELSE s.logged_time END AS logged_time,
         s.source_file, s.source_offset
  FROM candidates s
  LEFT JOIN first_delivery r
    ON r.table_name = s.event_table AND r.source = s.source AND r.event_id = s.event_id
),
late AS (
  SELECT * FROM events
  WHERE event_time IS NOT NULL AND logged_time IS NOT NULL
    AND date_diff('microsecond', event_time, logged_time) > ${max_delay_minutes} * 60000000
),
late_ordered AS (
  SELECT *, lag(event_time) OVER (PARTITION BY source ORDER BY event_time, event_id) AS prev_time
  FROM late
),
late_episodes AS (
  SELECT *, sum(CASE WHEN prev_time IS NULL
                       OR date_diff('microsecond', prev_time, event_time)
                          > ${episode_gap_minutes} * 60000000
                     THEN 1 ELSE 0 END)
              OVER (PARTITION BY source ORDER BY event_time, event_id
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
  FROM late_ordered
),
late_rows AS (
  SELECT concat('source:', source, '|delay:',
                CAST(min(event_time) OVER (PARTITION BY source, episode) AS VARCHAR)) AS subject,
         event_table, event_id, event_time, source, source_file, source_offset,
         concat(source, ' delivered records up to ',
                CAST(max(date_diff('minute', event_time, logged_time))
                     OVER (PARTITION BY source, episode) AS VARCHAR),
                ' min late; detections reading ', source, ' were blind until delivery') AS detail
  FROM late_episodes
),
stamped AS (
  SELECT source, event_time FROM uses WHERE event_time IS NOT NULL
  UNION SELECT source, event_time FROM grants WHERE event_time IS NOT NULL
  UNION SELECT source, event_time FROM grant_events WHERE event_time IS NOT NULL
  UNION SELECT source, event_time FROM decisions WHERE event_time IS NOT NULL
  UNION SELECT source, event_time FROM tasks WHERE event_time IS NOT NULL
),
gaps AS (
  SELECT source, lag(event_time) OVER (PARTITION BY source ORDER BY event_time) AS gap_start,
         event_time AS gap_end
  FROM stamped
),
usual AS (
  -- gaps in microseconds: whole-unit date_diff counts boundaries crossed in DuckDB but whole
  -- units elapsed in Spark, and either misjudges a gap at the threshold
  SELECT source, quantile_cont(date_diff('microsecond', gap_start, gap_end), 0.9) AS p90_us
  FROM gaps WHERE gap_start IS NOT NULL GROUP BY source
),
silent AS (
  SELECT g.source, g.gap_start, g.gap_end
  FROM gaps g JOIN usual u ON u.source = g.source
  WHERE g.gap_start IS NOT NULL
    AND date_diff('microsecond', g.gap_start, g.gap_end) > ${min_silence_minutes} * 60000000
    AND date_diff('microsecond', g.gap_start, g.gap_end) > ${gap_factor} * u.p90_us
),
witnessed AS (
  SELECT s.source, s.gap_start, s.gap_end, count(*) AS others
  FROM silent s JOIN stamped o
    ON o.source <> s.source AND o.event_time > s.gap_start AND o.event_time < s.gap_end
  GROUP BY s.source, s.gap_start, s.gap_end
  HAVING count(*) >= ${min_other_events}
),
silent_rows AS (
  SELECT concat('source:', w.source, '|silent:', CAST(w.gap_start AS VARCHAR)) AS subject,
         e.event_table, e.event_id, e.event_time, e.source, e.source_file, e.source_offset,
         concat(w.source, ' silent from ', CAST(w.gap_start AS VARCHAR), ' to ',
                CAST(w.gap_end AS VARCHAR), ' while ', CAST(w.others AS VARCHAR),
                ' records arrived from other sources; detections reading ', w.source,
                ' were blind in that window') AS detail
  FROM witnessed w JOIN edges e
    ON e.source = w.source AND (e.event_time = w.gap_start OR e.event_time = w.gap_end)
)
SELECT subject, event_table, event_id, event_time, CAST(NULL AS VARCHAR) AS agent_id,
       CAST(NULL AS VARCHAR) AS principal_id, CAST(NULL AS VARCHAR) AS credential_id,
       CAST(NULL AS VARCHAR) AS task_id, source, source_file, source_offset, detail
FROM late_rows
UNION ALL
SELECT subject, event_table, event_id, event_time, CAST(NULL AS VARCHAR),
       CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
       source, source_file, source_offset, detail
FROM silent_rows
