-- JIT-012 denial-escalation: an agent collecting denials — burst_size or more within
-- burst_minutes — followed within follow_minutes by a success on a denied action or a new
-- grant whose scope covers it; or denied probing of fan_out_targets distinct targets within
-- burst_minutes.
-- One finding per episode (overlapping escalation windows of one agent), so a scan after new
-- data re-judges only the episodes near it.
WITH denials AS (
  SELECT effective_agent_id AS agent_id, source, event_id, event_time, action, resource, target,
         source_file, source_offset, principal_id, credential_id
  FROM replay_uses WHERE outcome = 'denied' AND effective_agent_id IS NOT NULL
),
bursts AS (
  SELECT a.agent_id, a.event_id, a.source, a.event_time AS burst_start,
         max(b.event_time) AS burst_end, count(*) AS denied,
         count(DISTINCT b.target) AS targets
  FROM denials a JOIN denials b
    ON b.agent_id = a.agent_id AND b.event_time >= a.event_time
   AND date_diff('microsecond', a.event_time, b.event_time) <= ${burst_minutes} * 60000000
  GROUP BY a.agent_id, a.event_id, a.source, a.event_time
),
escalated AS (
  SELECT DISTINCT b.agent_id, b.burst_start, b.burst_end
  FROM bursts b
  JOIN denials d ON d.agent_id = b.agent_id AND d.event_time >= b.burst_start
                AND d.event_time <= b.burst_end
  JOIN replay_uses s ON s.effective_agent_id = b.agent_id AND s.outcome = 'success'
                    AND s.action = d.action AND coalesce(s.resource, '') = coalesce(d.resource, '')
                    AND s.event_time > b.burst_end
                    AND date_diff('microsecond', b.burst_end, s.event_time) <= ${follow_minutes} * 60000000
  WHERE b.denied >= ${burst_size}
  UNION
  SELECT DISTINCT b.agent_id, b.burst_start, b.burst_end
  FROM bursts b
  JOIN denials d ON d.agent_id = b.agent_id AND d.event_time >= b.burst_start
                AND d.event_time <= b.burst_end
  JOIN replay_grants g ON g.agent_id = b.agent_id AND g.issued_at > b.burst_end
                      AND date_diff('microsecond', b.burst_end, g.issued_at) <= ${follow_minutes} * 60000000
                      AND g.scope IS NOT NULL
  JOIN (SELECT grant_id, UNNEST(scope) AS item FROM replay_grants WHERE scope IS NOT NULL) i
    ON i.grant_id = g.grant_id
   AND (d.action LIKE replace(replace(replace(replace(i.item, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%') ESCAPE '\'
        OR concat(d.action, ':', coalesce(d.resource, ''))
           LIKE replace(replace(replace(replace(i.item, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%') ESCAPE '\')
  WHERE b.denied >= ${burst_size}
  UNION
  SELECT DISTINCT agent_id, burst_start, burst_end FROM bursts WHERE targets >= ${fan_out_targets}
),
-- overlapping escalation windows of one agent form one episode: one finding per episode
ordered AS (
  SELECT agent_id, burst_start, burst_end,
         max(burst_end) OVER (PARTITION BY agent_id ORDER BY burst_start, burst_end
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
  FROM escalated
),
episodes AS (
  SELECT agent_id, burst_start, burst_end,
         sum(CASE WHEN prev_end IS NULL OR burst_start > prev_end THEN 1 ELSE 0 END)
           OVER (PARTITION BY agent_id ORDER BY burst_start, burst_end
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
  FROM ordered
),
spans AS (
  SELECT agent_id, episode, min(burst_start) AS episode_start FROM episodes
  GROUP BY agent_id, episode
)
SELECT concat('agent:', d.agent_id, '|escalation:', CAST(s.episode_start AS VARCHAR)) AS subject,
       'uses' AS event_table, d.event_id, d.event_time,
       d.agent_id, d.principal_id, CAST(NULL AS VARCHAR) AS credential_id,
       CAST(NULL AS VARCHAR) AS task_id, d.source, d.source_file, d.source_offset,
       concat('denied ', d.action, ' on ', coalesce(d.target, '?')) AS detail
FROM denials d
JOIN episodes e ON e.agent_id = d.agent_id AND d.event_time >= e.burst_start
               AND d.event_time <= e.burst_end
JOIN spans s ON s.agent_id = e.agent_id AND s.episode = e.episode
