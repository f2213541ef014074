"""OPA decision logs: console ``Decision Log`` lines and uploaded (gzipped) event arrays → decisions.

OPA writes the same event (``EventV1``: decision_id, labels, bundles, path, input, result,
erased, masked, nd_builtin_cache, timestamp, …) in two shapes: one logrus JSON line per decision
on the console (``decision_logs.console=true``; ``msg: "Decision Log"``, plus logrus' ``time``
and ``level``; ``--log-format json-pretty`` spreads it over several lines), and as gzip-compressed
JSON arrays POSTed to a decision-log service (a file holding such a body). Both are read here.

An *undefined* decision (no ``result``: the query produced nothing, or evaluation failed with
``error``) is neither allow nor deny in OPA: the enforcement point decides (opa-envoy answers
Envoy with an error, which fails closed unless ``failure_mode_allow``). ``allowed`` is therefore
unknown; while the schema requires ``decisions.allowed`` such entries are quarantined with the
reason, and once it is nullable they become decisions with ``allowed = NULL`` and that reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import duckdb

from jitaudit.ingest import mapping
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputFile
from jitaudit.ingest.opa_helpers import count, load_records, redact_extra
from jitaudit.schema import spec

_CONSOLE = re.compile(r'"msg"\s*:\s*"Decision Log"')
_DECISION_ID = re.compile(r'"decision_id"\s*:')
#: EventV1 always carries ``labels`` (it is not omitempty) and usually ``bundles``
_EVENT_KEY = re.compile(r'"(labels|bundles)"\s*:')

_HEADERS = "/input/attributes/request/http/headers/"
_FIELD = re.compile(r"opa_(get|hdr)\('([^']+)'\)")
#: pointers the staging step reads besides those the mapping names
_FIXED = (
    "/msg",
    "/level",
    "/decision_id",
    "/result",
    "/bundles",
    "/revision",
    "/erased",
    "/masked",
    "/error",
)
#: JSON pointers of the result whose masking leaves ``allowed`` unknown
_RESULT_PTRS = "['/result', '/result/allow', '/result/allowed']"

_MACROS = """
-- the scalar x read from JSON pointer p, unless the decision-log mask erased/masked p
CREATE OR REPLACE TEMP MACRO opa_val(x, p) AS
  CASE WHEN len(hidden) > 0
            AND len(list_filter(hidden, lambda h: starts_with(p || '/', h || '/'))) > 0 THEN NULL
       WHEN json_type(x) IN ('OBJECT', 'ARRAY', 'NULL') THEN NULL
       ELSE nullif_empty(json_extract_string(x, '$')) END;
"""


def _json_path(pointer: str) -> str:
    return "$" + "".join(f'."{seg}"' for seg in pointer.split("/")[1:])


def _plan() -> tuple[str, list[str]]:
    """The decisions SELECT list with every ``opa_get``/``opa_hdr`` turned into an element of
    ``v`` (all pointers read in one parse), and the pointers in ``v``'s order."""
    pointers = list(_FIXED)

    def element(m: re.Match[str]) -> str:
        ptr = m.group(2) if m.group(1) == "get" else _HEADERS + m.group(2)
        if ptr not in pointers:
            pointers.append(ptr)
        return f"opa_val(v[{pointers.index(ptr) + 1}], '{ptr}')"

    return _FIELD.sub(element, mapping.select("opa", "decisions")), pointers


def _stage(records: str, pointers: list[str]) -> str:
    paths = ", ".join(f"'{_json_path(p)}'" for p in pointers)
    at = {p: f"v[{i}]" for i, p in enumerate(pointers, 1)}
    result, decision_id = at["/result"], at["/decision_id"]
    return f"""
CREATE OR REPLACE TEMP TABLE opa_ev AS
SELECT source_file, source_offset, v, hidden, kind, allowed, policy_revision,
  CASE WHEN allowed IS NOT NULL THEN NULL
       WHEN {at["/error"]} IS NOT NULL THEN 'evaluation error (undefined decision): ' ||
            coalesce(json_extract_string({at["/error"]}, '$.message'), CAST({at["/error"]} AS VARCHAR))
       WHEN list_has_any(hidden, {_RESULT_PTRS}) THEN 'result removed by the decision-log mask'
       WHEN {result} IS NULL THEN 'undefined decision: no result'
       ELSE 'result is not an allow/deny decision (no boolean result, allow or allowed)'
  END AS undefined_reason,
  -- the text is kept only where it is needed: quarantine, or an event without decision_id
  CASE WHEN kind <> 'decision' OR allowed IS NULL OR {decision_id} IS NULL THEN raw END AS raw
FROM (
  SELECT *,
    CASE WHEN list_has_any(hidden, {_RESULT_PTRS}) THEN NULL
         WHEN json_type({result}) = 'BOOLEAN' THEN json_extract_string({result}, '$') = 'true'
         -- the vendor's own decision-log example shows "result": "true"
         WHEN json_type({result}) = 'VARCHAR'
              AND json_extract_string({result}, '$') IN ('true', 'false')
           THEN json_extract_string({result}, '$') = 'true'
         WHEN json_type({result}, '$.allow') = 'BOOLEAN'
           THEN json_extract_string({result}, '$.allow') = 'true'
         WHEN json_type({result}, '$.allowed') = 'BOOLEAN'
           THEN json_extract_string({result}, '$.allowed') = 'true'
    END AS allowed,
    CASE WHEN json_type({at["/bundles"]}) = 'OBJECT' AND len(json_keys({at["/bundles"]})) = 1
           THEN nullif_empty(json_extract_string({at["/bundles"]}, '$.*.revision')[1])
         WHEN json_type({at["/bundles"]}) = 'OBJECT' AND len(json_keys({at["/bundles"]})) > 1
           THEN array_to_string(list_sort(list_transform(
                  json_keys({at["/bundles"]}), lambda k: k || ':' || coalesce(
                    json_extract_string({at["/bundles"]}, '$."' || k || '".revision'), ''))), ',')
         ELSE nullif_empty(json_extract_string({at["/revision"]}, '$'))
    END AS policy_revision
  FROM (
    SELECT *,
      list_concat(coalesce(json_extract_string({at["/erased"]}, '$[*]'), []),
                  coalesce(json_extract_string({at["/masked"]}, '$[*]'), [])) AS hidden,
      CASE WHEN json_extract_string({at["/msg"]}, '$') = 'Decision Log'
                OR {decision_id} IS NOT NULL THEN 'decision'
           -- OPA's own operational log lines interleaved on the console: not audit records
           WHEN {at["/level"]} IS NOT NULL AND {at["/msg"]} IS NOT NULL THEN 'oplog'
           ELSE 'other' END AS kind
    FROM (SELECT source_file, source_offset, raw, json_extract(raw, [{paths}]) AS v
          FROM {records})))
"""


class OpaIngester:
    name = "opa"
    description = "OPA decision logs (console JSON lines and uploaded gzipped JSON arrays)"

    def sniff(self, head: str) -> bool:
        if _CONSOLE.search(head):
            return True
        start = head.lstrip()[:1]
        return (
            start in ("{", "[")
            and _DECISION_ID.search(head) is not None
            and _EVENT_KEY.search(head) is not None
        )

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        con.execute(_MACROS)
        rec, bad = load_records(con, files, "opa")
        select, pointers = _plan()
        con.execute(_stage(rec, pointers))
        # until decisions.allowed is nullable, an unknown decision cannot be a row
        unknown_ok = "allowed" not in spec("decisions").required
        keep = "kind = 'decision'" + ("" if unknown_ok else " AND allowed IS NOT NULL")
        decisions = con.sql(
            f"SELECT 'opa' AS source, source_file, source_offset, {select} FROM opa_ev WHERE {keep}"
        )
        quarantine = _quarantine(con, bad, unknown_ok)
        read = count(con, "opa_ev", "kind <> 'oplog'") + count(con, bad)
        return Normalised(tables={"decisions": decisions}, quarantine=quarantine, read=read)


def _quarantine(
    con: duckdb.DuckDBPyConnection, bad: str, unknown_ok: bool
) -> duckdb.DuckDBPyRelation:
    undefined = (
        ""
        if unknown_ok
        else "UNION ALL SELECT source_file, source_offset, undefined_reason, raw FROM opa_ev "
        "WHERE kind = 'decision' AND allowed IS NULL"
    )
    return con.sql(
        f"""SELECT 'opa' AS source, source_file, source_offset, reason,
                   {redact_extra("raw")} AS raw
            FROM (SELECT source_file, source_offset, reason, raw FROM {bad}
                  UNION ALL
                  SELECT source_file, source_offset, 'not an OPA decision log entry', raw
                  FROM opa_ev WHERE kind = 'other'
                  {undefined})"""
    )


INGESTER = OpaIngester()
