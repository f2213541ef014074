"""Suppressions: a YAML file of accepted findings, each with owner, reason and expiry.

::

    suppressions:
      - detection: JIT-009
        match: {agent_id: worker-billing-001}       # agent_id, credential_id, task_id, finding_id
        owner: alice@example.com
        reason: shared build credential, replacement tracked in SEC-123
        expires: 2026-12-31

An entry suppresses matching findings until the end of its expiry date (UTC). An expired entry
stops suppressing and is itself reported, so that accepted risk is looked at again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml

MATCH_KEYS = ("agent_id", "credential_id", "task_id", "finding_id")


class SuppressionError(Exception):
    """A suppressions file that cannot be used, with the entry at fault."""


@dataclass(frozen=True)
class Suppression:
    detection: str
    match: dict[str, str]
    owner: str
    reason: str
    expires: date

    def expired(self, now: datetime) -> bool:
        return now >= datetime.combine(self.expires + timedelta(days=1), time())

    def matches(self, finding: Any) -> bool:
        if finding.detection_id != self.detection and self.detection != "*":
            return False
        return all(getattr(finding, k) == v for k, v in self.match.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "detection": self.detection,
            "match": self.match,
            "owner": self.owner,
            "reason": self.reason,
            "expires": self.expires.isoformat(),
        }


def _entry(i: int, raw: Any) -> Suppression:
    where = f"suppression #{i + 1}"
    if not isinstance(raw, dict):
        raise SuppressionError(f"{where}: not a mapping")
    for key in ("detection", "match", "owner", "reason", "expires"):
        if not raw.get(key):
            raise SuppressionError(f"{where}: missing {key!r}")
    match = raw["match"]
    if not isinstance(match, dict) or not match or set(match) - set(MATCH_KEYS):
        raise SuppressionError(f"{where}: match must use some of {MATCH_KEYS}")
    expires = raw["expires"]
    if isinstance(expires, str):
        try:
            expires = date.fromisoformat(expires)
        except ValueError:
            raise SuppressionError(f"{where}: expires must be YYYY-MM-DD") from None
    if not isinstance(expires, date):
        raise SuppressionError(f"{where}: expires must be YYYY-MM-DD")
    return Suppression(
        str(raw["detection"]),
        {k: str(v) for k, v in match.items()},
        str(raw["owner"]),
        str(raw["reason"]),
        expires,
    )


def load(path: Path | None) -> list[Suppression]:
    if path is None or not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SuppressionError(f"{path}: {exc}") from None
    entries = data.get("suppressions", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SuppressionError(f"{path}: expected a 'suppressions' list")
    return [_entry(i, e) for i, e in enumerate(entries)]


def add(path: Path, entry: Suppression) -> None:
    """Append ``entry`` to the file (created when absent), keeping the others as they are."""
    current = load(path)
    data = {"suppressions": [s.to_json() for s in [*current, entry]]}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)
