-- JIT-010 delegation-without-reauthorisation: an agent used a credential granted to another
-- agent with no grant or allowing decision of its own for that task; or a delegated grant's
-- scope exceeds its parent's.
WITH foreign_uses AS (
  SELECT u.* FROM replay_uses u
  WHERE u.outcome = 'success' AND u.agent_id IS NOT NULL AND u.grant_agent_id IS NOT NULL
    AND u.agent_id <> u.grant_agent_id
),
unauthorised AS (
  SELECT f.* FROM foreign_uses f
  WHERE NOT EXISTS (SELECT 1 FROM replay_grants g
                    WHERE g.agent_id = f.agent_id AND g.task_id = f.effective_task_id)
    AND NOT EXISTS (SELECT 1 FROM decisions d
                    WHERE d.agent_id = f.agent_id AND d.task_id = f.effective_task_id
                      AND d.allowed)
),
use_rows AS (
  SELECT 'grant:' || u.grant_id AS subject, 'uses' AS event_table, u.event_id, u.event_time,
         u.grant_agent_id AS agent_id, u.principal_id, u.credential_id,
         u.effective_task_id AS task_id, u.source, u.source_file, u.source_offset,
         concat(u.agent_id, ' used ', u.grant_agent_id, '''s credential with no grant or decision of its own')
           AS detail
  FROM unauthorised u
),
child_items AS (
  SELECT g.grant_id, g.parent_grant_id, UNNEST(g.scope) AS item
  FROM replay_grants g JOIN replay_grants p ON p.grant_id = g.parent_grant_id
  WHERE g.scope IS NOT NULL AND p.scope IS NOT NULL
),
parent_items AS (
  SELECT grant_id AS parent_grant_id, UNNEST(scope) AS pitem
  FROM replay_grants WHERE scope IS NOT NULL
),
covered AS (
  SELECT c.grant_id, c.item,
         max(CASE WHEN c.item LIKE replace(replace(replace(replace(p.pitem, '\', '\\'), '%', '\%'),
                                                   '_', '\_'), '*', '%') ESCAPE '\'
                  THEN 1 ELSE 0 END) AS ok
  FROM child_items c LEFT JOIN parent_items p ON p.parent_grant_id = c.parent_grant_id
  GROUP BY c.grant_id, c.item
),
wider AS (
  SELECT grant_id, string_agg(item, ', ' ORDER BY item) AS extra
  FROM covered WHERE ok = 0 GROUP BY grant_id
),
scope_rows AS (
  SELECT 'grant:' || g.grant_id AS subject, 'grants' AS event_table, g.event_id,
         g.issued_at AS event_time, g.agent_id, g.principal_id, g.credential_id, g.task_id,
         g.source, g.source_file, g.source_offset,
         concat('delegated grant exceeds its parent with [', w.extra, ']') AS detail
  FROM wider w JOIN replay_grants g ON g.grant_id = w.grant_id
)
SELECT * FROM use_rows
UNION ALL
SELECT * FROM scope_rows
