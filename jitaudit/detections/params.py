"""Detection parameters: defaults from metadata, overrides per detection and per target.

``jitaudit.toml``::

    [detections.JIT-007]
    max_ttl_seconds = 3600              # overrides the default for every target

    [[detections.JIT-007.targets]]      # first matching glob wins
    match = "arn:aws:s3:::batch-*"
    max_ttl_seconds = 14400

In SQL, ``${name}`` is the detection-wide value and ``${name:expr}`` is the value for the
target that ``expr`` evaluates to (a portable ``CASE expr LIKE … THEN … ELSE … END``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jitaudit.detections.registry import PARAM_PATTERN, Detection, RegistryError


def load_config(path: Path | None) -> dict[str, Any]:
    """The ``[detections]`` table of a jitaudit.toml (empty when there is no file)."""
    if path is None:
        default = Path("jitaudit.toml")
        if not default.exists():
            return {}
        path = default
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(f"{path}: {exc}") from None
    detections = data.get("detections", {})
    if not isinstance(detections, dict):
        raise RegistryError(f"{path}: [detections] must be a table")
    return detections


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        # BIGINT so that thresholds times microseconds cannot overflow 32 bits
        return f"CAST({value} AS BIGINT)"
    if isinstance(value, float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def glob_to_like(pattern: str) -> str:
    """A glob (``*`` = any run) as a LIKE pattern with ``\\`` as the escape character."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def resolve(
    det: Detection, config: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Detection-wide values and per-target overrides, validated against the metadata."""
    section = dict(config.get(det.id, {}) or {})
    targets = section.pop("targets", []) or []
    section.pop("enabled", None)
    unknown = set(section) - set(det.parameters)
    if unknown:
        raise RegistryError(f"{det.id}: unknown parameters in config {sorted(unknown)}")
    values = {**det.parameters, **section}
    for name, value in section.items():
        if type(value) is not type(det.parameters[name]) and not (
            isinstance(value, int | float) and isinstance(det.parameters[name], int | float)
        ):
            raise RegistryError(f"{det.id}: parameter {name} must be like {det.parameters[name]!r}")
    for t in targets:
        if "match" not in t:
            raise RegistryError(f"{det.id}: a [[targets]] entry needs 'match'")
        bad = set(t) - {"match"} - set(det.parameters)
        if bad:
            raise RegistryError(f"{det.id}: unknown parameters in targets {sorted(bad)}")
    return values, list(targets)


def render(det: Detection, config: Mapping[str, Any], text: str | None = None) -> str:
    """``text`` (the detection's SQL by default) with every placeholder replaced."""
    values, targets = resolve(det, config)

    def sub(match: Any) -> str:
        name, expr = match.group(1), match.group(2)
        default = literal(values[name])
        overrides = [t for t in targets if name in t]
        if not expr or not overrides:
            return default
        whens = " ".join(
            f"WHEN ({expr}) LIKE {literal(glob_to_like(str(t['match'])))} ESCAPE '\\' "
            f"THEN {literal(t[name])}"
            for t in overrides
        )
        return f"(CASE {whens} ELSE {default} END)"

    return PARAM_PATTERN.sub(sub, det.sql if text is None else text)


def enabled(det: Detection, config: Mapping[str, Any]) -> bool:
    return bool((config.get(det.id) or {}).get("enabled", True))
