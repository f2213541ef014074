"""The simulator's ground truth: every detection injected, counts that follow docs/sources.md,
and output that is byte-identical per seed."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from jitaudit.simulate import generate

from .conftest import SCALE
from .test_formats import lines

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DATA = ROOT / "sample_data"
SAMPLE_SCALE = 4_000


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "README.md"
    }


def test_every_detection_is_injected(sample: Path) -> None:
    with (sample / "expected_findings.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["detection_id", "agent_id", "credential_id", "task_id", "why"]
    assert {r["detection_id"] for r in rows} == {f"JIT-{n:03d}" for n in range(1, 17)}
    for row in rows:
        assert row["why"]
        if row["detection_id"] != "JIT-014":
            assert row["agent_id"]


def test_injected_credentials_appear_in_the_logs(sample: Path) -> None:
    text = "".join(
        p.read_text() for p in sample.rglob("*") if p.is_file() and p.suffix in (".log", ".jsonl")
    )
    text += "".join(gzip.decompress(p.read_bytes()).decode() for p in sample.rglob("*.json.gz"))
    with (sample / "expected_findings.csv").open() as fh:
        for row in csv.DictReader(fh):
            for key in ("credential_id", "task_id", "agent_id"):
                if row[key]:
                    assert row[key] in text, (row["detection_id"], key)


def _vault_counts(sample: Path) -> dict[str, int]:
    responses = [e for e in lines(sample, "vault/audit/*.log") if e["type"] == "response"]
    lifecycle = re.compile(r"^(sys/leases/(renew|revoke)|auth/token/(renew|revoke))")
    issuing = re.compile(r"^(auth/[^/]+/login(/|$)|auth/token/create)")
    out = Counter()
    for e in responses:
        path = e["request"]["path"]
        response = e.get("response", {})
        token_grant = bool(issuing.match(path)) and "auth" in response and "error" not in e
        if token_grant:
            out["grants"] += 1
        if e["request"]["operation"] == "read" and "secret" in response:
            out["grants"] += 1
        if lifecycle.match(path):
            out["grant_events"] += 1
        elif e["request"].get("client_token_accessor"):  # minting a child token is a use too
            out["uses"] += 1
        out["decisions"] += 1
    return dict(out)


def test_expected_counts_match_the_files(sample: Path) -> None:
    counts = json.loads((sample / "expected_counts.json").read_text())
    vault = _vault_counts(sample)
    for table in ("grants", "grant_events", "uses", "decisions"):
        assert counts[table]["vault"] == vault[table], table

    spans = [
        s
        for r in lines(sample, "otel/*.jsonl")
        for rs in r["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]
    assert counts["tasks"]["otel"] == sum(s["name"].startswith("invoke_agent ") for s in spans)
    assert counts["uses"]["otel"] == sum(s["name"].startswith("execute_tool ") for s in spans)
    assert counts["uses"]["envoy"] == len(lines(sample, "envoy/*.log"))

    opa_ids = {d["decision_id"] for d in lines(sample, "opa/envoy-sidecar/*.jsonl")}
    for p in sample.glob("opa/grant-approvals/uploads/**/*.json.gz"):
        opa_ids |= {d["decision_id"] for d in json.loads(gzip.decompress(p.read_bytes()))}
    assert counts["decisions"]["opa"] == len(opa_ids)

    k8s = {e["auditID"]: e for e in lines(sample, "kubernetes/*.log")}
    assert counts["uses"]["kubernetes"] == counts["decisions"]["kubernetes"] == len(k8s)
    token_requests = sum(e["objectRef"].get("subresource") == "token" for e in k8s.values())
    assert counts["grants"]["kubernetes"] == token_requests

    records: dict[str, dict[str, object]] = {}
    for p in sample.glob("cloudtrail/**/*.json.gz"):
        for r in json.loads(gzip.decompress(p.read_bytes()))["Records"]:
            key = r.get("sharedEventID", r["eventID"]) + r["eventName"]
            if key not in records or r["recipientAccountId"] < records[key]["recipientAccountId"]:
                records[key] = r
    grants = sum(
        r["eventName"].startswith("AssumeRole") and "errorCode" not in r for r in records.values()
    )
    uses = sum("accessKeyId" in r["userIdentity"] for r in records.values())
    assert counts["grants"]["cloudtrail"] == grants
    assert counts["uses"]["cloudtrail"] == uses

    gcp = lines(sample, "gcp/**/*.json")
    issued = sum(e["protoPayload"]["methodName"] == "GenerateAccessToken" for e in gcp)
    assert counts["grants"]["gcp"] == issued
    assert counts["uses"]["gcp"] == len(gcp)  # a GenerateAccessToken call is a use too


def test_output_is_deterministic_per_seed(tmp_path: Path, sample: Path) -> None:
    again = tmp_path / "again"
    generate(again, seed=7, scale=SCALE)
    assert digests(again) == digests(sample)
    other = tmp_path / "other"
    generate(other, seed=8, scale=SCALE)
    assert digests(other) != digests(sample)


@pytest.mark.skipif(not SAMPLE_DATA.exists(), reason="sample_data not generated")
def test_committed_sample_data_regenerates_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "sample_data"
    generate(out, seed=7, scale=SAMPLE_SCALE)
    assert digests(out) == digests(SAMPLE_DATA)
