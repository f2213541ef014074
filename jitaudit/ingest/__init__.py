"""Ingest native logs into the lake: detect format → normalise → redact → validate → commit."""

from jitaudit.ingest.pipeline import IngestReport, SourceStats, ingest

__all__ = ["IngestReport", "SourceStats", "ingest"]
