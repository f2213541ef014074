"""Envoy / Istio access logs (JSON lines with Istio's default keys, or Envoy's text format) → uses.

JSON key names are configurable: ``options["envoy_keys"]`` maps a canonical meaning (one of
:data:`DEFAULT_KEYS`, which are Istio's default keys plus the agent headers) to the key a
deployment's ``json_format`` uses, e.g. ``{"agent_id": "x_agent_id", "request_id": "req"}``.
Both ``json_format`` (every value a string, unset = ``"-"``) and ``typed_json_format``
(numbers, unset = ``null``) are read. Text lines may be Envoy's default format or Istio's
default text format (which adds response details and a tail of addresses).

The ``authorization`` header is fingerprinted and the path's query string (which may carry
``access_token=…``) is dropped while parsing, so neither is held even in DuckDB's temp tables.

Files of JSON lines are read by DuckDB's ``read_json`` straight from disk (parallel, no copy of
each line through Python), and a record's line number is its row's distance from its file's
first row. That holds only when every line is one record, so the batch is read line by line
instead (each line split out in Python, JSON and text lines parsed apart, malformed lines
quarantined with their text) when any file is compressed or does not start with a JSON
object, ``read_json`` rejects a line, a file has blank lines (fewer records than lines), or a
record needs its line's text (no ``request_id`` to name it, or an unusable ``start_time``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb

from jitaudit.ingest import mapping
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputFile
from jitaudit.ingest.proxysql import quarantine, sql_str
from jitaudit.ingest.rawlines import RECORD, raw_lines_table

#: canonical meaning → default JSON key (Istio's default JSON access log keys + agent headers)
DEFAULT_KEYS: dict[str, str] = {
    k: k
    for k in (
        "start_time",
        "method",
        "path",
        "protocol",
        "response_code",
        "response_flags",
        "response_code_details",
        "connection_termination_details",
        "bytes_received",
        "bytes_sent",
        "duration",
        "upstream_host",
        "upstream_cluster",
        "x_forwarded_for",
        "user_agent",
        "request_id",
        "authority",
        "downstream_remote_address",
        "requested_server_name",
        "agent_id",
        "task_id",
        "credential_id",
        "authorization",
        "principal_id",
        "trace_id",
    )
}

# Envoy's default format (Emissary-ingress prefixes it with ACCESS), with the additions of
# Istio's default text formats:
# [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
# %RESPONSE_FLAGS% [istio >= 1.9: %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%]
# [istio: up to two quoted fields, "%UPSTREAM_TRANSPORT_FAILURE_REASON%" and, before 1.9,
# "%DYNAMIC_METADATA(istio.mixer:status)%"] %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
# %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
# "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" [istio: %UPSTREAM_CLUSTER%
# %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
# %REQUESTED_SERVER_NAME% (and since 1.2 %ROUTE_NAME%, empty when unset)]
TEXT_PATTERN = (
    r'^(?:ACCESS )?\[([^\]]+)\] "(\S+) (\S+) ([^"]*)" (\S+) (\S+)'
    r'(?: ([^\s"]+) ([^\s"]+))?(?: "[^"]*"){0,2}'
    r' (\S+) (\S+) (\S+) \S+ "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)"'
    r"(?: (\S+) \S+ \S+ (\S+)(?: (\S*))?(?: \S*)?)?\s*$"
)
TEXT_FIELDS = (
    "start_time",
    "method",
    "path",
    "protocol",
    "response_code",
    "response_flags",
    "response_code_details",
    "connection_termination_details",
    "bytes_received",
    "bytes_sent",
    "duration",
    "x_forwarded_for",
    "user_agent",
    "request_id",
    "authority",
    "upstream_host",
    "upstream_cluster",
    "downstream_remote_address",
    "requested_server_name",
)
#: keys other distributions' default JSON formats use for the same meaning (Envoy Gateway's
#: default access log names them after the headers); read when the default key is absent
ALIASES: dict[str, tuple[str, ...]] = {
    "path": ("x-envoy-origin-path",),
    "authority": (":authority",),
    "request_id": ("x-request-id",),
    "user_agent": ("user-agent",),
    "x_forwarded_for": ("x-forwarded-for",),
}
_TEXT_RE = re.compile(TEXT_PATTERN)
_MASK_KEY = r'\1"<redacted>"'
# ``token <credential>`` (GitHub's scheme), up to a delimiter; ``token HTTP/1.1`` at the end
# of a request line to an OAuth ``/token`` endpoint is no credential (a short word with a slash)
_TOKEN_SCHEME = r"(?i)(\btoken\s+)(?:[A-Za-z0-9._~+/=_-]{9,}|[A-Za-z0-9._~+=_-]{1,8})([\s\"',;]|$)"
_JSON_MARKERS = ("start_time", "response_code", "response_flags", "upstream_host", "authority")


def _keys(options: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Meaning → the JSON keys that carry it, first present wins: a configured key alone, else
    the default key and its :data:`ALIASES`."""
    overrides = dict(options.get("envoy_keys") or {})
    unknown = sorted(set(overrides) - set(DEFAULT_KEYS))
    if unknown:
        raise ValueError(
            f"envoy_keys: unknown meanings {unknown}; known are {', '.join(DEFAULT_KEYS)}"
        )
    return {
        m: (str(overrides[m]),) if m in overrides else (k, *ALIASES.get(m, ()))
        for m, k in DEFAULT_KEYS.items()
    }


def _all_keys(keys: Mapping[str, tuple[str, ...]]) -> list[str]:
    return sorted({k for ks in keys.values() for k in ks})


def _raw(keys: Mapping[str, tuple[str, ...]], rel: str) -> dict[str, str]:
    """Meaning → SQL of its text in relation ``rel`` (a struct or a read_json row)."""
    return {
        m: (
            f"{rel}.{_ident(ks[0])}"
            if len(ks) == 1
            else "coalesce(" + ", ".join(f"nullif({rel}.{_ident(k)}, '-')" for k in ks) + ")"
        )
        for m, ks in keys.items()
    }


def _value(sql: str) -> str:
    """Envoy writes ``-`` (or ``""``/null) for an unset value: unknown is NULL."""
    return f"nullif(nullif({sql}, '-'), '')"


def _host(addr: str) -> str:
    """The host of ``host:port``, ``[v6]:port`` or a bare host: string functions for the
    common ``a.b.c.d:port`` and bare host, the regular expression for the rest (same result)."""
    regex = f"regexp_extract({addr}, '^\\[?([^\\]]*?)\\]?(:[0-9]+)?$', 1)"
    colon = f"strpos({addr}, ':')"
    return (
        f"CASE WHEN contains({addr}, '[') OR contains({addr}, ']') THEN {regex} "
        f"WHEN {colon} = 0 THEN {addr} "
        f"WHEN {colon} < length({addr}) "
        f"AND ltrim(substr({addr}, {colon} + 1), '0123456789') = '' THEN left({addr}, {colon} - 1) "
        f"ELSE {regex} END"
    )


def _fields(raw: Mapping[str, str]) -> str:
    """Common parsed columns from ``raw`` (meaning → SQL of the extracted text)."""
    cols = {m: _value(raw[m]) if m in raw else "CAST(NULL AS VARCHAR)" for m in DEFAULT_KEYS}
    # secrets never reach a relation: the query string goes, the bearer header is fingerprinted
    cols["path"] = f"nullif(split_part({cols['path']}, '?', 1), '')"
    cols["authorization"] = f"bearer_fp({cols['authorization']})"
    # the client address Envoy trusted (it applies XFF itself when configured), else the
    # first X-Forwarded-For entry; ports are dropped. An internal listener's or a pipe's
    # address (envoy://internal_client_address/, /run/sock) is no IP address.
    addr = cols["downstream_remote_address"]
    cols["src_ip"] = (
        f"coalesce(CASE WHEN NOT contains({addr}, '/') THEN nullif({_host(addr)}, '') END, "
        f"nullif(trim(split_part({cols['x_forwarded_for']}, ',', 1)), ''))"
    )
    out = [f"{sql} AS {name}" for name, sql in cols.items() if name != "authorization"]
    out.append(f"{cols['authorization']} AS credential_fp")
    return ", ".join(out)


class EnvoyIngester:
    name = "envoy"
    description = "Envoy / Istio access logs (JSON lines or Envoy's default text format)"
    #: JSON lines are read from disk by DuckDB (``read_json``), not held in Python: larger
    #: batches than the default cost less per line (the line-by-line path holds a batch's
    #: text in Arrow, still well under 2 GB with DuckDB's 1 GB beside it)
    batch_bytes = 512 << 20

    def sniff(self, head: str) -> bool:
        first = next((ln.strip() for ln in head.splitlines() if ln.strip()), "")
        if first.startswith("{"):
            try:
                doc = json.loads(first)
            except ValueError:
                return False
            return (
                isinstance(doc, dict)
                and "start_time" in doc
                and sum(k in doc for k in _JSON_MARKERS) >= 3
            )
        return bool(_TEXT_RE.match(first))

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        keys = _keys(ctx.options)
        read = _read_direct(con, keys, files)
        if read is not None:
            uses = con.sql("SELECT 'envoy' AS source, * FROM _envoy_uses")
            return Normalised(tables={"uses": uses}, quarantine=None, read=read)
        lines = raw_lines_table(files)
        con.register("_envoy_lines", lines)
        try:
            # most batches hold no malformed line: parse without try(), which costs twice as much
            con.execute(_records_sql(keys, safe=False))
        except duckdb.Error:
            con.execute(_records_sql(keys, safe=True))
        uses = con.sql(
            f"""SELECT 'envoy' AS source, source_file, source_offset,
                   coalesce(request_id || '@' || start_time, content_key) AS event_id,
                   {mapping.select("envoy", "uses")}
                FROM _envoy_rec WHERE reason IS NULL"""
        )
        return Normalised(
            tables={"uses": uses},
            quarantine=quarantine(con, "envoy", "_envoy_rec"),
            read=lines.num_rows,
        )


def _line_counts(files: Sequence[InputFile], stop: threading.Event) -> list[int]:
    """Lines per (uncompressed) file, as :func:`~jitaudit.ingest.files.split_lines` numbers
    them: a last line without its terminator counts. Reads in blocks; gives up on ``stop``."""
    counts = []
    for f in files:
        n, last = 0, b"\n"
        with f.path.open("rb") as fh:
            while block := fh.read(1 << 20):
                if stop.is_set():
                    return []
                n += block.count(b"\n")
                last = block[-1:]
        counts.append(n + (last != b"\n"))
    return counts


def _read_direct(
    con: duckdb.DuckDBPyConnection,
    keys: Mapping[str, tuple[str, ...]],
    files: Sequence[InputFile],
) -> int | None:
    """Parse ``files`` with ``read_json`` into the uses of ``_envoy_uses`` (canonical columns,
    the mapping applied while parsing); the number of records read, or None when the batch
    must be read line by line (see the module docstring)."""
    if (
        not files
        or "filename" in _all_keys(keys)
        or any(f.gzipped or not f.head(256).lstrip().startswith(b"{") for f in files)
    ):
        return None
    names = ", ".join(sql_str(f.name) for f in files)
    columns = ", ".join(f"{sql_str(k)}: 'VARCHAR'" for k in _all_keys(keys))
    raw = _raw(keys, "j")
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        # the line count runs while DuckDB parses (which releases the GIL)
        counting = pool.submit(_line_counts, files, stop)
        try:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _envoy_json AS
                SELECT source_file, request_id || '@' || start_time AS event_id,
                       {mapping.select("envoy", "uses")}
                FROM (SELECT j.filename AS source_file, {_fields(raw)},
                             TRY_CAST({_value(raw["response_code"])} AS INTEGER) AS status,
                             parse_ts({_value(raw["start_time"])}) AS event_time
                      FROM read_json([{names}], format='newline_delimited', records=true,
                                     columns={{{columns}}}, filename=true,
                                     compression='none') AS j)"""
            )
        except duckdb.Error:
            stop.set()
            return None
        lines = dict(zip((f.name for f in files), counting.result(), strict=True))
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _envoy_files AS
        SELECT source_file, min(rowid) AS base, count(*) AS n,
               count(*) FILTER (event_time IS NULL OR event_id IS NULL) AS unnamed
        FROM _envoy_json GROUP BY source_file"""
    )
    found = {
        name: (int(n), int(unnamed))
        for name, n, unnamed in con.execute(
            "SELECT source_file, n, unnamed FROM _envoy_files"
        ).fetchall()
    }
    if any(found.get(name, (0, 0)) != (count, 0) for name, count in lines.items()):
        con.execute("DROP TABLE _envoy_json")
        return None
    con.execute(
        """CREATE OR REPLACE TEMP VIEW _envoy_uses AS
        SELECT j.source_file, j.rowid - b.base AS source_offset, j.* EXCLUDE (source_file)
        FROM _envoy_json AS j JOIN _envoy_files AS b USING (source_file)"""
    )
    return sum(lines.values())


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _redacted(auth_key: str) -> str:
    """The record for quarantine, with the configured authorization key's value masked.

    The pipeline's ``redact_raw`` masks well-known secret keys and ``Bearer``/``Basic``
    credentials; a deployment's own key name (``auth``) and the ``token <credential>`` scheme
    are masked here.
    """
    key_pattern = "(" + re.escape(json.dumps(auth_key)) + r'\s*:\s*)"(\\.|[^"\\])*"?'
    masked = f"regexp_replace({RECORD}, {sql_str(key_pattern)}, {sql_str(_MASK_KEY)}, 'g')"
    return f"regexp_replace({masked}, {sql_str(_TOKEN_SCHEME)}, '\\1<redacted>\\2', 'g')"


def _records_sql(keys: Mapping[str, tuple[str, ...]], *, safe: bool) -> str:
    """One parsed row per line of ``_envoy_lines``; ``reason`` says why a line is unusable.

    ``safe`` wraps the JSON parse in ``try()`` so that a malformed line becomes a quarantine
    row instead of failing the batch.
    """
    struct = sql_str(json.dumps({k: "VARCHAR" for k in _all_keys(keys)}))
    parse = f"from_json(line, {struct})"
    json_raw = _raw(keys, "r")
    text_raw = {m: f"t.{m}" for m in TEXT_FIELDS}
    names = ", ".join(sql_str(n) for n in TEXT_FIELDS)

    def select(raw: Mapping[str, str], unparsed: str, unparsed_reason: str) -> str:
        # later expressions reuse earlier aliases (event_time, reason): each is computed once
        return f"""SELECT source_file, source_offset, {_fields(raw)},
                   TRY_CAST({_value(raw["response_code"])} AS INTEGER) AS status,
                   parse_ts({_value(raw["start_time"])}) AS event_time,
                   CASE WHEN {unparsed} THEN {sql_str(unparsed_reason)}
                        WHEN event_time IS NULL
                        THEN 'bad start_time: ' || coalesce({raw["start_time"]}, 'missing')
                   END AS reason,
                   CASE WHEN reason IS NOT NULL THEN {_redacted(keys["authorization"][0])} END AS raw,
                   CASE WHEN {_value(raw["request_id"])} IS NULL THEN content_id({RECORD}) END
                     AS content_key"""

    return f"""CREATE OR REPLACE TEMP TABLE _envoy_rec AS
        WITH l AS (
          SELECT source_file, source_offset, line,
                 starts_with(line, '{{') OR starts_with(ltrim(line), '{{') AS is_json
          FROM _envoy_lines),
        j AS (
          SELECT source_file, source_offset, line,
                 {f"try({parse})" if safe else parse} AS r
          FROM l WHERE is_json),
        t AS (
          SELECT source_file, source_offset, line,
                 regexp_extract(line, {sql_str(TEXT_PATTERN)}, [{names}]) AS t
          FROM l WHERE NOT is_json)
        {select(json_raw, "r IS NULL", "not JSON: malformed access log line")} FROM j
        UNION ALL
        {select(text_raw, "t.start_time = ''", "not an Envoy access log line")} FROM t"""


INGESTER = EnvoyIngester()
