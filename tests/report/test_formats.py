"""Every report format renders from the sample data, carries every section, and keeps the
wording rule; OSCAL validates with compliance-trestle; the PDF is a PDF; the HTML fetches
nothing."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from jitaudit.cli import main
from jitaudit.lake import Lake
from jitaudit.report import FORMATS, model, render
from jitaudit.report.oscal import control_token

SECTIONS = (
    "scope",
    "executive_summary",
    "frameworks",
    "detections",
    "findings",
    "exposure",
    "completeness",
    "method",
    "limits",
    "stamp",
)


class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    p = Tags()
    p.feed(text)
    return p.tags


def test_json_has_every_section(full_report: model.Report) -> None:
    doc = json.loads(render(full_report, "json"))
    assert set(SECTIONS) <= set(doc)
    fw = doc["frameworks"][0]
    assert set(fw["counts"]) == {"gap evidenced", "no gap found", "not assessable"}
    assert {c["state"] for f in doc["frameworks"] for c in f["controls"]} <= set(model.STATES)
    assert doc["findings"] and doc["findings"][0]["evidence"][0]["source_file"]
    assert doc["exposure"]["per_agent"] and doc["exposure"]["per_day"]
    assert doc["completeness"]["sources"]
    assert doc["stamp"]["lake_digest"] == full_report.stamp.lake_digest


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_human_formats_have_every_section(full_report: model.Report, fmt: str) -> None:
    text = render(full_report, fmt).decode()
    for heading in (
        "Scope",
        "Executive summary",
        "Findings",
        "Standing-privilege exposure",
        "Log completeness",
        "Method and limits",
        "Reproducibility",
    ):
        assert heading in text
    for sec in full_report.frameworks:
        assert sec.framework.id in text or sec.framework.version in text
    assert full_report.stamp.lake_digest in text
    lowered = re.sub(r"not-satisfied|is met|not a statement", "", text.lower())
    assert " satisfied" not in lowered and "compliant" not in lowered


def test_html_is_self_contained(full_report: model.Report) -> None:
    text = render(full_report, "html").decode()
    found = tags(text)
    names = {t for t, _ in found}
    assert "svg" in names  # charts are inline SVG
    assert not names & {"script", "img", "iframe", "object", "embed", "link", "base", "form"}
    for tag, attrs in found:
        for key in ("src", "srcset", "action", "data", "poster", "background"):
            assert key not in attrs, (tag, attrs)
        href = attrs.get("href") or attrs.get("xlink:href")
        if href is not None:
            # only the catalogue's framework and control pages, as plain links (never fetched)
            assert tag == "a" and href.startswith("https://"), (tag, href)
    assert "url(" not in text and "@import" not in text
    csp = [a["content"] for t, a in found if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and (csp[0] or "").startswith("default-src 'none'")  # nothing may be fetched


def test_oscal_validates_with_trestle(full_report: model.Report) -> None:
    ar = pytest.importorskip("trestle.oscal.assessment_results")
    doc = json.loads(render(full_report, "oscal"))
    parsed = ar.AssessmentResults.model_validate(doc["assessment-results"])
    assert doc["assessment-results"]["metadata"]["oscal-version"] == "1.1.2"
    assert len(parsed.results) == len(full_report.frameworks)
    # each gap-evidenced control is one OSCAL finding, not-satisfied; no other state is
    gaps = sum(s.count(model.GAP) for s in full_report.frameworks)
    findings = [f for r in parsed.results for f in r.findings or []]
    assert len(findings) == gaps
    assert {f.target.status.state.value for f in findings} == {"not-satisfied"}
    reviewed = parsed.results[0].reviewed_controls.control_selections[0].include_controls
    assert len(reviewed) == len(full_report.frameworks[0].controls)


def test_oscal_control_tokens() -> None:
    assert control_token("nist-sp800-53r5", "AC-2(3)") == "ac-2.3"
    assert control_token("nist-sp800-53r5", "AU-6") == "au-6"
    assert control_token("owasp-nhi-2025", "NHI1:2025") == "NHI1-2025"
    assert control_token("nist-ai-rmf-1.0", "GOVERN 1.5") == "GOVERN-1.5"


def test_pdf_is_a_pdf(full_report: model.Report, tmp_path: Path) -> None:
    pytest.importorskip("weasyprint")
    data = render(full_report, "pdf")
    assert data.startswith(b"%PDF-")
    assert len(data) > 20_000
    import shutil
    import subprocess

    if shutil.which("pdftotext"):
        (tmp_path / "r.pdf").write_bytes(data)
        out = subprocess.run(
            ["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, check=True, text=True
        ).stdout
        assert "Executive summary" in out and "\f" in out.rstrip("\f")  # text, > 1 page


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_writes_every_format(
    full_lake: Lake, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if fmt == "pdf":
        pytest.importorskip("weasyprint")
    out = tmp_path / f"report.{fmt}"
    args = ["report", "--lake", str(full_lake.root), "--output", str(out), "--format", fmt]
    assert main([*args, "--framework", "owasp-asi-2026"]) == 0
    assert out.stat().st_size > 1000
    assert "wrote" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_usage_errors(
    full_lake: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "r.html")
    assert (
        main(["report", "--lake", str(full_lake.root), "--output", out, "--framework", "nope"]) == 2
    )
    assert "unknown framework 'nope'" in capsys.readouterr().err
    assert main(["report", "--lake", str(tmp_path / "none"), "--output", out]) == 2
    assert main(["report", "--lake", str(full_lake.root), "--output", "/no/such/dir/r.md"]) == 2
    assert not Path(out).exists()


def test_report_does_not_change_scan_state(full_lake: Lake, tmp_path: Path) -> None:
    state = full_lake.root / "_meta" / "scan_state.json"
    before = state.read_bytes() if state.exists() else None
    assert main(["report", "--lake", str(full_lake.root), "--output", str(tmp_path / "r.md")]) == 0
    assert (state.read_bytes() if state.exists() else None) == before
