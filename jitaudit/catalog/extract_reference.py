"""Extract the reference ID lists the catalogue validates against into ``reference_ids.json``.

Run once when the reference data changes (the package never reads ``../shared`` at runtime)::

    python -m jitaudit.catalog.extract_reference /work/shared/reference

It copies, for the frameworks the catalogue uses, the IDs and titles of
``controls-reference.json`` (which marks unverified items in their titles), and takes every
control and enhancement of NIST SP 800-53 Rev. 5 from NIST's OSCAL catalog (label → title),
leaving out withdrawn ones. The output records both inputs' SHA-256 so a reader can tell
which reference it came from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: frameworks of controls-reference.json the catalogue uses (SP 800-53 comes from OSCAL)
REFERENCE_KEYS = (
    "OWASP-ASI-2026",
    "OWASP-Agentic-TM",
    "OWASP-NHI-2025",
    "OWASP-LLM-2025",
    "NIST-AI-RMF-1.0",
    "CSA-MAESTRO",
)
SP800_53 = "NIST-SP800-53r5"
OUTPUT = Path(__file__).with_name("reference_ids.json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _walk(controls: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for control in controls:
        yield control
        yield from _walk(control.get("controls", []))


def _label(control: dict[str, Any]) -> str:
    for prop in control.get("props", []):
        if prop["name"] == "label":
            return str(prop["value"])
    raise ValueError(f"OSCAL control {control['id']} has no label")


def oscal_items(catalog: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Label → title of every control and enhancement in force, and the withdrawn labels."""
    items: dict[str, str] = {}
    withdrawn: list[str] = []
    for group in catalog["catalog"]["groups"]:
        for control in _walk(group.get("controls", [])):
            status = {p["value"] for p in control.get("props", []) if p["name"] == "status"}
            if "withdrawn" in status:
                withdrawn.append(_label(control))
            else:
                items[_label(control)] = str(control["title"])
    return items, withdrawn


def extract(reference_dir: Path) -> dict[str, Any]:
    ref_path = reference_dir / "controls-reference.json"
    oscal_path = reference_dir / "nist-800-53r5-oscal-catalog.json"
    reference = json.loads(ref_path.read_text())
    oscal = json.loads(oscal_path.read_text())
    frameworks: dict[str, Any] = {}
    for key in REFERENCE_KEYS:
        entry = reference[key]
        frameworks[key] = {
            "source": entry.get("source"),
            "licence": entry.get("licence"),
            "verification": entry.get("verification"),
            "items": dict(entry["items"]),
        }
    items, withdrawn = oscal_items(oscal)
    meta = oscal["catalog"]["metadata"]
    # OSCAL is the primary source: where the selected titles of controls-reference.json differ
    # (IA-2's capitalisation in OSCAL 5.0.1), OSCAL wins and the difference is recorded
    differences: dict[str, dict[str, str | None]] = {}
    for label, title in reference[SP800_53]["items"].items():
        if items.get(label) != title:
            differences[label] = {"controls-reference.json": title, "oscal": items.get(label)}
    frameworks[SP800_53] = {
        "source": f"{meta['title']} (OSCAL catalog {meta['version']})",
        "licence": reference[SP800_53]["licence"],
        "verification": "primary (NIST OSCAL catalog)",
        "items": items,
        "withdrawn": withdrawn,
        "differences_from_controls_reference": differences,
    }
    return {
        "produced_by": "python -m jitaudit.catalog.extract_reference <shared/reference>",
        "inputs": {
            ref_path.name: _sha256(ref_path),
            oscal_path.name: _sha256(oscal_path),
        },
        "frameworks": frameworks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference_dir", type=Path, help="the shared reference directory")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    data = extract(args.reference_dir)
    args.output.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
