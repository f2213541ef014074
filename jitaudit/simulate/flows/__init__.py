"""Steps of a task's life, each turning a frame of tasks into one system's records.

The background calls every step on thousands of tasks at once; the injected cases call the
same steps on one-row frames and change what they need. A task frame carries the columns that
``background.dress`` builds (names, ids, secrets, times); a step returns a frame in the semantic
columns of one writer. One module per system; this package re-exports them all.
"""

from __future__ import annotations

from jitaudit.simulate.flows.aws import (
    role_id,
    s3_call,
    session_policy,
    sts_assume_task_role,
    sts_web_identity,
)
from jitaudit.simulate.flows.common import (
    AGENT_UA,
    BOTO_UA,
    GCP_NAT_IP,
    GCP_UA,
    KUBELET_UA,
    NAT_IP,
    VAULT_MOUNTS,
    Hmac,
    at,
    c,
    frame,
    lat,
)
from jitaudit.simulate.flows.gcp import (
    gcp_access_token,
    gcp_labels,
    gcp_sa_email,
    gcs_get,
    workload_subject,
)
from jitaudit.simulate.flows.kubernetes import token_request
from jitaudit.simulate.flows.otel import chat, execute_tool, invoke_agent
from jitaudit.simulate.flows.proxy import grant_decision, proxied
from jitaudit.simulate.flows.vault import (
    caller,
    child_meta,
    granting,
    login_meta,
    policies,
    vault_call,
    vault_child_token,
    vault_db_creds,
    vault_kv_read,
    vault_lease,
    vault_login,
    vault_renew_self,
    vault_revoke_self,
)

__all__ = [
    "AGENT_UA",
    "BOTO_UA",
    "GCP_NAT_IP",
    "GCP_UA",
    "KUBELET_UA",
    "NAT_IP",
    "VAULT_MOUNTS",
    "Hmac",
    "annotations",
    "at",
    "c",
    "caller",
    "chat",
    "child_meta",
    "execute_tool",
    "frame",
    "gcp_access_token",
    "gcp_labels",
    "gcp_sa_email",
    "gcs_get",
    "grant_decision",
    "granting",
    "invoke_agent",
    "lat",
    "login_meta",
    "policies",
    "proxied",
    "role_id",
    "s3_call",
    "session_policy",
    "sts_assume_task_role",
    "sts_web_identity",
    "token_request",
    "vault_call",
    "vault_child_token",
    "vault_db_creds",
    "vault_kv_read",
    "vault_lease",
    "vault_login",
    "vault_renew_self",
    "vault_revoke_self",
    "workload_subject",
]
