"""Kubernetes: the kubelet's TokenRequests for pod tokens."""

from __future__ import annotations

import polars as pl

from jitaudit.simulate.flows.common import KUBELET_UA, c, frame, lat
from jitaudit.simulate.organisation import (
    NAMESPACE,
    US,
    IdSource,
)
from jitaudit.simulate.writers import fragments as f
from jitaudit.simulate.writers import kubernetes


def token_request(
    tasks: pl.DataFrame, ids: IdSource, *, t: pl.Expr | None = None, seconds: int = 600
) -> tuple[pl.DataFrame, pl.Series]:
    """The kubelet requests the pod's projected service-account token (audience vault)."""
    jti = ids.uuid(tasks.height)
    request_object = f.cat(
        '{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":'
        '{"creationTimestamp":null},"spec":{"audiences":["vault"],"expirationSeconds":',
        pl.lit(str(seconds)),
        ',"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"',
        c("agent"),
        '-task","uid":"',
        c("pod_uid"),
        '"}},"status":{"token":"","expirationTimestamp":null}}',
    )
    annotations = kubernetes.authz_annotations(
        pl.lit(True), pl.lit(""), f.cat('"JTI=', pl.lit(jti), '"')
    )
    out = frame(
        kubernetes.COLUMNS,
        tasks,
        t=c("t0") + US // 2 if t is None else t,
        lat=lat(4.0),
        audit_id=pl.lit(ids.uuid(tasks.height)),
        level="Request",
        verb="create",
        uri=f.cat(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/", c("agent"), "/token"),
        username=f.cat("system:node:", c("node")),
        uid=None,
        groups=f.str_list(["system:nodes", "system:authenticated"]),
        extra=None,
        src_ip=c("node_ip"),
        user_agent=KUBELET_UA,
        objref=kubernetes.objref("serviceaccounts", pl.lit(NAMESPACE), c("agent"), "token"),
        code=201,
        annotations=annotations,
        request_object=request_object,
        duplicate=False,
    )
    return out, jti
