-- JIT-005 overbroad-grant: a grant of known scope and known lifetime that never used at least
-- the given share of its scope items (and at least min_items of them). One row per grant; the
-- detail names the used subset, the recommended scope.
-- The uses are reduced to their distinct (grant, action, resource) first; scope items are
-- matched once per distinct combination (replay_scope_item_checks).
WITH used AS (
  SELECT DISTINCT grant_id, grant_scope_key AS scope_key, action,
                  coalesce(resource, '') AS resource
  FROM replay_uses
  WHERE outcome = 'success' AND grant_scope_key IS NOT NULL AND action IS NOT NULL
),
hits AS (
  SELECT DISTINCT u.grant_id, c.item
  FROM used u JOIN replay_scope_item_checks c
    ON c.scope_key = u.scope_key AND c.action = u.action AND c.resource = u.resource
  WHERE c.hit = 1
),
items AS (
  SELECT DISTINCT grant_id, UNNEST(scope) AS item
  FROM replay_grants WHERE scope IS NOT NULL AND valid_until IS NOT NULL
),
per_grant AS (
  SELECT i.grant_id, count(*) AS items, count(h.item) AS used_items,
         string_agg(h.item, ', ' ORDER BY h.item) AS used_list
  FROM items i LEFT JOIN hits h ON h.grant_id = i.grant_id AND h.item = i.item
  GROUP BY i.grant_id
)
SELECT 'grant:' || g.grant_id AS subject, 'grants' AS event_table, g.event_id,
       g.issued_at AS event_time, g.agent_id, g.principal_id, g.credential_id, g.task_id,
       g.source, g.source_file, g.source_offset,
       concat(CAST(p.items - p.used_items AS VARCHAR), ' of ', CAST(p.items AS VARCHAR),
              ' scope items never used; recommended scope: [',
              coalesce(p.used_list, ''), ']') AS detail
FROM per_grant p JOIN replay_grants g ON g.grant_id = p.grant_id
WHERE p.items >= ${min_items}
  AND (p.items - p.used_items) * 100 >= ${unused_percent} * p.items
