-- JIT-005 overbroad-grant: a grant of known scope and known lifetime that never used at least
-- the given share of its scope items (and at least min_items of them). One row per grant; the
-- detail names the used subset, the recommended scope.
WITH items AS (
  SELECT DISTINCT grant_id, UNNEST(scope) AS item
  FROM replay_grants WHERE scope IS NOT NULL AND valid_until IS NOT NULL
),
patterns AS (
  SELECT grant_id, item,
         replace(replace(replace(replace(item, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%') AS pat
  FROM items
),
hits AS (
  SELECT p.grant_id, p.item,
         max(CASE WHEN u.action LIKE p.pat ESCAPE '\'
                    OR concat(u.action, ':', coalesce(u.resource, '')) LIKE p.pat ESCAPE '\'
                  THEN 1 ELSE 0 END) AS used
  FROM patterns p
  LEFT JOIN replay_uses u ON u.grant_id = p.grant_id AND u.outcome = 'success'
  GROUP BY p.grant_id, p.item
),
per_grant AS (
  SELECT grant_id, count(*) AS items, sum(used) AS used_items,
         string_agg(CASE WHEN used = 1 THEN item END, ', ' ORDER BY item) AS used_list
  FROM hits GROUP BY grant_id
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
