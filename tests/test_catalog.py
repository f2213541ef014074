"""The control catalogue: every ID is real, every detection is mapped (or says why not), bad
files are refused, the wrong citations are documented, and scan findings carry the controls.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from jitaudit import catalog, scan, scan_state
from jitaudit.catalog import CatalogError, extract_reference
from jitaudit.detections import registry
from jitaudit.detections.runner import Finding
from jitaudit.lake import InputRef, Lake
from tests.conftest import ROOT, rows

CATALOG_DIR = ROOT / "jitaudit" / "catalog"
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"
#: the frameworks the catalogue must cover (ARCHITECTURE §6), by catalogue id
FRAMEWORKS = (
    "owasp-asi-2026",
    "owasp-agentic-tm-1.0",
    "owasp-nhi-2025",
    "owasp-llm-2025",
    "nist-ai-rmf-1.0",
    "nist-sp800-53r5",
    "csa-maestro",
)
DETECTIONS = tuple(registry.load())
REFERENCE = catalog.load_reference()


def test_the_catalogue_holds_the_frameworks_in_order() -> None:
    assert tuple(f.id for f in catalog.frameworks()) == FRAMEWORKS


@pytest.mark.parametrize("fw", catalog.frameworks(), ids=lambda f: f.id)
def test_every_control_id_and_title_is_in_its_reference_list(fw: catalog.Framework) -> None:
    items = REFERENCE[fw.reference]["items"]
    for control in fw.controls:
        assert control.id in items, f"{fw.id}: {control.id} is not a real identifier"
        assert control.title == items[control.id], f"{fw.id}: title of {control.id}"
        assert control.url.startswith("https://")


@pytest.mark.parametrize("fw", catalog.frameworks(), ids=lambda f: f.id)
@pytest.mark.parametrize("detection_id", DETECTIONS)
def test_every_detection_is_mapped_or_excused(fw: catalog.Framework, detection_id: str) -> None:
    """Each detection evidences ≥ 1 control of every framework, unless the framework's file
    names it under ``not_evidenced`` with the reason no control there is relevant."""
    mapped = detection_id in fw.detection_ids
    excused = detection_id in fw.not_evidenced
    assert mapped != excused, f"{detection_id} in {fw.id}: mapped={mapped}, excused={excused}"
    if excused:
        assert len(fw.not_evidenced[detection_id]) > 40  # a reason, not a placeholder


def test_exceptions_are_only_where_the_framework_has_no_relevant_control() -> None:
    """The frameworks built for agents, agent identities and controls map every detection."""
    for fid in ("owasp-asi-2026", "owasp-agentic-tm-1.0", "nist-ai-rmf-1.0", "nist-sp800-53r5"):
        assert not catalog.framework(fid).not_evidenced
    assert set(catalog.framework("owasp-nhi-2025").not_evidenced) == {"JIT-012", "JIT-014"}
    assert set(catalog.framework("owasp-llm-2025").detection_ids) == {
        "JIT-001",
        "JIT-005",
        "JIT-006",
        "JIT-010",
        "JIT-011",
        "JIT-012",
    }


def test_no_dangling_ids() -> None:
    known = set(DETECTIONS)
    for fw in catalog.frameworks():
        for control in fw.controls:
            assert set(control.detections) <= known
        assert set(fw.not_evidenced) <= known
        for m in fw.misattributed:
            for target, cid in m.see:
                catalog.framework(target).control(cid)  # raises when it does not exist
    # every detection reaches at least one control overall (and reports can list them)
    for did in DETECTIONS:
        assert catalog.controls_for(did)


def test_nist_800_53_titles_come_from_oscal() -> None:
    fw = catalog.framework("nist-sp800-53r5")
    assert fw.control("AC-2(12)").title == "Account Monitoring for Atypical Usage"
    assert fw.control("AC-3(8)").title == "Revocation of Access Authorizations"
    # OSCAL 5.0.1's own capitalisation, which the reference list differs from
    assert fw.control("IA-2").title == "Identification and Authentication (organizational Users)"


def test_unverified_threats_are_left_out() -> None:
    ids = {c.id for c in catalog.framework("owasp-agentic-tm-1.0").controls}
    assert ids == {f"T{i}" for i in range(1, 16)}
    assert "UNVERIFIED" in REFERENCE["OWASP-Agentic-TM"]["items"]["T16"]


def test_owasp_files_carry_the_cc_by_sa_attribution() -> None:
    for fw in catalog.frameworks():
        if fw.id.startswith("owasp-"):
            assert "CC BY-SA 4.0" in fw.licence
            assert "CC BY-SA 4.0" in fw.attribution and "OWASP" in fw.attribution


def test_shipped_reference_lists_match_the_shared_reference() -> None:
    """reference_ids.json is exactly what extract_reference.py makes of ../shared/reference."""
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("the shared reference data is not present")
    shipped = json.loads((CATALOG_DIR / catalog.REFERENCE_FILE).read_text())
    assert extract_reference.extract(SHARED_REFERENCE) == shipped
    assert "AC-2(12)" in shipped["frameworks"]["NIST-SP800-53r5"]["items"]


# ------------------------------------------------------------------ refusing bad files


def _one_file(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = (CATALOG_DIR / name).read_text()
    assert old in text
    (tmp_path / name).write_text(text.replace(old, new, 1))
    return tmp_path


def test_loading_refuses_an_unknown_control_id(tmp_path: Path) -> None:
    d = _one_file(tmp_path, "nist-sp800-53r5.yaml", 'id: "AC-2(12)"', 'id: "AC-2(99)"')
    with pytest.raises(CatalogError, match=r"AC-2\(99\).*not an identifier"):
        catalog.load(d)


def test_loading_refuses_a_withdrawn_control(tmp_path: Path) -> None:
    d = _one_file(tmp_path, "nist-sp800-53r5.yaml", 'id: "AC-2(12)"', 'id: "AC-2(10)"')
    with pytest.raises(CatalogError, match=r"AC-2\(10\).*withdrawn"):
        catalog.load(d)


def test_loading_refuses_a_title_that_differs_from_the_reference(tmp_path: Path) -> None:
    d = _one_file(
        tmp_path,
        "nist-sp800-53r5.yaml",
        '"Account Monitoring for Atypical Usage"',
        '"Account Monitoring"',
    )
    with pytest.raises(CatalogError, match="reference text"):
        catalog.load(d)


def test_loading_refuses_an_unknown_detection_id(tmp_path: Path) -> None:
    d = _one_file(tmp_path, "nist-sp800-53r5.yaml", "[JIT-009]", "[JIT-999]")
    with pytest.raises(CatalogError, match=r"JIT-999.*does not exist"):
        catalog.load(d)


def test_loading_refuses_an_excuse_for_a_mapped_detection(tmp_path: Path) -> None:
    d = _one_file(tmp_path, "owasp-nhi-2025.yaml", "  JIT-014: >-", "  JIT-013: >-")
    with pytest.raises(CatalogError, match="JIT-013 is both mapped"):
        catalog.load(d)


def test_loading_refuses_a_misattribution_pointing_nowhere(tmp_path: Path) -> None:
    d = _one_file(tmp_path, "csa-maestro.yaml", "csa-maestro: [L6, L3]", "csa-maestro: [L6, L9]")
    with pytest.raises(CatalogError, match="csa-maestro:L9"):
        catalog.load(d)


def test_loading_refuses_a_file_whose_id_is_not_its_name(tmp_path: Path) -> None:
    d = _one_file(tmp_path, "nist-sp800-53r5.yaml", "id: nist-sp800-53r5", "id: nist-800-53")
    with pytest.raises(CatalogError, match="does not match the file name"):
        catalog.load(d)


# ------------------------------------------------------------------ wrong citations


def test_a2_and_ta3_are_documented_as_not_real_identifiers() -> None:
    found = {m.id: (fw.id, m) for fw, m in catalog.misattributions()}
    fid, a2 = found["A2"]
    assert fid == "owasp-asi-2026" and "A2" not in REFERENCE["OWASP-ASI-2026"]["items"]
    assert set(a2.see) == {
        ("owasp-asi-2026", "ASI02"),
        ("owasp-asi-2026", "ASI03"),
        ("owasp-agentic-tm-1.0", "T2"),
        ("owasp-agentic-tm-1.0", "T3"),
    }
    fid, ta3 = found["TA-3"]
    assert fid == "csa-maestro" and "TA-3" not in REFERENCE["CSA-MAESTRO"]["items"]
    assert set(ta3.see) == {("csa-maestro", "L6"), ("csa-maestro", "L3")}
    assert "L1-L7" in ta3.explanation
    with pytest.raises(CatalogError, match="not a real identifier"):
        catalog.detections_for("owasp-asi-2026", "A2")
    docs = (ROOT / "docs" / "controls.md").read_text()
    for text in ('"A2"', '"TA-3"', "ASI02", "ASI03", "T2", "T3", "L6", "L3"):
        assert text in docs


# ------------------------------------------------------------------ queries


def test_controls_for_and_detections_for_agree() -> None:
    for fw in catalog.frameworks():
        for control in fw.controls:
            for did in catalog.detections_for(fw.id, control.id):
                assert {
                    "framework": fw.id,
                    "control_id": control.id,
                    "title": control.title,
                } in catalog.controls_for(did)
    assert catalog.detections_for("nist-sp800-53r5", "AC-2(12)") == [
        "JIT-001",
        "JIT-012",
        "JIT-013",
    ]
    assert catalog.controls_for("JIT-999") == []
    with pytest.raises(CatalogError, match="unknown framework"):
        catalog.detections_for("owasp-agentic-top-10", "A2")


def test_controls_for_returns_fresh_dicts() -> None:
    first = catalog.controls_for("JIT-009")
    first[0]["title"] = "changed"
    first.clear()
    assert catalog.controls_for("JIT-009")[0]["title"] != "changed"


# ------------------------------------------------------------------ scan findings


def test_scan_findings_carry_their_controls(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    uses = rows(
        "uses",
        *(
            {
                "event_id": f"u{i}",
                "credential_id": "c1",
                "agent_id": agent,
                "event_time": datetime(2026, 3, 1, 10, minute),
                "action": "read",
                "outcome": "success",
            }
            for i, (agent, minute) in enumerate((("a", 0), ("b", 30)))
        ),
    )
    con = duckdb.connect()
    try:
        lake.commit(con, {"uses": uses}, [InputRef("fp-catalog", "uses.json", "test")])
    finally:
        con.close()
    config = tmp_path / "jitaudit.toml"
    config.write_text("")  # defaults, whatever the working directory holds
    result = scan.scan(lake, detections="JIT-009", persist=False, config_path=config)
    [finding] = result.findings
    assert finding.detection_id == "JIT-009"
    assert finding.controls == catalog.controls_for("JIT-009")
    ids = {(c["framework"], c["control_id"]) for c in finding.controls}
    assert {("nist-sp800-53r5", "AC-2(9)"), ("owasp-nhi-2025", "NHI9:2025")} <= ids
    assert finding.to_json()["controls"] == finding.controls


def test_attach_controls_fills_every_finding() -> None:
    findings = [
        Finding(
            finding_id=f"f-{did}",
            detection_id=did,
            title="t",
            severity="high",
            subject="grant:x",
            agent_id=None,
            principal_id=None,
            credential_id=None,
            task_id=None,
            first_seen=None,
            last_seen=None,
            summary="s",
            events=1,
            evidence=[],
        )
        for did in DETECTIONS
    ]
    scan_state.attach_controls(findings)
    for f in findings:
        assert f.controls == catalog.controls_for(f.detection_id) and f.controls


def test_the_mapping_table_in_the_docs_matches_the_data() -> None:
    docs = (ROOT / "docs" / "controls.md").read_text()
    section = docs.split("\n## Mapping\n", 1)[1].split("\n### ", 1)[0]
    table = {
        line.split("|")[1].split()[0]: [c.strip() for c in line.strip().strip("|").split("|")[1:]]
        for line in section.splitlines()
        if line.startswith("| JIT-")
    }
    assert set(table) == set(DETECTIONS)
    for did, cells in table.items():
        expected = []
        for fw in catalog.frameworks():
            ids = [c.id for c in fw.controls if did in c.detections]
            expected.append(", ".join(ids) if ids else "— (not evidenced)")
        assert cells == expected, did
