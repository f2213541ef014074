"""Vault enrichment files: role TTLs (lease expiries) and ACL policies (token scope).

Vault never audits a lease's TTL, and a token's audit entry names its policies but not what
they allow. ``jitaudit ingest --enrich FILE`` fills both gaps. Two kinds of file are read
here; any other enrichment file is left to the ingester it belongs to.

**Role TTLs** — YAML or JSON with a top-level ``vault_role_ttls`` mapping from a secret path
pattern (``*`` matches any run of characters) to a TTL, as seconds or a Go duration
(``90s``, ``15m``, ``1h30m``)::

    vault_role_ttls:
      "database/creds/billing-*": 1h
      "aws/creds/deploy": 900

A lease whose id starts with a matching path (``database/creds/billing-ro/AbC…``) gets
``expires_at = issued_at + TTL``; the longest matching pattern wins. A lease renewal gets
``new_expires_at = renewal time + min(increment, TTL)``.

**ACL policies** — Vault's own policy documents, named by their file stem
(``billing.hcl`` is policy ``billing``):

* HCL: ``path "secret/data/billing/*" { capabilities = ["read", "list"] }`` (the pre-0.9
  ``policy = "read|write|sudo|deny"`` form is accepted too);
* JSON: ``{"path": {"secret/data/billing/*": {"capabilities": ["read"]}}}``;
* the API read form ``{"data": {"name": "billing", "policy": "<HCL text>"}}`` (output of
  ``vault read -format=json sys/policy/billing``), named by ``name``.

A token's ``scope`` becomes the ``capability:path`` items (``read:secret/data/billing/*``) of
all its policies when every one of them is known (``root`` is ``*``; ``default`` is Vault's
stock default policy unless a file named ``default`` is given); otherwise it stays NULL.
``deny`` and ``sudo`` are not operations and add no item; Vault's ``+`` segment wildcard
becomes ``*`` (a superset).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml

from jitaudit.ingest.files import InputError

OPERATIONS = ("create", "read", "update", "patch", "delete", "list")
_OLD_POLICY = {
    "deny": (),
    "read": ("read", "list"),
    "write": ("create", "read", "update", "delete", "list"),
    "sudo": ("create", "read", "update", "delete", "list"),
}

#: Vault's stock ``default`` policy (paths a token may always use on itself); used for
#: scope only when policy files are given and none of them is named ``default``.
DEFAULT_POLICY = """
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "sys/capabilities-self" { capabilities = ["update"] }
path "identity/entity/id/*" { capabilities = ["read"] }
path "identity/entity/name/*" { capabilities = ["read"] }
path "sys/internal/ui/resultant-acl" { capabilities = ["read"] }
path "sys/renew" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/wrapping/wrap" { capabilities = ["update"] }
path "sys/wrapping/lookup" { capabilities = ["update"] }
path "sys/wrapping/unwrap" { capabilities = ["update"] }
path "sys/tools/hash" { capabilities = ["update"] }
path "sys/tools/hash/*" { capabilities = ["update"] }
path "sys/control-group/request" { capabilities = ["update"] }
path "sys/mfa/challenge" { capabilities = ["update"] }
"""

_COMMENTS = re.compile(r'("(?:\\.|[^"\\])*")|/\*.*?\*/|(?:#|//)[^\n]*', re.S)
_PATH_BLOCK = re.compile(r'path\s+"((?:\\.|[^"\\])*)"\s*=?\s*\{([^{}]*)\}', re.S)
_CAPS = re.compile(r"capabilities\s*=\s*\[([^\]]*)\]", re.S)
_OLD = re.compile(r'policy\s*=\s*"([a-z]+)"')
_HCL_HINT = re.compile(r'^\s*path\s+"[^"\n]*"\s*=?\s*\{', re.M)
_STRING = re.compile(r'"((?:\\.|[^"\\])*)"')
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class Enrichment:
    """What the enrichment files say: role TTL patterns and policy scope items by name."""

    role_ttls: dict[str, int] = field(default_factory=dict)
    policies: dict[str, list[str]] = field(default_factory=dict)


def ttl_seconds(value: object) -> int:
    """Seconds from an int, a numeric string or a Go duration (``1h30m``)."""
    if isinstance(value, bool):
        raise ValueError(f"not a TTL: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a TTL: {value!r}")
    return int(sum(float(n) * _UNIT[u] for n, u in parts))


def _items(paths: Iterable[tuple[str, Sequence[str]]]) -> list[str]:
    out: list[str] = []
    for path, caps in paths:
        glob = path.replace("+", "*")
        out.extend(f"{c}:{glob}" for c in caps if c in OPERATIONS)
    return sorted(set(out))


def parse_hcl_policy(text: str) -> list[str]:
    """Scope items of an HCL policy document."""
    body = _COMMENTS.sub(lambda m: m.group(1) or "", text)
    paths: list[tuple[str, Sequence[str]]] = []
    for m in _PATH_BLOCK.finditer(body):
        block = m.group(2)
        caps = _CAPS.search(block)
        if caps:
            paths.append((m.group(1), _STRING.findall(caps.group(1))))
        elif old := _OLD.search(block):
            paths.append((m.group(1), _OLD_POLICY.get(old.group(1), ())))
    if not paths and "path" in body:
        raise ValueError("no path blocks could be read")
    return _items(paths)


def parse_json_policy(doc: dict[str, Any]) -> list[str]:
    """Scope items of a JSON policy document (``{"path": {...}}``)."""
    blocks = doc["path"]
    merged: dict[str, Any] = {}
    for block in blocks if isinstance(blocks, list) else [blocks]:
        merged.update(block)
    paths: list[tuple[str, Sequence[str]]] = []
    for path, rule in merged.items():
        rule = rule[0] if isinstance(rule, list) else rule
        caps = rule.get("capabilities")
        if caps is None:
            caps = _OLD_POLICY.get(str(rule.get("policy")), ())
        paths.append((path, [str(c) for c in caps]))
    return _items(paths)


def _load_one(path: Path, out: Enrichment) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read enrichment file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".hcl" or _HCL_HINT.search(text):
            out.policies[path.stem] = parse_hcl_policy(text)
            return
        try:
            doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (yaml.YAMLError, json.JSONDecodeError):
            return  # not ours: another ingester's enrichment
        if not isinstance(doc, dict):
            return
        if "vault_role_ttls" in doc:
            ttls = doc["vault_role_ttls"] or {}
            if not isinstance(ttls, dict):
                raise ValueError("vault_role_ttls must map path patterns to TTLs")
            out.role_ttls.update({str(k): ttl_seconds(v) for k, v in ttls.items()})
        elif "path" in doc:
            out.policies[path.stem] = parse_json_policy(doc)
        elif isinstance(doc.get("data"), dict) and "policy" in doc["data"]:
            data = doc["data"]
            out.policies[str(data.get("name") or path.stem)] = parse_hcl_policy(data["policy"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"enrichment file {path}: not a valid Vault file: {exc}") from None


def load(paths: Sequence[Path]) -> Enrichment:
    """Read the Vault enrichment files among ``paths`` (others are ignored)."""
    out = Enrichment()
    for p in paths:
        _load_one(Path(p), out)
    if out.policies and "default" not in out.policies:
        out.policies["default"] = parse_hcl_policy(DEFAULT_POLICY)
    out.policies.setdefault("root", ["*"])
    return out


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def register(con: duckdb.DuckDBPyConnection, enrichment: Enrichment) -> None:
    """Temp tables ``_vault_role_ttl(pattern, like_pattern, ttl_s)`` and
    ``_vault_policy(name, items)`` for the normaliser's joins (empty when not given)."""
    ttl = pa.table(
        {
            "pattern": pa.array(list(enrichment.role_ttls), pa.string()),
            "like_pattern": pa.array([_like(p) for p in enrichment.role_ttls], pa.string()),
            "ttl_s": pa.array(list(enrichment.role_ttls.values()), pa.int64()),
        }
    )
    pol = pa.table(
        {
            "name": pa.array(list(enrichment.policies), pa.string()),
            "items": pa.array(list(enrichment.policies.values()), pa.list_(pa.string())),
        }
    )
    con.register("_vault_role_ttl_arrow", ttl)
    con.register("_vault_policy_arrow", pol)
    con.execute("CREATE OR REPLACE TEMP TABLE _vault_role_ttl AS FROM _vault_role_ttl_arrow")
    con.execute("CREATE OR REPLACE TEMP TABLE _vault_policy AS FROM _vault_policy_arrow")
