-- JIT-006 jit-standing-access: just-in-time grants that add up to standing privilege.
-- (a) one grant renewed max_renewals times or more; (b) grants of one agent on one target
-- chained with gaps of at most max_gap_minutes spanning chain_hours or more; (c) such chains
-- covering day_percent % or more of some 24 h. Grants of unknown validity are left out.
WITH renewed AS (
  SELECT 'grant:' || g.grant_id AS subject, 'grants' AS event_table, g.event_id,
         coalesce(g.last_renewed_at, g.issued_at) AS event_time, g.agent_id, g.principal_id,
         g.credential_id, g.task_id, g.source, g.source_file, g.source_offset,
         concat('renewed ', CAST(g.renewals AS VARCHAR), ' times') AS detail
  FROM replay_grants g
  WHERE g.renewals >= ${max_renewals}
),
per_target AS (
  SELECT grant_id, agent_id, issued_at, valid_until, event_id, source, source_file,
         source_offset, credential_id, principal_id, task_id, UNNEST(targets) AS target
  FROM replay_grants
  WHERE agent_id IS NOT NULL AND targets IS NOT NULL AND valid_until IS NOT NULL
),
ordered AS (
  SELECT *, max(valid_until) OVER (PARTITION BY agent_id, target ORDER BY issued_at, grant_id
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_until
  FROM per_target
),
flagged AS (
  SELECT *, CASE WHEN prev_until IS NULL
                   OR date_diff('microsecond', prev_until, issued_at) > ${max_gap_minutes} * 60000000
                 THEN 1 ELSE 0 END AS starts_chain
  FROM ordered
),
numbered AS (
  SELECT *, sum(starts_chain) OVER (PARTITION BY agent_id, target ORDER BY issued_at, grant_id
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS chain
  FROM flagged
),
chains AS (
  SELECT agent_id, target, chain, min(issued_at) AS chain_start, max(valid_until) AS chain_end
  FROM numbered GROUP BY agent_id, target, chain
),
day_cover AS (
  -- durations in microseconds: whole-unit date_diff counts boundaries crossed in DuckDB but
  -- whole units elapsed in Spark, which differ at the thresholds
  SELECT a.agent_id, a.target, a.chain,
         sum(date_diff('microsecond',
                       CASE WHEN b.chain_start > a.chain_start THEN b.chain_start ELSE a.chain_start END,
                       CASE WHEN b.chain_end < a.chain_start + INTERVAL 24 HOUR THEN b.chain_end
                            ELSE a.chain_start + INTERVAL 24 HOUR END)) AS covered_us
  FROM chains a JOIN chains b
    ON b.agent_id = a.agent_id AND b.target = a.target
   AND b.chain_end > a.chain_start AND b.chain_start < a.chain_start + INTERVAL 24 HOUR
  GROUP BY a.agent_id, a.target, a.chain
),
standing AS (
  SELECT c.agent_id, c.target, c.chain, c.chain_start, c.chain_end, d.covered_us,
         CASE WHEN d.covered_us * 100 >= ${day_percent} * CAST(86400000000 AS BIGINT)
              THEN 1 ELSE 0 END AS by_day
  FROM chains c JOIN day_cover d
    ON d.agent_id = c.agent_id AND d.target = c.target AND d.chain = c.chain
  WHERE date_diff('microsecond', c.chain_start, c.chain_end) >= ${chain_hours} * CAST(3600000000 AS BIGINT)
     OR d.covered_us * 100 >= ${day_percent} * CAST(86400000000 AS BIGINT)
),
members AS (
  -- a chain long enough on its own is the evidence; a 24 h window covered enough is evidenced
  -- by every chain in it. Each chain is reported once, under its earliest standing window.
  -- The detail is worded once per chain, not once per grant in it.
  SELECT s.agent_id, s.target, b.chain,
         concat('grants on ', s.target, ' chained from ', CAST(s.chain_start AS VARCHAR), ' to ',
                CAST(s.chain_end AS VARCHAR), ' (', CAST(s.covered_us // 60000000 AS VARCHAR),
                ' min of a 24 h window)') AS detail
  FROM standing s JOIN chains b
    ON b.agent_id = s.agent_id AND b.target = s.target
   AND (b.chain = s.chain
        OR (s.by_day = 1 AND b.chain_start >= s.chain_start
            AND b.chain_start < s.chain_start + INTERVAL 24 HOUR))
  QUALIFY row_number() OVER (PARTITION BY b.agent_id, b.target, b.chain
                             ORDER BY s.chain_start) = 1
),
chained AS (
  SELECT concat('agent:', n.agent_id, '|target:', n.target) AS subject, 'grants' AS event_table,
         n.event_id, n.issued_at AS event_time, n.agent_id, n.principal_id,
         CAST(NULL AS VARCHAR) AS credential_id, CAST(NULL AS VARCHAR) AS task_id,
         n.source, n.source_file, n.source_offset, m.detail
  FROM numbered n JOIN members m
    ON m.agent_id = n.agent_id AND m.target = n.target AND m.chain = n.chain
)
SELECT * FROM renewed
UNION ALL
SELECT * FROM chained
