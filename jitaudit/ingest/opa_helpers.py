"""JSON record loading shared by the JSON ingesters: lines, pretty-printed objects, arrays, envelopes.

Files are split into *units* in Python per file (C-level splitting, never per record), then
expanded into *records* in DuckDB SQL:

* JSON lines: one unit per non-blank line (``source_offset`` = 0-based line number);
* pretty-printed objects (OPA ``--log-format json-pretty``): lines grouped so that a unit starts
  at every unindented line (``source_offset`` = the unit's first line);
* whole documents (an OPA upload array, an Azure ``{"records": [...]}`` blob): one unit per file.

A unit that is a JSON array, or an object whose ``envelope`` key holds an array, expands into its
elements (``source_offset`` = 0-based record index in the file). A document that does not parse
(a truncated gzip upload, several bodies concatenated) is salvaged element by element; only what
cannot be parsed is quarantined. Units that are not JSON are quarantined with their offset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence

import duckdb
import pyarrow as pa

from jitaudit.ingest.files import InputFile, container_text

_WS = re.compile(r"\s*")

#: keys whose values are credentials in the records these ingesters read but that
#: ``redact_raw`` does not mask (cookies, API-key headers, raw request bodies)
_EXTRA_SECRET_KEYS = (
    r"cookie|set-cookie|x-api-key|api-key|apikey|x-auth[a-z_\-]*|raw_?body|"
    r"client_?assertion|assertion|credential|request_?body|response_?body"
)


def redact_extra(expr: str) -> str:
    """SQL masking the values of ``_EXTRA_SECRET_KEYS`` in raw text (before ``redact_raw``)."""
    return (
        f"regexp_replace(CAST({expr} AS VARCHAR), "
        f'\'(?i)("({_EXTRA_SECRET_KEYS})"\\s*:\\s*)"(\\\\.|[^"\\\\])*"?\', '
        "'\\1\"<redacted>\"', 'g')"
    )


def _mode(text: str, envelope: str | None) -> str:
    """``lines``, ``pretty`` or ``document`` for one file, from its first non-blank line."""
    start = _WS.match(text).end()  # type: ignore[union-attr]
    first = text[start : text.find("\n", start) if "\n" in text[start:] else len(text)].strip()
    if not first:
        return "lines"
    try:
        json.loads(first)
        return "lines"
    except ValueError:
        pass
    if first.startswith("["):
        return "document"
    if envelope and re.match(r'\{\s*"' + re.escape(envelope) + r'"\s*:', text[start:]):
        return "document"
    if first.startswith("{"):
        return "pretty"
    return "lines"


def _salvage(text: str, envelope: str | None) -> Iterator[tuple[str | None, str]]:
    """Elements of a document that does not parse as one JSON value: ``(json, '')`` for each
    element recovered, then ``(None, rest)`` for an unparseable remainder."""
    dec = json.JSONDecoder()
    pos = 0
    n = len(text)

    def skip(p: int, chars: str = "") -> int:
        while p < n and (text[p].isspace() or text[p] in chars):
            p += 1
        return p

    while True:
        pos = skip(pos)
        if pos >= n:
            return
        opener = None
        if text[pos] == "[":
            opener = pos + 1
        elif envelope:
            m = re.compile(r'\{\s*"' + re.escape(envelope) + r'"\s*:\s*\[').match(text, pos)
            if m:
                try:  # a complete envelope: take it whole, its other keys included
                    value, end = dec.raw_decode(text, pos)
                    for item in value.get(envelope) or []:
                        yield json.dumps(item), ""
                    pos = end
                    continue
                except ValueError:
                    opener = m.end()
        if opener is None:
            try:
                value, pos = dec.raw_decode(text, pos)
            except ValueError:
                yield None, text[pos:]
                return
            items = value if isinstance(value, list) else [value]
            for item in items:
                yield json.dumps(item), ""
            continue
        pos = opener
        while True:
            pos = skip(pos, ",")
            if pos >= n:
                yield None, text[opener - 1 :][:4000]
                return
            if text[pos] == "]":
                pos = skip(pos + 1)
                if text[opener - 1] != "[" or (pos < n and text[pos] == "}"):
                    pos += 1  # the array was an envelope's: close the envelope object too
                break
            try:
                value, pos = dec.raw_decode(text, pos)
            except ValueError:
                yield None, text[pos:]
                return
            yield json.dumps(value), ""


def units_table(files: Sequence[InputFile], envelope: str | None) -> tuple[pa.Table, pa.Table]:
    """(units, salvaged): units are ``source_file, source_offset, text, mode`` rows; documents
    that do not parse are split here instead and returned as ``source_file, source_offset,
    text, ok`` record rows (``ok`` false for an unparseable remainder)."""
    names: list[str] = []
    offsets: list[int] = []
    texts: list[str] = []
    modes: list[str] = []
    s_names: list[str] = []
    s_offsets: list[int] = []
    s_texts: list[str] = []
    s_ok: list[bool] = []
    for f in files:
        # a container's log as its node keeps it (OPA and Teleport print to stdout): the lines
        # the container printed, numbered as in the file
        text = container_text(f.read_bytes().decode("utf-8", errors="replace"))
        mode = _mode(text, envelope)
        if mode == "document":
            try:
                json.loads(text)
            except ValueError:
                for i, (item, rest) in enumerate(_salvage(text, envelope)):
                    s_names.append(f.name)
                    s_offsets.append(i)
                    s_texts.append(item if item is not None else rest)
                    s_ok.append(item is not None)
                continue
            names.append(f.name)
            offsets.append(0)
            texts.append(text)
            modes.append(mode)
            continue
        parts = text.split("\n")
        keep = [(i, ln.rstrip("\r")) for i, ln in enumerate(parts) if ln.strip()]
        names.extend([f.name] * len(keep))
        offsets.extend(i for i, _ in keep)
        texts.extend(ln for _, ln in keep)
        modes.extend([mode] * len(keep))
    units = pa.table(
        {
            "source_file": pa.array(names, pa.string()),
            "source_offset": pa.array(offsets, pa.int64()),
            "text": pa.array(texts, pa.string()),
            "mode": pa.array(modes, pa.string()),
        }
    )
    salvaged = pa.table(
        {
            "source_file": pa.array(s_names, pa.string()),
            "source_offset": pa.array(s_offsets, pa.int64()),
            "text": pa.array(s_texts, pa.string()),
            "ok": pa.array(s_ok, pa.bool_()),
        }
    )
    return units, salvaged


def load_records(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[InputFile],
    prefix: str,
    envelope: str | None = None,
) -> tuple[str, str]:
    """Create the views ``<prefix>_rec`` (source_file, source_offset, raw, j: one JSON object
    per record) and ``<prefix>_bad`` (source_file, source_offset, reason, raw). Returns their
    names."""
    units, salvaged = units_table(files, envelope)
    con.register(f"{prefix}_units_in", units)
    con.register(f"{prefix}_salv_in", salvaged)
    enveloped = (
        f"CASE WHEN jt = 'OBJECT' THEN coalesce(json_type(text, '$.\"{envelope}\"') = 'ARRAY', false) ELSE false END"
        if envelope
        else "false"
    )
    arr = (
        f"CASE WHEN jt = 'ARRAY' THEN json_extract(text, '$[*]') "
        f"ELSE json_extract(text, '$.\"{envelope}\"[*]') END"
        if envelope
        else "json_extract(text, '$[*]')"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {prefix}_units AS
        WITH grouped AS (
            SELECT source_file, source_offset, text FROM {prefix}_units_in WHERE mode <> 'pretty'
            UNION ALL
            SELECT source_file, min(source_offset), string_agg(text, chr(10) ORDER BY source_offset)
            FROM (SELECT *, sum(CASE WHEN regexp_matches(text, '^[^\\s\\]}}),]') THEN 1 ELSE 0 END)
                            OVER (PARTITION BY source_file ORDER BY source_offset) AS grp
                  FROM {prefix}_units_in WHERE mode = 'pretty')
            GROUP BY source_file, grp
        )
        SELECT source_file, source_offset, text, jt,
               {enveloped} AS enveloped
        FROM (SELECT *, json_type(TRY_CAST(text AS JSON)) AS jt FROM grouped)
        """
    )
    # the units table now holds the text: let the Arrow input go
    con.unregister(f"{prefix}_units_in")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {prefix}_elems AS
        SELECT source_file,
               row_number() OVER (PARTITION BY source_file ORDER BY uoff, i) - 1 AS source_offset,
               e
        FROM (SELECT source_file, source_offset AS uoff, unnest(arr) AS e,
                     generate_subscripts(arr, 1) AS i
              FROM (SELECT source_file, source_offset,
                           {arr} AS arr
                    FROM {prefix}_units WHERE jt = 'ARRAY' OR enveloped))
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {prefix}_rec AS
        SELECT source_file, source_offset, text AS raw, CAST(text AS JSON) AS j
        FROM {prefix}_units WHERE jt = 'OBJECT' AND NOT enveloped
        UNION ALL
        SELECT source_file, source_offset, CAST(e AS VARCHAR), e
        FROM {prefix}_elems WHERE json_type(e) = 'OBJECT'
        UNION ALL
        SELECT source_file, source_offset, text, CAST(text AS JSON)
        FROM {prefix}_salv_in WHERE CASE WHEN ok THEN json_type(text) = 'OBJECT' ELSE false END
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {prefix}_bad AS
        SELECT source_file, source_offset,
               CASE WHEN jt IS NULL THEN 'not valid JSON' ELSE 'not a JSON object: ' || jt END
                 AS reason, text AS raw
        FROM {prefix}_units WHERE jt IS NULL OR jt NOT IN ('OBJECT', 'ARRAY')
        UNION ALL
        SELECT source_file, source_offset,
               CASE WHEN ok THEN 'array element is not a JSON object'
                    ELSE 'truncated or malformed document: unparseable from here' END,
               text
        FROM {prefix}_salv_in WHERE CASE WHEN ok THEN json_type(text) <> 'OBJECT' ELSE true END
        UNION ALL
        SELECT source_file, source_offset, 'array element is not a JSON object',
               CAST(e AS VARCHAR)
        FROM {prefix}_elems WHERE json_type(e) <> 'OBJECT'
        """
    )
    return f"{prefix}_rec", f"{prefix}_bad"


def count(con: duckdb.DuckDBPyConnection, table: str, where: str = "true") -> int:
    row = con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchall()
    return int(row[0][0])


def read_fields(fields: dict[str, str]) -> str:
    """SELECT items ``v[i] AS name`` for ``fields`` (name → JSON path) over a column ``v``
    built by :func:`fields_list`: every field read as text in one parse of the record (objects
    come back as their JSON text; missing values and '' as NULL)."""
    return ", ".join(f"nullif(v[{i}], '') AS {name}" for i, name in enumerate(fields, 1))


def fields_list(fields: dict[str, str], source: str = "raw") -> str:
    """The one-parse extraction feeding :func:`read_fields`: ``json_extract_string(raw, [...])``."""
    paths = ", ".join("'" + p.replace("'", "''") + "'" for p in fields.values())
    return f"json_extract_string({source}, [{paths}])"
