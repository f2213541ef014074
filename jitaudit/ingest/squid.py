"""Squid native access.log → uses (one per line; the proxy user is the credential and principal).

Native format (``logformat squid``)::

    %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt

``time elapsed remotehost code/status bytes method URL rfc931 peerstatus/peerhost type``, with
fields separated by runs of spaces (``%6tr`` pads). ``log_mime_hdrs on`` appends bracketed
headers, which are ignored. The time is when Squid logged the finished transaction.

Squid strips query strings by default (``strip_query_terms on``); where it does not, the query
(which may carry ``?access_token=…``) and any ``user:password@`` are removed while parsing, so
they are not held even in DuckDB's temp tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from jitaudit.ingest import mapping
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputFile
from jitaudit.ingest.proxysql import quarantine, sql_str
from jitaudit.ingest.rawlines import RECORD, raw_lines_table

NATIVE_PATTERN = (
    r"^\s*([0-9]{9,11}(?:\.[0-9]{1,6})?)\s+(-?[0-9]+)\s+(\S+)\s+([A-Z][A-Z_]*)/([0-9]{1,3})"
    r"\s+([0-9]+|-)\s+(\S+)\s+(\S+)\s+(\S+)\s+([A-Z][A-Z_]*)/(\S+)\s+(\S+)(?:\s+[^\n]*)?\s*$"
)
FIELDS = (
    "ts",
    "elapsed",
    "client",
    "code",
    "status",
    "bytes",
    "method",
    "url",
    "user",
    "hierarchy",
    "peer",
    "mime",
)
_NATIVE_RE = re.compile(NATIVE_PATTERN)


def _url(sql: str) -> str:
    """The URL without query, fragment or ``user:password@`` (CONNECT's host:port is kept)."""
    no_query = f"split_part(split_part({sql}, '?', 1), '#', 1)"
    return f"regexp_replace({no_query}, '^([A-Za-z][A-Za-z0-9+.-]*://)[^@/]*@', '\\1')"


class SquidIngester:
    name = "squid"
    description = "Squid native access.log"

    def sniff(self, head: str) -> bool:
        lines = [ln for ln in head.splitlines() if ln.strip()][:3]
        if len(head) >= 64 * 1024 and len(lines) > 1:
            lines = lines[:-1]  # the last line of a cut head may be partial
        return bool(lines) and all(_NATIVE_RE.match(ln) for ln in lines)

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        lines = raw_lines_table(files)
        con.register("_squid_lines", lines)
        names = ", ".join(sql_str(n) for n in FIELDS)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _squid_rec AS
            SELECT source_file, source_offset,
                   make_timestamp(CAST(TRY_CAST(p.ts AS DOUBLE) * 1000000 AS BIGINT)) AS logged_time,
                   TRY_CAST(p.elapsed AS BIGINT) AS elapsed,
                   nullif(p.client, '-') AS client,
                   p.code, TRY_CAST(p.status AS INTEGER) AS status,
                   nullif(p.method, '-') AS method,
                   nullif({_url("p.url")}, '') AS url,
                   nullif(url_decode(nullif(p.user, '-')), '') AS proxy_user,
                   CASE WHEN p.ts = '' THEN 'not a Squid native access.log line'
                        -- a connection that closed before sending a request (Squid 4:
                        -- NONE/000 ... NONE error:transaction-end-before-headers; Squid 5+:
                        -- NONE_NONE/000 ... - error:...) is no use of anything
                        WHEN p.method IN ('-', 'NONE')
                        THEN 'no request: Squid logged ' || p.code || '/' || p.status || ' '
                             || p.url
                   END AS reason,
                   CASE WHEN reason IS NOT NULL THEN {RECORD} END AS raw,
                   content_id({RECORD}) AS event_id
            FROM (SELECT source_file, source_offset, line,
                         regexp_extract(line, {sql_str(NATIVE_PATTERN)}, [{names}]) AS p
                  FROM _squid_lines)"""
        )
        uses = con.sql(
            f"""SELECT 'squid' AS source, source_file, source_offset, event_id,
                   {mapping.select("squid", "uses")}
                FROM _squid_rec WHERE reason IS NULL"""
        )
        return Normalised(
            tables={"uses": uses},
            quarantine=quarantine(con, "squid", "_squid_rec"),
            read=lines.num_rows,
        )


INGESTER = SquidIngester()
