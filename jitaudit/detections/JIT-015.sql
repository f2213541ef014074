-- JIT-015 unattested-identity: a grant obtained with a static secret (AppRole, userpass, IAM
-- user keys, SA keys, client secrets) instead of attested workload identity. Grants inherit
-- attestation from the login their parent token came from.
SELECT 'grant:' || grant_id AS subject, 'grants' AS event_table, event_id, issued_at AS event_time,
       agent_id, principal_id, credential_id, task_id, source, source_file, source_offset,
       concat('obtained via ', coalesce(attesting_method, auth_method, 'a static secret'),
              ', not attested workload identity') AS detail
FROM replay_grants
WHERE attested = FALSE
