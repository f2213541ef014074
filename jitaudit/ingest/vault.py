"""HashiCorp Vault / OpenBao file audit device (JSON lines) → grants, grant events, uses and
decisions (a child token's task metadata rides on its grant).

Request and response entries pair by ``request.id`` (the response is normalised, a request
with no response on its own); a login or ``auth/token/create`` response is a token grant, a
response carrying ``secret.lease_id`` a lease grant; renew/revoke requests are grant events
(and also a use when they manage another token or lease); every other authenticated request
is a use; ``auth.policy_results`` is a decision. Accessors may be HMAC'd or plain, lines may
carry the device's ``prefix``, and old versions' empty strings are read as unknown. Role TTLs
and policy files (see :mod:`jitaudit.ingest.vault_enrich`) fill lease expiries and scope.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from jitaudit.ingest import mapping, vault_enrich
from jitaudit.ingest.base import Context, Normalised
from jitaudit.ingest.files import InputFile, lines_table
from jitaudit.ingest.vault_entries import SOURCE, stage

_JSON_START = ('{"time"', '{"type"', '{"auth"', '{"request"', '{"error"', '{"forwarded')

#: which staged records become rows of each table (the columns are in mappings/vault.yaml)
FILTERS: dict[str, str] = {
    "grants": "grant_kind IS NOT NULL",
    "grant_events": "kind IN ('token_renew', 'token_revoke', 'lease_renew', 'lease_revoke')",
    # a request that only manages the caller's own token or lease is a grant event, not a use
    "uses": (
        "coalesce(caller_acc, a_token_fp, req_token_fp) IS NOT NULL"
        " AND kind NOT IN ('login', 'self_lookup') AND NOT coalesce(own, false)"
    ),
    "decisions": "a_allowed IS NOT NULL",
}


def _entry(line: str) -> dict[str, object] | None:
    """The audit entry of a line (after any ``prefix``), or None."""
    starts = [i for i in (line.find(s) for s in _JSON_START) if i >= 0]
    if not starts:
        return None
    try:
        obj = json.loads(line[min(starts) :])
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


class VaultIngester:
    name = SOURCE
    description = "HashiCorp Vault / OpenBao file audit device (JSON lines, optional prefix)"

    def sniff(self, head: str) -> bool:
        """A request/response entry whose ``request`` names an operation or path."""
        for line in head.splitlines()[:50]:
            obj = _entry(line)
            if obj is None:
                continue
            req = obj.get("request")
            if (
                obj.get("type") in ("request", "response")
                and isinstance(req, dict)
                and ("operation" in req or "path" in req)
            ):
                return True
        return False

    def normalise(self, ctx: Context, files: Sequence[InputFile]) -> Normalised:
        con = ctx.con
        vault_enrich.register(con, vault_enrich.load(ctx.enrichment))
        con.register("_vault_lines", lines_table(files))
        staged = stage(con)
        src = f"'{SOURCE}' AS source, source_file, source_offset"
        tables = {
            table: con.sql(
                f"SELECT {src}, {mapping.select(SOURCE, table)} FROM _vault_rec WHERE {cond}"
            )
            for table, cond in FILTERS.items()
        }
        bad = con.sql(f"SELECT {src}, reason, raw FROM _vault_bad")
        return Normalised(
            tables=tables, quarantine=bad, read=staged.read, duplicates=staged.duplicates
        )


INGESTER = VaultIngester()
