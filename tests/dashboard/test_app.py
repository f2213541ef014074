"""Every page renders on the sample data and on an empty lake; filters change what is shown;
suppressing a finding writes a valid entry; the CLI serves on localhost."""

from __future__ import annotations

from pathlib import Path

import pytest

from jitaudit import dashboard, suppressions
from jitaudit.cli import dashboard as cli
from jitaudit.lake import Lake
from tests.dashboard.conftest import PAGES, Open

TITLES = {p: p.capitalize() for p in PAGES}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_the_sample_data(sample: Lake, open_app: Open, page: str) -> None:
    at = open_app(sample, page)
    assert [t.value for t in at.title] == [TITLES[page]]


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_lake_shows_guidance(empty: Lake, open_app: Open, page: str) -> None:
    at = open_app(empty, page)
    assert any("holds no data yet" in i.value and "jitaudit ingest" in i.value for i in at.info)


def test_a_missing_lake_shows_guidance(tmp_path: Path, open_app: Open) -> None:
    at = open_app(tmp_path / "absent", "overview")
    assert any("jitaudit demo" in i.value for i in at.info)


def test_overview_links_each_number_to_its_findings(sample: Lake, open_app: Open) -> None:
    at = open_app(sample, "overview")
    assert [m.label for m in at.metric][:1] == ["critical"]
    links = [ln for ln in at.get("page_link") if "findings" in ln.proto.page]
    assert links and any("critical" in ln.proto.label for ln in links)


def _caption(at: object) -> str:
    return str(at.caption[0].value)  # type: ignore[attr-defined]


def test_filters_change_what_is_shown(sample: Lake, open_app: Open) -> None:
    at = open_app(sample, "findings")
    everything = _caption(at)
    total = int(everything.split()[0])
    at.multiselect(key="f_sev").set_value(["critical"]).run()
    critical = int(_caption(at).split()[0])
    assert 0 < critical < total
    rows = at.dataframe[0].value
    assert set(rows["severity"]) == {"critical"}
    at.multiselect(key="f_sev").set_value([]).run()
    at.multiselect(key="f_det").set_value(["JIT-014"]).run()
    assert set(at.dataframe[0].value["detection"]) == {"JIT-014"}


def test_query_parameters_preset_the_filters(sample: Lake, open_app: Open) -> None:
    at = open_app(sample, "findings", severity="high")
    assert at.multiselect(key="f_sev").value == ["high"]
    assert set(at.dataframe[0].value["severity"]) == {"high"}


def test_suppression_writes_a_valid_entry(sample: Lake, open_app: Open, tmp_path: Path) -> None:
    at = open_app(sample, "findings", status="new")
    chosen = at.selectbox(key="f_pick").value
    at.text_input(key="s_owner").input("alice@example.com")
    at.text_input(key="s_reason").input("accepted while SEC-1 is fixed")
    at.button[0].click().run()
    assert not at.exception
    assert any("Suppression written" in s.value for s in at.success)
    entries = suppressions.load(tmp_path / "suppressions.yaml")
    assert len(entries) == 1
    assert entries[0].match == {"finding_id": chosen}
    assert entries[0].owner == "alice@example.com"
    # the finding shows as suppressed once the page is drawn again
    audit = dashboard.load_audit(str(sample.root), str(tmp_path / "suppressions.yaml"))
    assert next(f for f in audit.findings if f.finding_id == chosen).status == "suppressed"


def test_suppression_needs_owner_and_reason(sample: Lake, open_app: Open, tmp_path: Path) -> None:
    at = open_app(sample, "findings")
    at.button[0].click().run()
    assert at.error and not (tmp_path / "suppressions.yaml").exists()


@pytest.mark.parametrize("kind", ["agent", "task", "credential"])
def test_timeline_of_each_kind(sample: Lake, open_app: Open, kind: str) -> None:
    at = open_app(sample, "timeline", kind=kind)
    assert at.radio(key="t_kind").value == kind
    assert any(t.value.startswith(f"{kind}: ") for t in at.text)
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")


def test_controls_drill_down_to_findings(sample: Lake, open_app: Open) -> None:
    at = open_app(sample, "controls")
    assert at.metric and at.dataframe


def test_timeline_verdicts(sample: Lake) -> None:
    con = dashboard.connect(str(sample.root))
    assert con is not None
    audit = dashboard.load_audit(str(sample.root))
    agent = dashboard.timeline_keys(con, "agent")[0]
    t = dashboard.timeline(con, "agent", agent, audit.findings)
    kinds = {p["kind"] for p in t.points}
    assert {"use", "decision"} <= kinds and t.intervals
    assert {p["category"] for p in t.points if p["kind"] == "use"} <= {
        "in scope",
        "drift",
        "denied",
        "unverifiable",
    }
    assert t.uses_shown <= t.uses_total
    con.close()


def test_findings_are_paged(sample: Lake) -> None:
    audit = dashboard.load_audit(str(sample.root))
    page = dashboard.findings(audit.findings, dashboard.Filters(), 0)
    assert len(page.rows) <= dashboard.PAGE_SIZE and page.total == len(audit.findings)


def test_cli_serves_on_localhost_by_default() -> None:
    from jitaudit.cli import build_parser

    args = build_parser().parse_args(["dashboard", "--lake", "x"])
    assert args.address == "127.0.0.1"
    cmd = cli.command(args.address, args.port)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cli.APP.exists()
