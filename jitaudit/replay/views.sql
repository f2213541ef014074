-- Replay: the grant, task, decision and use streams as views, in event time.
-- Each block is one view, created in this order; they read only the canonical tables and each
-- other, in the Spark-portable subset of ARCHITECTURE §8 (no ASOF, epoch*, lambdas, slices).
-- Results depend only on the rows, never on the order they were ingested in: every pick of
-- one row among several is ordered by values (time, source, event id).

-- name: replay_span_owners
-- OTel spans whose owner (the agent and task of the invoke_agent span above them) was not in the
-- lake when they were ingested: an exporter sends a span when it ends, so children often come
-- before their parents. Such a span names the ancestor it waits for (ancestor_span_id); here the
-- owner is found through it, up to three hops (an ancestor found may itself be a tool call
-- still waiting for its own). An invoke_agent span owns what is below it; a tool call passes
-- its owner on. Spans whose ancestor never arrived stay unresolved (no row).
CREATE OR REPLACE VIEW replay_span_owners AS
WITH stored AS (
  SELECT trace_id, substr(event_id, length(trace_id) + 2) AS span_id, agent_id, task_id,
         CAST(NULL AS VARCHAR) AS next_span_id
  FROM tasks WHERE source = 'otel' AND trace_id IS NOT NULL AND event_id LIKE '%:%'
  UNION ALL
  -- a tool call, or a span link (a model call or loop span between a GenAI span and its
  -- agent run): its owner, or the span it waits for itself
  SELECT trace_id, span_id, agent_id,
         CASE WHEN agent_id IS NOT NULL THEN task_id END,
         CASE WHEN agent_id IS NULL THEN ancestor_span_id END
  FROM (SELECT trace_id, span_id, agent_id, task_id, ancestor_span_id
        FROM uses WHERE source = 'otel'
        UNION ALL
        SELECT trace_id, span_id, agent_id, task_id, ancestor_span_id FROM span_links) p
  WHERE trace_id IS NOT NULL AND span_id IS NOT NULL
),
spans AS (
  SELECT trace_id, span_id, min(agent_id) AS agent_id, min(task_id) AS task_id,
         min(next_span_id) AS next_span_id
  FROM stored GROUP BY trace_id, span_id
),
waiting AS (
  SELECT DISTINCT trace_id, substr(event_id, length(trace_id) + 2) AS span_id, ancestor_span_id
  FROM tasks WHERE source = 'otel' AND ancestor_span_id IS NOT NULL AND trace_id IS NOT NULL
  UNION
  SELECT DISTINCT trace_id, span_id, ancestor_span_id
  FROM uses WHERE source = 'otel' AND ancestor_span_id IS NOT NULL AND trace_id IS NOT NULL
),
resolved AS (
  SELECT w.trace_id, w.span_id,
         CASE WHEN h1.agent_id IS NOT NULL THEN h1.agent_id
              WHEN h2.agent_id IS NOT NULL THEN h2.agent_id ELSE h3.agent_id END AS owner_agent,
         CASE WHEN h1.agent_id IS NOT NULL THEN h1.task_id
              WHEN h2.agent_id IS NOT NULL THEN h2.task_id ELSE h3.task_id END AS owner_task
  FROM waiting w
  JOIN spans h1 ON h1.trace_id = w.trace_id AND h1.span_id = w.ancestor_span_id
  LEFT JOIN spans h2 ON h2.trace_id = h1.trace_id AND h2.span_id = h1.next_span_id
  LEFT JOIN spans h3 ON h3.trace_id = h2.trace_id AND h3.span_id = h2.next_span_id
)
SELECT trace_id, span_id, owner_agent, owner_task FROM resolved
WHERE owner_agent IS NOT NULL;

-- name: replay_task_runs
-- One row per agent run of a task (an invoke_agent span, or a task row of another source) with
-- the agent that delegated it and the task it was delegated from, also when these are known
-- only from a span that arrived after it (replay_span_owners). A run that an agent with a run
-- of the same task delegated is an inner run: frameworks such as Google ADK and the OpenAI
-- Agents SDK give a sub-agent the conversation id (= task) of the run that called it.
CREATE OR REPLACE VIEW replay_task_runs AS
WITH runs AS (
  SELECT t.task_id, t.agent_id, t.objective, t.targets, t.started_at, t.ended_at,
         coalesce(t.parent_task_id,
                  CASE WHEN t.task_id <> o.owner_task THEN o.owner_task END) AS parent_task_id,
         coalesce(t.delegated_by,
                  CASE WHEN t.agent_id IS NULL OR t.agent_id <> o.owner_agent
                       THEN o.owner_agent END) AS delegated_by
  FROM tasks t
  LEFT JOIN replay_span_owners o
    ON t.source = 'otel' AND t.ancestor_span_id IS NOT NULL
   AND o.trace_id = t.trace_id AND o.span_id = substr(t.event_id, length(t.trace_id) + 2)
  WHERE t.task_id IS NOT NULL
),
agents AS (SELECT DISTINCT task_id, agent_id FROM runs WHERE agent_id IS NOT NULL)
SELECT r.task_id, r.agent_id, r.parent_task_id, r.delegated_by, r.objective, r.targets,
       r.started_at, r.ended_at,
       CASE WHEN r.parent_task_id IS NULL AND a.agent_id IS NOT NULL THEN 1 ELSE 0 END
         AS inner_run
FROM runs r
LEFT JOIN agents a ON a.task_id = r.task_id AND a.agent_id = r.delegated_by;

-- name: replay_tasks
-- One row per task: its agent, delegation, objective, declared targets and window. Several
-- sources may describe one task (invoke_agent spans, grant metadata); spans win, and of the
-- runs of a task the one no other agent delegated within it names its agent. A missing
-- completion signal leaves ended_at NULL.
CREATE OR REPLACE VIEW replay_tasks AS
WITH merged AS (
  SELECT task_id, agent_id, parent_task_id, delegated_by, objective, targets,
         started_at, ended_at, 0 AS from_grant, inner_run
  FROM replay_task_runs
  UNION ALL
  SELECT task_id, agent_id, parent_task_id, CAST(NULL AS VARCHAR), objective, targets,
         CAST(NULL AS TIMESTAMP), CAST(NULL AS TIMESTAMP), 1, 0
  FROM grants WHERE task_id IS NOT NULL
)
SELECT task_id,
       coalesce(min(CASE WHEN from_grant = 0 AND inner_run = 0 THEN agent_id END),
                min(CASE WHEN from_grant = 0 THEN agent_id END), min(agent_id)) AS agent_id,
       min(parent_task_id) AS parent_task_id,
       min(CASE WHEN inner_run = 0 THEN delegated_by END) AS delegated_by,
       coalesce(min(CASE WHEN from_grant = 0 AND inner_run = 0 THEN objective END),
                min(CASE WHEN from_grant = 0 THEN objective END), min(objective)) AS objective,
       coalesce(min(CASE WHEN from_grant = 0 AND inner_run = 0 THEN targets END),
                min(CASE WHEN from_grant = 0 THEN targets END), min(targets)) AS targets,
       min(started_at) AS started_at,
       CASE WHEN count(started_at) > 0 AND count(ended_at) = count(started_at)
            THEN max(ended_at) END AS ended_at
FROM merged
GROUP BY task_id;

-- name: replay_grants
-- One row per grant with its validity interval: issued → the earliest of (renewed) expiry,
-- revocation and an expire event. Expiry stays NULL (unknown) when the source never said it,
-- or when a renewal did not say how long it extended the grant. Attestation, agent, task and
-- targets a grant lacks are inherited along parent_grant_id (a Vault lease from the child
-- token that read it; a child token from its login), up to three levels.
CREATE OR REPLACE VIEW replay_grants AS
WITH repeated AS (
  SELECT grant_id FROM grants GROUP BY grant_id HAVING count(*) > 1
),
-- one row per grant: the earliest copy of the few grants several sources describe (ranking
-- every grant would sort them all)
g AS (
  SELECT * FROM grants WHERE grant_id NOT IN (SELECT grant_id FROM repeated)
  UNION ALL
  SELECT * FROM (
    SELECT * FROM grants WHERE grant_id IN (SELECT grant_id FROM repeated)
    QUALIFY row_number() OVER (PARTITION BY grant_id ORDER BY issued_at, source, event_id) = 1
  ) r
),
ev AS (
  SELECT coalesce(grant_id, credential_id) AS gid, kind, event_time, new_expires_at
  FROM grant_events
  WHERE coalesce(outcome, 'success') = 'success' AND coalesce(grant_id, credential_id) IS NOT NULL
),
renewals AS (
  SELECT gid, count(*) AS renewals, max(event_time) AS last_renewed_at,
         max(new_expires_at) AS renewed_until,
         sum(CASE WHEN new_expires_at IS NULL THEN 1 ELSE 0 END) AS renewals_without_expiry
  FROM ev WHERE kind = 'renew' GROUP BY gid
),
revocations AS (
  SELECT gid, min(event_time) AS revoked_at FROM ev WHERE kind = 'revoke' GROUP BY gid
),
expirations AS (
  SELECT gid, min(event_time) AS expired_at FROM ev WHERE kind = 'expire' GROUP BY gid
),
bulk AS (
  SELECT g.grant_id AS gid, min(e.event_time) AS revoked_at
  FROM g JOIN grant_events e
    ON e.kind = 'revoke' AND e.revokes_issued_before IS NOT NULL
   AND coalesce(e.outcome, 'success') = 'success'
   AND g.issued_at < e.revokes_issued_before
   AND (e.principal_id = g.principal_id OR e.principal_id = g.issuer
        OR e.workload_identity = g.workload_identity)
  GROUP BY g.grant_id
),
lineage AS (
  SELECT g.grant_id,
         coalesce(g.attested, p1.attested, p2.attested, p3.attested) AS attested,
         coalesce(g.auth_method, p1.auth_method) AS auth_method,
         coalesce(g.agent_id, p1.agent_id, p2.agent_id) AS agent_id,
         coalesce(g.task_id, p1.task_id) AS task_id,
         coalesce(g.targets, p1.targets) AS targets,
         coalesce(g.decision_id, p1.decision_id) AS decision_id,
         CASE WHEN g.attested IS NULL AND p1.attested IS NULL AND p2.attested IS NULL
                   AND p3.attested IS NOT NULL THEN p3.auth_method
              WHEN g.attested IS NULL AND p1.attested IS NULL AND p2.attested IS NOT NULL
                   THEN p2.auth_method
              WHEN g.attested IS NULL AND p1.attested IS NOT NULL THEN p1.auth_method
              ELSE g.auth_method END AS attesting_method
  FROM g
  LEFT JOIN g AS p1 ON p1.grant_id = g.parent_grant_id
  LEFT JOIN g AS p2 ON p2.grant_id = p1.parent_grant_id
  LEFT JOIN g AS p3 ON p3.grant_id = p2.parent_grant_id
),
timeline AS (
  SELECT g.grant_id,
         coalesce(r.renewals, 0) AS renewals,
         r.last_renewed_at,
         CASE WHEN coalesce(r.renewals_without_expiry, 0) > 0 THEN CAST(NULL AS TIMESTAMP)
              WHEN r.renewed_until IS NOT NULL AND g.expires_at IS NOT NULL
                   THEN greatest(r.renewed_until, g.expires_at)
              ELSE coalesce(r.renewed_until, g.expires_at) END AS expires_at,
         CASE WHEN v.revoked_at IS NOT NULL AND b.revoked_at IS NOT NULL
                   THEN least(v.revoked_at, b.revoked_at)
              ELSE coalesce(v.revoked_at, b.revoked_at) END AS revoked_at,
         x.expired_at
  FROM g
  LEFT JOIN renewals r ON r.gid = g.grant_id
  LEFT JOIN revocations v ON v.gid = g.grant_id
  LEFT JOIN bulk b ON b.gid = g.grant_id
  LEFT JOIN expirations x ON x.gid = g.grant_id
)
SELECT g.grant_id, g.credential_id, g.parent_grant_id, g.source, g.principal_id, g.issuer,
       l.agent_id, g.workload_identity, l.attested, l.auth_method, l.attesting_method,
       l.task_id, g.objective, l.targets, g.scope, g.policies,
       g.issued_at, g.expires_at AS declared_expires_at, t.expires_at, t.renewals,
       t.last_renewed_at, t.revoked_at, t.expired_at,
       CASE WHEN t.expires_at IS NULL AND t.revoked_at IS NULL AND t.expired_at IS NULL
            THEN CAST(NULL AS TIMESTAMP)
            ELSE least(coalesce(t.expires_at, t.revoked_at, t.expired_at),
                       coalesce(t.revoked_at, t.expires_at, t.expired_at),
                       coalesce(t.expired_at, t.expires_at, t.revoked_at)) END AS valid_until,
       g.renewable, g.approval, l.decision_id,
       coalesce(g.policy_revision, d.policy_revision) AS policy_revision,
       g.event_id, g.event_time, g.source_file, g.source_offset
FROM g
JOIN lineage l ON l.grant_id = g.grant_id
JOIN timeline t ON t.grant_id = g.grant_id
LEFT JOIN (
  SELECT decision_id, min(policy_revision) AS policy_revision FROM decisions
  WHERE decision_id IS NOT NULL GROUP BY decision_id
) d ON d.decision_id = l.decision_id;

-- name: replay_scope_sets
-- Each distinct scope (a list of items) once, with a number: the per-use checks key on it
-- rather than on the list.
CREATE OR REPLACE VIEW replay_scope_sets AS
SELECT scope, row_number() OVER (ORDER BY scope) AS scope_key
FROM (SELECT DISTINCT scope FROM replay_grants WHERE scope IS NOT NULL) s;

-- name: replay_target_sets
-- Each distinct list of declared targets (of grants and of tasks) once, with a number.
CREATE OR REPLACE VIEW replay_target_sets AS
SELECT targets, row_number() OVER (ORDER BY targets) AS targets_key
FROM (SELECT targets FROM replay_grants WHERE targets IS NOT NULL
      UNION
      SELECT targets FROM replay_tasks WHERE targets IS NOT NULL) s;

-- name: replay_task_targets
-- Tasks that declare targets, by targets number.
CREATE OR REPLACE VIEW replay_task_targets AS
SELECT t.task_id, k.targets_key
FROM replay_tasks t JOIN replay_target_sets k ON k.targets = t.targets;

-- name: replay_credential_grants
-- Credentials held by exactly one grant (nearly all of them), with the grant columns a use
-- needs: a use of such a credential joins its grant with one hash lookup.
CREATE OR REPLACE VIEW replay_credential_grants AS
SELECT g.credential_id, g.grant_id, g.issued_at, g.expires_at, g.revoked_at, g.valid_until,
       g.agent_id, g.task_id, g.policy_revision, s.scope_key, t.targets_key
FROM (SELECT * FROM replay_grants WHERE credential_id IS NOT NULL
      QUALIFY count(*) OVER (PARTITION BY credential_id) = 1) g
LEFT JOIN replay_scope_sets s ON s.scope = g.scope
LEFT JOIN replay_target_sets t ON t.targets = g.targets;

-- name: replay_use_grants
-- The few uses whose grant is not the one grant of their credential. A credential id several
-- grants share: the latest grant issued at or before the use (5 s tolerance for clock skew),
-- else the earliest one (join_basis = 'credential'). Sources with no shared id (GCP access
-- tokens): principal + validity window (join_basis = 'principal_window').
CREATE OR REPLACE VIEW replay_use_grants AS
WITH per_credential AS (
  SELECT credential_id, count(*) AS n
  FROM replay_grants WHERE credential_id IS NOT NULL GROUP BY credential_id
),
reused AS (
  SELECT u.source, u.event_id, g.grant_id, 'credential' AS join_basis
  FROM uses u
  JOIN per_credential c ON c.credential_id = u.credential_id AND c.n > 1
  JOIN replay_grants g ON g.credential_id = u.credential_id
  QUALIFY row_number() OVER (
    PARTITION BY u.source, u.event_id
    ORDER BY CASE WHEN g.issued_at <= u.event_time + INTERVAL 5 SECOND THEN 0 ELSE 1 END,
             CASE WHEN g.issued_at <= u.event_time + INTERVAL 5 SECOND THEN g.issued_at END DESC,
             g.issued_at, g.grant_id) = 1
),
by_principal AS (
  SELECT u.source, u.event_id, g.grant_id, 'principal_window' AS join_basis
  FROM replay_grants g JOIN uses u
    ON g.credential_id IS NULL AND g.principal_id = u.principal_id
   AND u.event_time >= g.issued_at - INTERVAL 5 SECOND
   AND (g.valid_until IS NULL OR u.event_time <= g.valid_until + INTERVAL 5 SECOND)
  WHERE NOT EXISTS (SELECT 1 FROM per_credential c WHERE c.credential_id = u.credential_id)
  QUALIFY row_number() OVER (PARTITION BY u.source, u.event_id
                             ORDER BY g.issued_at DESC, g.grant_id) = 1
),
matched AS (
  SELECT * FROM reused
  UNION ALL
  SELECT * FROM by_principal
)
SELECT m.source, m.event_id, m.join_basis, g.grant_id, g.issued_at, g.expires_at, g.revoked_at,
       g.valid_until, g.agent_id, g.task_id, g.policy_revision, s.scope_key, t.targets_key
FROM matched m JOIN replay_grants g ON g.grant_id = m.grant_id
LEFT JOIN replay_scope_sets s ON s.scope = g.scope
LEFT JOIN replay_target_sets t ON t.targets = g.targets;

-- name: replay_uses
-- materialise: no
-- Every use with the grant valid at its instant (see replay_credential_grants and
-- replay_use_grants). A use no grant explains keeps NULL grant columns: its validity is
-- unverifiable. This view streams over the uses: a scan reads it once per detection, and
-- materialising millions of wide rows costs more than re-reading them.
CREATE OR REPLACE VIEW replay_uses AS
SELECT u.*,
       coalesce(c.grant_id, m.grant_id) AS grant_id,
       CASE WHEN c.grant_id IS NOT NULL THEN 'credential' ELSE m.join_basis END AS join_basis,
       CASE WHEN c.grant_id IS NOT NULL THEN c.issued_at ELSE m.issued_at END AS grant_issued_at,
       CASE WHEN c.grant_id IS NOT NULL THEN c.expires_at ELSE m.expires_at END AS grant_expires_at,
       CASE WHEN c.grant_id IS NOT NULL THEN c.revoked_at ELSE m.revoked_at END AS grant_revoked_at,
       CASE WHEN c.grant_id IS NOT NULL THEN c.valid_until ELSE m.valid_until END
         AS grant_valid_until,
       CASE WHEN c.grant_id IS NOT NULL THEN c.agent_id ELSE m.agent_id END AS grant_agent_id,
       CASE WHEN c.grant_id IS NOT NULL THEN c.task_id ELSE m.task_id END AS grant_task_id,
       CASE WHEN c.grant_id IS NOT NULL THEN c.policy_revision ELSE m.policy_revision END
         AS grant_policy_revision,
       -- numbers of the grant's scope and declared targets (replay_scope_sets, _target_sets)
       CASE WHEN c.grant_id IS NOT NULL THEN c.scope_key ELSE m.scope_key END AS grant_scope_key,
       CASE WHEN c.grant_id IS NOT NULL THEN c.targets_key ELSE m.targets_key END
         AS grant_targets_key,
       -- a tool call's own agent and task come first, also when known only from a span that
       -- arrived after it (replay_span_owners); then the grant's
       coalesce(u.task_id, o.owner_task, c.task_id, m.task_id) AS effective_task_id,
       coalesce(u.agent_id, o.owner_agent, c.agent_id, m.agent_id) AS effective_agent_id,
       -- obtaining a (task-bound) credential is what a login credential is for: such calls
       -- are judged as grants, not as work against the task's scope and targets
       CASE WHEN (u.source = 'vault' AND u.resource LIKE 'auth/token/create%')
                 OR u.action IN ('sts:AssumeRole', 'sts:AssumeRoleWithWebIdentity',
                                 'sts:AssumeRoleWithSAML', 'sts:GetSessionToken',
                                 'sts:GetFederationToken', 'sts:TagSession',
                                 'iam.serviceAccounts.getAccessToken',
                                 'iam.serviceAccounts.getOpenIdToken',
                                 'iam.serviceAccounts.signJwt')
                 OR (u.source = 'kubernetes' AND u.resource LIKE '%serviceaccounts/%/token')
            THEN TRUE ELSE FALSE END AS mints_credential
FROM uses u
LEFT JOIN replay_credential_grants c ON c.credential_id = u.credential_id
LEFT JOIN replay_use_grants m ON m.source = u.source AND m.event_id = u.event_id
LEFT JOIN replay_span_owners o
  ON u.ancestor_span_id IS NOT NULL AND o.trace_id = u.trace_id AND o.span_id = u.span_id;

-- name: replay_use_facts
-- One pass over the uses, counted by what the scope and target checks and the coverage
-- figures need: the combinations to check, and the facts each detection's coverage depends on.
-- Everything downstream reads this small table instead of the uses.
CREATE OR REPLACE VIEW replay_use_facts AS
WITH facts AS (
  SELECT u.grant_scope_key, u.action, coalesce(u.resource, '') AS resource,
         coalesce(t.targets_key, u.grant_targets_key) AS targets_key, u.target,
         u.outcome, u.join_basis, u.mints_credential,
         CASE WHEN u.credential_id IS NOT NULL THEN TRUE ELSE FALSE END AS has_credential,
         CASE WHEN u.grant_id IS NOT NULL THEN TRUE ELSE FALSE END AS has_grant,
         CASE WHEN u.grant_expires_at IS NOT NULL THEN TRUE ELSE FALSE END AS has_grant_expiry,
         CASE WHEN u.agent_id IS NOT NULL THEN TRUE ELSE FALSE END AS has_agent,
         CASE WHEN u.grant_agent_id IS NOT NULL THEN TRUE ELSE FALSE END AS has_grant_agent,
         CASE WHEN u.effective_agent_id IS NOT NULL THEN TRUE ELSE FALSE END
           AS has_effective_agent,
         CASE WHEN u.user_agent IS NOT NULL THEN TRUE ELSE FALSE END AS has_user_agent
  FROM replay_uses u LEFT JOIN replay_task_targets t ON t.task_id = u.effective_task_id
)
SELECT grant_scope_key, action, resource, targets_key, target, outcome, join_basis,
       mints_credential, has_credential, has_grant, has_grant_expiry, has_agent,
       has_grant_agent, has_effective_agent, has_user_agent, count(*) AS uses
FROM facts
GROUP BY grant_scope_key, action, resource, targets_key, target, outcome, join_basis,
         mints_credential, has_credential, has_grant, has_grant_expiry, has_agent,
         has_grant_agent, has_effective_agent, has_user_agent;

-- name: replay_scope_item_checks
-- Scope matching, once per distinct (grant scope, action, resource) rather than once per use:
-- for each scope item, whether it matches the action or action:resource (globs, `*` = any
-- run).
CREATE OR REPLACE VIEW replay_scope_item_checks AS
WITH combos AS (
  SELECT DISTINCT grant_scope_key AS scope_key, action, resource
  FROM replay_use_facts WHERE grant_scope_key IS NOT NULL AND action IS NOT NULL
),
items AS (
  SELECT c.scope_key, c.action, c.resource, UNNEST(s.scope) AS item
  FROM combos c JOIN replay_scope_sets s ON s.scope_key = c.scope_key
)
SELECT DISTINCT scope_key, action, resource, item,
       CASE WHEN action LIKE replace(replace(replace(replace(item, '\', '\\'), '%', '\%'),
                                             '_', '\_'), '*', '%') ESCAPE '\'
              OR concat(action, ':', resource)
                 LIKE replace(replace(replace(replace(item, '\', '\\'), '%', '\%'),
                                      '_', '\_'), '*', '%') ESCAPE '\'
            THEN 1 ELSE 0 END AS hit
FROM items;

-- name: replay_scope_checks
-- Per distinct (grant scope, action, resource): whether some scope item matches.
CREATE OR REPLACE VIEW replay_scope_checks AS
SELECT scope_key, action, resource, max(hit) AS in_scope
FROM replay_scope_item_checks
GROUP BY scope_key, action, resource;

-- name: replay_target_checks
-- Target matching, once per distinct (declared targets, target).
CREATE OR REPLACE VIEW replay_target_checks AS
WITH combos AS (
  SELECT DISTINCT targets_key, target FROM replay_use_facts
  WHERE targets_key IS NOT NULL AND target IS NOT NULL
),
items AS (
  SELECT c.targets_key, c.target, UNNEST(s.targets) AS item
  FROM combos c JOIN replay_target_sets s ON s.targets_key = c.targets_key
)
SELECT targets_key, target,
       max(CASE WHEN target LIKE replace(replace(replace(replace(item, '\', '\\'), '%', '\%'),
                                                 '_', '\_'), '*', '%') ESCAPE '\'
                THEN 1 ELSE 0 END) AS on_target
FROM items
GROUP BY targets_key, target;

-- name: replay_use_profile
-- The uses counted by the facts the detections' coverage figures depend on (from
-- replay_use_facts), so sixteen coverage figures cost no pass over the uses of their own.
CREATE OR REPLACE VIEW replay_use_profile AS
SELECT outcome, join_basis, mints_credential, has_credential, has_grant, has_grant_expiry,
       has_agent, has_grant_agent, has_effective_agent, has_user_agent,
       CASE WHEN grant_scope_key IS NOT NULL OR (target IS NOT NULL AND targets_key IS NOT NULL)
            THEN TRUE ELSE FALSE END AS has_scope_or_targets,
       sum(uses) AS uses
FROM replay_use_facts
GROUP BY outcome, join_basis, mints_credential, has_credential, has_grant, has_grant_expiry,
         has_agent, has_grant_agent, has_effective_agent, has_user_agent,
         CASE WHEN grant_scope_key IS NOT NULL OR (target IS NOT NULL AND targets_key IS NOT NULL)
              THEN TRUE ELSE FALSE END;

-- name: replay_delegations
-- Delegation edges (parent agent → child agent): a task started by another agent's task, and
-- an inner run, delegated by another agent within the same task (parent_task_id = the task).
CREATE OR REPLACE VIEW replay_delegations AS
SELECT t.task_id, t.agent_id AS child_agent_id,
       coalesce(t.delegated_by, p.agent_id) AS parent_agent_id,
       t.parent_task_id, t.started_at, t.ended_at
FROM replay_tasks t
LEFT JOIN replay_tasks p ON p.task_id = t.parent_task_id
WHERE t.parent_task_id IS NOT NULL OR t.delegated_by IS NOT NULL
UNION ALL
SELECT task_id, agent_id, delegated_by, task_id, min(started_at),
       CASE WHEN count(ended_at) = count(*) THEN max(ended_at) END
FROM replay_task_runs
WHERE inner_run = 1
GROUP BY task_id, agent_id, delegated_by;
