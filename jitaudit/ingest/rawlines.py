"""Line-oriented input for the proxy ingesters: split files into lines without a Python loop.

:func:`jitaudit.ingest.files.lines_table` builds one Python string per line, which costs more
than parsing a million proxy log lines in DuckDB. Here the newlines are found with numpy and
the lines are zero-copy slices of the file's bytes, handed to DuckDB as Arrow.

Each ``line`` keeps its line terminator (``\\n`` or ``\\r\\n``; the last line may have none):
the parsers ignore trailing whitespace, and :data:`RECORD` gives the bare record text where
it is needed (content hashes, quarantine).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from jitaudit.ingest.files import InputFile

#: SQL for a line without its terminator (use it only where needed: it copies the text)
RECORD = "rtrim(line, chr(13) || chr(10))"

_WHITESPACE = np.array([9, 10, 11, 12, 13, 32], np.uint8)
_BATCH_ROWS = 65_536


def _utf8(data: bytes) -> bytes:
    """``data`` if it is valid UTF-8, else a copy with invalid bytes replaced (never fatal)."""
    if data.isascii():
        return data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace").encode("utf-8")
    return data


def _file_table(f: InputFile) -> pa.Table:
    data = _utf8(f.read_bytes())
    buf = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(buf == 10)
    ends = newlines + 1
    if len(data) and data[-1:] != b"\n":
        ends = np.append(ends, len(data))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    starts = offsets[:-1]
    # blank lines are not records: candidates start with whitespace (or are empty)
    first = buf[np.minimum(starts, max(len(data) - 1, 0))] if len(data) else starts
    candidates = np.flatnonzero(np.isin(first, _WHITESPACE))
    keep = np.ones(len(starts), bool)
    for i in candidates:
        if not data[offsets[i] : offsets[i + 1]].strip():
            keep[i] = False
    lines = pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(data))
    numbers = np.arange(len(starts), dtype=np.int64)
    if not keep.all():
        mask = pa.array(keep)
        lines = lines.filter(mask)
        numbers = numbers[keep]
    names = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(len(numbers), np.int32)), pa.array([f.name], pa.string())
    )
    return pa.table({"source_file": names, "source_offset": numbers, "line": lines})


def raw_lines_table(files: Sequence[InputFile]) -> pa.Table:
    """One row per non-blank line: ``source_file``, ``source_offset`` (0-based line), ``line``.

    Invalid UTF-8 is replaced, never fatal. Rows come in batches so that DuckDB scans them in
    parallel.
    """
    schema = pa.schema(
        [
            ("source_file", pa.dictionary(pa.int32(), pa.string())),
            ("source_offset", pa.int64()),
            ("line", pa.large_string()),
        ]
    )
    tables = [_file_table(f) for f in files]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return pa.Table.from_batches(table.to_batches(max_chunksize=_BATCH_ROWS), schema)
