"""Input files: expand paths, read plain or gzip content, fingerprint, split into records."""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 64 * 1024
_WHITESPACE = np.array([9, 10, 11, 12, 13, 32], np.uint8)


class InputError(Exception):
    """An input path that cannot be read: reported as one clear line, exit code 2."""


class EmptyInput(InputError):
    """A file with nothing in it (log rotation leaves them): nothing to ingest, nothing lost."""


@dataclass(frozen=True)
class InputFile:
    """One input file, with the fingerprint that makes re-ingesting it a no-op."""

    path: Path
    size: int
    fingerprint: str
    gzipped: bool

    @property
    def name(self) -> str:
        return self.path.as_posix()

    def read_bytes(self) -> bytes:
        """The decompressed content (concatenated gzip members are supported)."""
        data = self.path.read_bytes()
        if not self.gzipped:
            return data
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            # a truncated gzip (a file still being written): keep what decompresses
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)

    def head(self, n: int = HEAD_BYTES) -> bytes:
        """The first ``n`` decompressed bytes, for content detection."""
        with self.path.open("rb") as fh:
            if not self.gzipped:
                return fh.read(n)
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = b""
            while len(out) < n:
                chunk = fh.read(16 * 1024)
                if not chunk:
                    break
                try:
                    out += d.decompress(chunk, n - len(out))
                except zlib.error:
                    break
            return out


def _fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def open_input(path: Path) -> InputFile:
    try:
        with path.open("rb") as fh:
            magic = fh.read(2)
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return InputFile(
        path=path.absolute(), size=size, fingerprint=_fingerprint(path), gzipped=magic == GZIP_MAGIC
    )


def expand(paths: Iterable[str | os.PathLike[str]]) -> list[InputFile]:
    """Files, globs and directories (recursive, hidden files skipped) → sorted unique inputs."""
    seen: dict[Path, None] = {}
    for raw in paths:
        text = os.fspath(raw)
        matches = (
            [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            if glob.has_magic(text)
            else [Path(text)]
        )
        if not matches:
            raise InputError(f"no file matches {text}")
        for p in matches:
            if p.is_dir():
                for f in sorted(p.rglob("*")):
                    rel = f.relative_to(p).parts
                    if f.is_file() and not any(part.startswith(".") for part in rel):
                        seen[f.absolute()] = None
            elif p.is_file():
                seen[p.absolute()] = None
            elif not p.exists():
                raise InputError(f"no such file or directory: {p}")
            else:
                raise InputError(f"not a regular file: {p}")
    # hashing releases the GIL: the files are fingerprinted on every core
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(open_input, seen))


_BOM = b"\xef\xbb\xbf"

#: the prefix the container runtime (CRI: containerd, CRI-O) writes before each line a
#: container printed, in the files kubelet keeps under /var/log/pods: time, stream, and F (a
#: full line) or P (a part of a longer line, continued on the next)
CRI_PREFIX = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
    r" (?:stdout|stderr) [FP] "
)
_CRI = re.compile(CRI_PREFIX)


def _is_cri(head: str) -> bool:
    """Whether a file's text starts with a container runtime's line prefix."""
    return bool(_CRI.match(head))


def _strip_cri(text: str) -> str:
    """``text`` without the container runtime's prefix on each line (for format detection)."""
    return "\n".join(_CRI.sub("", line, count=1) for line in text.split("\n"))


#: Docker's json-file logging driver (/var/lib/docker/containers/<id>/<id>-json.log): one JSON
#: object per line a container printed, the line in "log" (with its newline), then "stream"
#: and "time"
_DOCKER = re.compile(rb'^\{\s*"log"\s*:\s*"')


def _is_docker_json(head: bytes | str) -> bool:
    """Whether a file's text is Docker's json-file log (dockerd writes ``{"log":"``)."""
    return bool(_DOCKER.match(head[:32] if isinstance(head, bytes) else head[:32].encode()))


def _strip_docker(text: str) -> str:
    """The lines a container printed, from the head of a json-file log (format detection)."""
    out = []
    for line in text.split("\n"):
        try:
            out.append(str(json.loads(line)["log"]).rstrip("\n"))
        except (ValueError, KeyError, TypeError):
            out.append(line)  # a line cut by the head's end, or not Docker's
    return "\n".join(out)


def container_text(text: str) -> str:
    """``text`` as the program wrote it: without a byte-order mark, and without the wrapping a
    container's log gets on its node (CRI prefix, Docker json-file). For readers that take a
    file as text; :func:`lines_table` does the same in Arrow."""
    text = text.lstrip("\ufeff")
    if _is_cri(text):
        return _strip_cri(text)
    if _is_docker_json(text):
        return _strip_docker(text)
    return text


def _docker_lines(data: bytes, count: int) -> pa.Array | None:
    """The "log" values of a json-file log, one per line, or None when the file does not parse
    as such throughout (its lines are then read as they are)."""
    try:
        table = pa_json.read_json(
            pa.BufferReader(data),
            parse_options=pa_json.ParseOptions(
                explicit_schema=pa.schema([pa.field("log", pa.large_string())]),
                unexpected_field_behavior="ignore",
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    logs = table.column("log").combine_chunks()
    if len(logs) != count or logs.null_count:
        return None
    return logs


def split_lines(f: InputFile) -> tuple[bytes, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A file's (UTF-8) bytes, the offsets bounding each non-blank line (terminator
    included) and each kept line's 0-based number. No Python loop per line: newlines are
    found with numpy and lines stay slices of the file's bytes."""
    data = f.read_bytes()
    if data.startswith(_BOM):
        data = data[len(_BOM) :]  # a byte-order mark (Windows tools write one) is no content
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = data.decode("utf-8", errors="replace").encode("utf-8")
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    if len(data) and data[-1:] != b"\n":
        ends = np.append(ends, len(data))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    numbers = np.arange(len(ends), dtype=np.int64)
    if len(data):
        # blank lines are not records: only lines starting with whitespace can be blank
        starts = offsets[:-1]
        first = buf[np.minimum(starts, len(data) - 1)]
        blank = [
            i
            for i in np.flatnonzero(np.isin(first, _WHITESPACE))
            if not data[offsets[i] : offsets[i + 1]].strip()
        ]
        if blank:
            keep = np.ones(len(numbers), bool)
            keep[blank] = False
            return data, offsets, numbers[keep]
    return data, offsets, numbers


def lines_table(files: Sequence[InputFile], *, keep_terminators: bool = False) -> pa.Table:
    """One row per non-blank line: ``source_file``, ``source_offset`` (0-based line), ``line``.

    Invalid UTF-8 is replaced, never fatal. Lines are zero-copy slices of each file's bytes;
    without ``keep_terminators`` the ``\\r\\n``/``\\n`` is trimmed in Arrow (C++).
    """
    tables = []
    for f in files:
        data, offsets, numbers = split_lines(f)
        lines = pa.LargeStringArray.from_buffers(
            len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data)
        )
        if len(numbers) != len(offsets) - 1:
            mask = np.zeros(len(offsets) - 1, bool)
            mask[numbers] = True
            lines = lines.filter(pa.array(mask))
        if _is_cri(data[:128].decode("utf-8", errors="replace")):
            # a container's log as kubelet keeps it: the line is what the container printed
            lines = pc.replace_substring_regex(lines, pattern=CRI_PREFIX, replacement="")
        elif _is_docker_json(data) and len(numbers) == len(offsets) - 1:
            docker = _docker_lines(data, len(numbers))
            if docker is not None:
                lines = docker
        if not keep_terminators:
            lines = pc.utf8_rtrim(lines, characters="\r\n")
        tables.append(
            pa.table(
                {
                    "source_file": pa.repeat(pa.scalar(f.name, pa.string()), len(numbers)),
                    "source_offset": pa.array(numbers, pa.int64()),
                    "line": lines,
                }
            )
        )
    if not tables:
        return pa.table(
            {
                "source_file": pa.array([], pa.string()),
                "source_offset": pa.array([], pa.int64()),
                "line": pa.array([], pa.large_string()),
            }
        )
    # batches of this size let DuckDB scan the lines on every core
    table = pa.concat_tables(tables).combine_chunks()
    return pa.Table.from_batches(table.to_batches(max_chunksize=65_536), table.schema)


def documents_table(files: Sequence[InputFile]) -> pa.Table:
    """One row per file: ``source_file`` and its whole decompressed ``text``."""
    return pa.table(
        {
            "source_file": pa.array([f.name for f in files], pa.string()),
            "text": pa.array(
                [f.read_bytes().decode("utf-8", errors="replace") for f in files], pa.string()
            ),
        }
    )
