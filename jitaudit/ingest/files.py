"""Input files: expand paths, read plain or gzip content, fingerprint, split into records."""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 64 * 1024


class InputError(Exception):
    """An input path that cannot be read: reported as one clear line, exit code 2."""


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
    return [open_input(p) for p in seen]


def lines_table(files: Sequence[InputFile]) -> pa.Table:
    """One row per non-blank line: ``source_file``, ``source_offset`` (0-based line), ``line``.

    Splitting happens in C (``bytes.split``); invalid UTF-8 is replaced, never fatal.
    """
    names: list[str] = []
    offsets: list[int] = []
    lines: list[str] = []
    for f in files:
        text = f.read_bytes().decode("utf-8", errors="replace")
        parts = text.split("\n")
        keep = [(i, ln) for i, ln in enumerate(parts) if ln.strip()]
        names.extend([f.name] * len(keep))
        offsets.extend(i for i, _ in keep)
        lines.extend(ln.rstrip("\r") for _, ln in keep)
    return pa.table(
        {
            "source_file": pa.array(names, pa.string()),
            "source_offset": pa.array(offsets, pa.int64()),
            "line": pa.array(lines, pa.string()),
        }
    )


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
