"""The one registry of ingesters, and content-based format detection."""

from __future__ import annotations

import importlib

from jitaudit.ingest.base import Ingester
from jitaudit.ingest.files import EmptyInput, InputError, InputFile, container_text

#: format name → module defining ``INGESTER``. Detection tries them in this order, so a
#: format whose content is a special case of another's (OPA console lines are JSON lines
#: too) comes first.
MODULES: dict[str, str] = {
    "cloudtrail": "jitaudit.ingest.cloudtrail",
    "vault": "jitaudit.ingest.vault",
    "kubernetes": "jitaudit.ingest.kubernetes",
    "gcp": "jitaudit.ingest.gcp",
    "azure": "jitaudit.ingest.azure",
    "teleport": "jitaudit.ingest.teleport",
    "opa": "jitaudit.ingest.opa",
    "otel": "jitaudit.ingest.otel",
    "envoy": "jitaudit.ingest.envoy",
    "squid": "jitaudit.ingest.squid",
    # chosen by --mapping FILE, never detected (its sniff is always False)
    "custom": "jitaudit.ingest.custom",
}

_cache: dict[str, Ingester] = {}


def available() -> list[str]:
    """Names of the formats whose ingester is installed."""
    out = []
    for name, module in MODULES.items():
        try:
            get(name)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        out.append(name)
    return out


def get(name: str) -> Ingester:
    if name not in MODULES:
        raise InputError(f"unknown format {name!r}; formats are {', '.join(MODULES)}")
    if name not in _cache:
        ingester: Ingester = importlib.import_module(MODULES[name]).INGESTER
        _cache[name] = ingester
    return _cache[name]


def detect(f: InputFile) -> str:
    """The format of ``f`` from its content; InputError when no ingester recognises it."""
    head = container_text(f.head().decode("utf-8", errors="replace"))
    if not head.strip():
        raise EmptyInput(f"{f.name}: empty file, nothing to ingest")
    for name in available():
        if get(name).sniff(head):
            return name
    raise InputError(
        f"{f.name}: unknown log format (first bytes: {head[:60]!r}); pass --format to force one"
    )
