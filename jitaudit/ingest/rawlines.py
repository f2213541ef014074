"""Line-oriented input for the proxy ingesters: lines with their terminators kept.

Each ``line`` keeps its line terminator (``\\n`` or ``\\r\\n``; the last line may have none):
the parsers ignore trailing whitespace, and :data:`RECORD` gives the bare record text where
it is needed (content hashes, quarantine).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from jitaudit.ingest.files import InputFile, lines_table

#: SQL for a line without its terminator (use it only where needed: it copies the text)
RECORD = "rtrim(line, chr(13) || chr(10))"


def raw_lines_table(files: Sequence[InputFile]) -> pa.Table:
    """One row per non-blank line, terminator kept (see :data:`RECORD`)."""
    return lines_table(files, keep_terminators=True)
