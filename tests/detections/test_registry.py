"""Registry-wide invariants: the catalogue, its specifications, its validation, its portability."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlglot
import yaml

from jitaudit.detections import registry
from jitaudit.detections.params import render
from tests.detections.harness import SPECS, Case, load_specs

#: ARCHITECTURE §4, in order
CATALOGUE = {
    "JIT-001": "scope-drift",
    "JIT-002": "use-outside-validity",
    "JIT-003": "use-after-revocation",
    "JIT-004": "stale-grant",
    "JIT-005": "overbroad-grant",
    "JIT-006": "jit-standing-access",
    "JIT-007": "excessive-ttl",
    "JIT-008": "credential-not-task-bound",
    "JIT-009": "shared-credential",
    "JIT-010": "delegation-without-reauthorisation",
    "JIT-011": "ungoverned-use",
    "JIT-012": "denial-escalation",
    "JIT-013": "human-use-of-agent-credential",
    "JIT-014": "audit-log-delay",
    "JIT-015": "unattested-identity",
    "JIT-016": "grant-outlives-policy-change",
}
DETECTIONS = list(registry.load().values())
IDS = [d.id for d in DETECTIONS]


def test_the_registry_holds_the_catalogue_in_order() -> None:
    assert [(d.id, d.name) for d in DETECTIONS] == list(CATALOGUE.items())


def test_every_spec_file_belongs_to_a_detection() -> None:
    assert sorted(p.stem for p in SPECS.glob("*.yaml")) == sorted(CATALOGUE)


@pytest.mark.parametrize("det", DETECTIONS, ids=IDS)
def test_every_detection_has_positive_and_negative_cases(det: registry.Detection) -> None:
    cases = load_specs(det.id)
    assert any(c.positive for c in cases), f"{det.id} has no positive case"
    assert any(not c.positive for c in cases), f"{det.id} has no negative case"


@pytest.mark.parametrize("det", DETECTIONS, ids=IDS)
def test_every_parameter_has_its_boundary_pinned(det: registry.Detection) -> None:
    """Convention: a case names the parameter(s) it pins in ``boundary:``. Each parameter needs
    at least two such cases whose expectations differ — the value at the boundary and the value
    just beyond it — so that moving the threshold (or turning ``>`` into ``>=``) fails a test."""
    cases = load_specs(det.id)
    named = {p for c in cases for p in c.boundary}
    assert named <= set(det.parameters), f"boundary names unknown parameters {named}"
    for param in det.parameters:
        pinned: list[Case] = [c for c in cases if param in c.boundary]
        outcomes = {yaml.safe_dump(c.expect, sort_keys=True) for c in pinned}
        assert len(pinned) >= 2 and len(outcomes) >= 2, (
            f"{det.id}: parameter {param} needs an at-boundary and a beyond-boundary case"
        )


@pytest.mark.parametrize("det", [d for d in DETECTIONS if d.coverage], ids=lambda d: d.id)
def test_unknown_is_counted_as_unverifiable_not_judged(det: registry.Detection) -> None:
    """ARCHITECTURE §2: unknown facts yield no finding and show up in coverage."""
    cases = load_specs(det.id)
    assert any(
        not c.positive and c.coverage and c.coverage.get("unverifiable", 0) > 0 for c in cases
    ), f"{det.id} has no negative case asserting an unverifiable subject"


# --------------------------------------------------------------------------- validation

VALID_META: dict[str, object] = {
    "id": "JIT-099",
    "name": "spec-probe",
    "title": "Grant used in a way the probe flags",
    "severity": "low",
    "subject": "grant",
    "tables": ["replay_uses"],
    "parameters": {"limit_seconds": 5},
    "description": "A probe detection for registry validation.",
    "remediation": "None: it is a probe.",
    "summary": "{events} probe rows.",
}
VALID_SQL = (
    "SELECT 'grant:' || grant_id AS subject, 'uses' AS event_table, event_id, event_time\n"
    "FROM replay_uses WHERE date_diff('second', grant_issued_at, event_time) > ${limit_seconds}"
)


def _parse_files(tmp_path: Path, file_id: str, meta: dict[str, object], sql: str) -> None:
    """Write the pair as the package would hold it, then parse it the way ``load`` does."""
    (tmp_path / f"{file_id}.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (tmp_path / f"{file_id}.sql").write_text(sql)
    registry.parse(
        file_id,
        (tmp_path / f"{file_id}.yaml").read_text(),
        (tmp_path / f"{file_id}.sql").read_text(),
    )


def test_a_consistent_probe_loads(tmp_path: Path) -> None:
    _parse_files(tmp_path, "JIT-099", VALID_META, VALID_SQL)


@pytest.mark.parametrize(
    ("change", "sql", "message"),
    [
        ({"id": "JIT-098"}, VALID_SQL, "does not match its file name"),
        ({}, VALID_SQL + " AND 1 < ${other_limit}", "undeclared parameters ['other_limit']"),
        ({"parameters": {"limit_seconds": 5, "spare": 1}}, VALID_SQL, "never used ['spare']"),
        ({"tables": ["replay_uses", "audit_trail"]}, VALID_SQL, "unknown tables ['audit_trail']"),
        ({"severity": "urgent"}, VALID_SQL, "severity 'urgent'"),
        ({"title": "Ensure grants expire"}, VALID_SQL, "no 'Ensure'"),
        ({"title": "x" * 81}, VALID_SQL, "≤ 80 chars"),
        ({"parameters": {"limit_seconds": True}}, VALID_SQL, "must be a number or a string"),
        ({"colour": "red"}, VALID_SQL, "unknown metadata keys ['colour']"),
        ({"remediation": ""}, VALID_SQL, "lacks 'remediation'"),
        ({}, VALID_SQL.replace("event_table", "tbl"), "column 'event_table'"),
    ],
    ids=[
        "id is not the file name",
        "undeclared parameter",
        "unused parameter",
        "unknown table",
        "bad severity",
        "Ensure title",
        "long title",
        "boolean parameter",
        "unknown key",
        "empty remediation",
        "missing required column",
    ],
)
def test_the_registry_refuses_mismatches(
    tmp_path: Path, change: dict[str, object], sql: str, message: str
) -> None:
    with pytest.raises(registry.RegistryError) as err:
        _parse_files(tmp_path, "JIT-099", {**VALID_META, **change}, sql)
    assert message in str(err.value)
    assert "JIT-099" in str(err.value)


# -------------------------------------------------------------------------- portability

#: the per-target override renders a CASE … LIKE … ESCAPE; it must stay portable too
OVERRIDES = {"JIT-007": {"targets": [{"match": "arn:aws:s3:::batch-*", "max_ttl_seconds": 14400}]}}


def _portable_texts() -> list[tuple[str, str, str]]:
    out = []
    for det in DETECTIONS:
        out.append((f"{det.id}:sql", render(det, {}), det.id))
        if det.coverage:
            out.append((f"{det.id}:coverage", render(det, {}, det.coverage), det.id))
        if det.id in OVERRIDES:
            out.append((f"{det.id}:sql-with-target-override", render(det, OVERRIDES), det.id))
    return out


PORTABLE = _portable_texts()


@pytest.mark.parametrize(("label", "sql", "did"), PORTABLE, ids=[p[0] for p in PORTABLE])
def test_detection_sql_transpiles_to_spark(
    label: str, sql: str, did: str, caplog: pytest.LogCaptureFixture
) -> None:
    """ARCHITECTURE §8: detection SQL stays in the subset SQLGlot translates to Spark SQL."""
    with caplog.at_level(logging.WARNING, logger="sqlglot"):
        out = sqlglot.transpile(
            sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE
        )
    assert len(out) == 1 and out[0].strip(), label
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("sqlglot")]
    assert not warnings, f"{label}: {warnings}"
    # Spark has no ASOF join, and these DuckDB-only functions do not survive translation
    for banned in ("ASOF", "TIME_BUCKET", "EPOCH", "ISODOW", "READ_PARQUET", "->"):
        assert banned not in out[0].upper(), f"{label}: {banned} in Spark SQL"
