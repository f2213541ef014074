"""The control catalogue: one data file per framework version, pointing at detection IDs.

Each ``<framework-id>.yaml`` beside this module lists the framework's controls (``id``,
``title``, ``url``) and the detections whose findings *evidence a gap* in each; a detection
never names a framework (ARCHITECTURE §6). A file is validated on load and refused with a
clear error when a control ID is not an identifier of its framework, a title differs from the
reference text, or a detection ID is not in the detection registry. The reference lists ship
in ``reference_ids.json`` (produced by ``extract_reference.py`` from the shared reference
data), so the package needs nothing outside itself at runtime.

``not_evidenced`` in a file names detections with no relevant control in that framework and
says why; ``misattributed`` records identifiers that circulate in guidance but do not exist
(such as "OWASP Agentic AI Top 10 A2" and "CSA MAESTRO TA-3") and where the concern sits.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from jitaudit.detections import registry

REFERENCE_FILE = "reference_ids.json"
REQUIRED_KEYS = (
    "id",
    "name",
    "version",
    "publisher",
    "reference",
    "licence",
    "attribution",
    "source_url",
    "controls",
)
OPTIONAL_KEYS = ("order", "not_evidenced", "misattributed")
CONTROL_KEYS = {"id", "title", "url", "detections"}
MISATTRIBUTED_KEYS = {"id", "cited_as", "explanation", "see"}


class CatalogError(Exception):
    """A framework file that is malformed or points at something that does not exist."""


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    url: str
    #: detections whose findings evidence a gap in this control
    detections: tuple[str, ...]


@dataclass(frozen=True)
class Misattribution:
    """An identifier cited in guidance that the framework does not define."""

    id: str
    cited_as: str
    explanation: str
    #: (framework id, control id) pairs where the concern actually sits
    see: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Framework:
    id: str
    name: str
    version: str
    publisher: str
    licence: str
    attribution: str
    source_url: str
    #: the key of this framework's ID list in reference_ids.json
    reference: str
    controls: tuple[Control, ...]
    #: detection ID → why no control of this framework is relevant to it
    not_evidenced: Mapping[str, str]
    misattributed: tuple[Misattribution, ...]
    order: int = 100

    def control(self, control_id: str) -> Control:
        for c in self.controls:
            if c.id == control_id:
                return c
        for m in self.misattributed:
            if m.id == control_id:
                raise CatalogError(
                    f"{self.id}: {control_id!r} is not a real identifier. {m.explanation}"
                )
        raise CatalogError(
            f"{self.id}: no control {control_id!r} in the catalogue; "
            f"known: {', '.join(c.id for c in self.controls)}"
        )

    @property
    def detection_ids(self) -> frozenset[str]:
        """Every detection mapped to at least one control of this framework."""
        return frozenset(d for c in self.controls for d in c.detections)


# ------------------------------------------------------------------------------ loading


def _fail(name: str, message: str) -> CatalogError:
    return CatalogError(f"catalogue {name}: {message}")


def _text(name: str, where: str, value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
        raise _fail(name, f"{where} must be a non-empty string")
    return str(value)


def load_reference(path: Path | None = None) -> dict[str, Any]:
    """The shipped reference ID lists (``reference_ids.json``), by reference key."""
    if path is None:
        text = resources.files(__name__).joinpath(REFERENCE_FILE).read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    frameworks: dict[str, Any] = json.loads(text)["frameworks"]
    return frameworks


def _controls(
    name: str, raw: Any, ref: Mapping[str, Any], known_detections: Collection[str]
) -> tuple[Control, ...]:
    items: Mapping[str, str] = ref["items"]
    if not isinstance(raw, list) or not raw:
        raise _fail(name, "controls must be a non-empty list")
    out: list[Control] = []
    seen: set[str] = set()
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) != CONTROL_KEYS:
            raise _fail(
                name, f"a control must have exactly the keys {sorted(CONTROL_KEYS)}: {entry!r}"
            )
        cid = _text(name, "control id", entry["id"])
        if cid in seen:
            raise _fail(name, f"control {cid!r} is listed twice")
        seen.add(cid)
        if cid not in items:
            why = " (withdrawn)" if cid in ref.get("withdrawn", ()) else ""
            raise _fail(
                name,
                f"control {cid!r} is not an identifier of its framework{why} "
                f"(reference list {REFERENCE_FILE})",
            )
        title = _text(name, f"title of {cid}", entry["title"])
        if title != items[cid]:
            raise _fail(name, f"title of {cid} is {title!r}; the reference text is {items[cid]!r}")
        url = _text(name, f"url of {cid}", entry["url"])
        if not url.startswith("https://"):
            raise _fail(name, f"url of {cid} must be an https URL")
        dets = entry["detections"]
        if not isinstance(dets, list):
            raise _fail(name, f"detections of {cid} must be a list")
        for did in dets:
            if did not in known_detections:
                raise _fail(name, f"control {cid} names detection {did!r}, which does not exist")
        if len(set(dets)) != len(dets):
            raise _fail(name, f"control {cid} names a detection twice")
        out.append(Control(id=cid, title=title, url=url, detections=tuple(dets)))
    return tuple(out)


def _misattributed(name: str, raw: Any, items: Mapping[str, str]) -> tuple[Misattribution, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(name, "misattributed must be a list")
    out = []
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) != MISATTRIBUTED_KEYS:
            raise _fail(
                name, f"a misattributed entry must have the keys {sorted(MISATTRIBUTED_KEYS)}"
            )
        mid = _text(name, "misattributed id", entry["id"])
        if mid in items:
            raise _fail(
                name, f"{mid!r} is a real identifier of this framework, not a misattribution"
            )
        see = entry["see"]
        if not isinstance(see, dict) or not see:
            raise _fail(name, f"see of {mid!r} must map framework ids to control ids")
        out.append(
            Misattribution(
                id=mid,
                cited_as=_text(name, f"cited_as of {mid}", entry["cited_as"]),
                explanation=" ".join(
                    _text(name, f"explanation of {mid}", entry["explanation"]).split()
                ),
                see=tuple((str(fw), str(c)) for fw, cs in see.items() for c in cs),
            )
        )
    return tuple(out)


def parse(
    name: str,
    text: str,
    reference: Mapping[str, Any],
    known_detections: Collection[str],
) -> Framework:
    """Build and validate one framework from its file name (``<id>.yaml``) and YAML text."""
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise _fail(name, "a framework file is a mapping")
    unknown = set(raw) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS)
    if unknown:
        raise _fail(name, f"unknown keys {sorted(unknown)}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise _fail(name, f"lacks {missing}")
    fid = _text(name, "id", raw["id"])
    if f"{fid}.yaml" != name:
        raise _fail(name, f"id {fid!r} does not match the file name")
    ref_key = _text(name, "reference", raw["reference"])
    if ref_key not in reference:
        raise _fail(name, f"reference {ref_key!r} is not in {REFERENCE_FILE}")
    controls = _controls(name, raw["controls"], reference[ref_key], known_detections)
    mapped = {d for c in controls for d in c.detections}
    not_evidenced: dict[str, str] = {}
    for did, reason in (raw.get("not_evidenced") or {}).items():
        if did not in known_detections:
            raise _fail(name, f"not_evidenced names detection {did!r}, which does not exist")
        if did in mapped:
            raise _fail(name, f"{did} is both mapped and listed as not evidenced")
        not_evidenced[did] = " ".join(_text(name, f"reason for {did}", reason).split())
    order = raw.get("order", 100)
    if not isinstance(order, int) or isinstance(order, bool):
        raise _fail(name, "order must be an integer")
    return Framework(
        id=fid,
        name=_text(name, "name", raw["name"]),
        version=_text(name, "version", raw["version"]),
        publisher=_text(name, "publisher", raw["publisher"]),
        licence=_text(name, "licence", raw["licence"]),
        attribution=" ".join(_text(name, "attribution", raw["attribution"]).split()),
        source_url=_text(name, "source_url", raw["source_url"]),
        reference=ref_key,
        controls=controls,
        not_evidenced=MappingProxyType(not_evidenced),
        misattributed=_misattributed(name, raw.get("misattributed"), reference[ref_key]["items"]),
        order=order,
    )


def load(
    directory: Path | Traversable | None = None,
    *,
    reference: Mapping[str, Any] | None = None,
    detections: Collection[str] | None = None,
) -> tuple[Framework, ...]:
    """Every framework file in ``directory`` (the shipped catalogue by default), validated."""
    if detections is None:
        detections = set(registry.load())
    reference = load_reference() if reference is None else reference
    root: Path | Traversable = resources.files(__name__) if directory is None else directory
    files = sorted((p for p in root.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)
    if not files:
        raise CatalogError(f"no framework files in {root}")
    out = [parse(p.name, p.read_text(encoding="utf-8"), reference, detections) for p in files]
    by_id = {f.id: f for f in out}
    for fw in out:
        for m in fw.misattributed:
            for target, cid in m.see:
                if target not in by_id or cid not in {c.id for c in by_id[target].controls}:
                    raise _fail(
                        f"{fw.id}.yaml",
                        f"{m.id!r} points at {target}:{cid}, which is not in the catalogue",
                    )
    return tuple(sorted(out, key=lambda f: (f.order, f.id)))


# ------------------------------------------------------------------------------ queries


@cache
def _catalogue() -> tuple[Framework, ...]:
    return load()


def frameworks() -> list[Framework]:
    """The shipped frameworks, in catalogue order."""
    return list(_catalogue())


def framework(framework_id: str) -> Framework:
    for fw in _catalogue():
        if fw.id == framework_id:
            return fw
    known = ", ".join(f.id for f in _catalogue())
    raise CatalogError(f"unknown framework {framework_id!r}; known: {known}")


@cache
def _by_detection() -> Mapping[str, tuple[tuple[str, str, str], ...]]:
    index: dict[str, list[tuple[str, str, str]]] = {}
    for fw in _catalogue():
        for c in fw.controls:
            for did in c.detections:
                index.setdefault(did, []).append((fw.id, c.id, c.title))
    return MappingProxyType({k: tuple(v) for k, v in index.items()})


def controls_for(detection_id: str) -> list[dict[str, str]]:
    """The controls whose gap a finding of ``detection_id`` evidences, in catalogue order:
    ``[{"framework": ..., "control_id": ..., "title": ...}]`` (fresh dicts on every call)."""
    return [
        {"framework": fw, "control_id": cid, "title": title}
        for fw, cid, title in _by_detection().get(detection_id, ())
    ]


def detections_for(framework_id: str, control_id: str) -> list[str]:
    """The detections whose findings evidence a gap in one control (empty when none does)."""
    return list(framework(framework_id).control(control_id).detections)


def misattributions() -> list[tuple[Framework, Misattribution]]:
    """Identifiers that circulate in guidance but do not exist, with their framework."""
    return [(fw, m) for fw in _catalogue() for m in fw.misattributed]


__all__ = [
    "CatalogError",
    "Control",
    "Framework",
    "Misattribution",
    "controls_for",
    "detections_for",
    "framework",
    "frameworks",
    "load",
    "load_reference",
    "misattributions",
    "parse",
]
