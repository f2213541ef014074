"""Named transformations every ingester uses, as DuckDB macros registered on its connection.

Keeping them in SQL keeps the hot path vectorised: no Python runs per record.

* ``fp(secret)``            keyed fingerprint: ``fp:`` + 32 hex of HMAC-SHA256(lake key, secret)
* ``fp_keep(value)``        like ``fp`` but keeps values the source already HMAC'd (``hmac-sha256:``)
* ``bearer_fp(header)``     fingerprint of the credential in an ``Authorization`` header
* ``parse_ts(text)``        ISO-8601 (with ``Z`` or offset), epoch seconds/ms/µs/ns, or
                            CloudTrail's ``Jun 2, 2024, 10:37:12 PM`` → UTC TIMESTAMP
* ``split_list(text)``      ``"a, b,c"`` → ``['a','b','c']`` (NULL stays NULL; empty items dropped)
* ``template_path(path)``   numeric, UUID and long hex segments become ``{id}``; query dropped
* ``nullif_empty(text)``    '' → NULL (unknown is NULL, never an empty string)
* ``content_id(text)``      ``h:`` + 32 hex of SHA-256 over a record's raw text
* ``redact_raw(text)``      masks secret-looking values in raw text kept for quarantine
                            (values of token/secret/password/authorization keys, bearer
                            credentials, Vault tokens, JWTs, URL signatures)
"""

from __future__ import annotations

import hashlib
import hmac

import duckdb

_BLOCK = 64


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def fingerprint(key: bytes, secret: str) -> str:
    """The Python twin of the ``fp`` macro (for tests and the few non-SQL paths)."""
    return "fp:" + hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()[:32]


def _blob_literal(data: bytes) -> str:
    return "unhex('" + data.hex() + "')"


def register(con: duckdb.DuckDBPyConnection, key: bytes) -> None:
    """Create the transformation macros on ``con`` for a lake with fingerprint ``key``."""
    ipad, opad = _pads(key)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO fp(secret) AS
          CASE WHEN secret IS NULL OR CAST(secret AS VARCHAR) = '' THEN NULL
               ELSE 'fp:' || left(sha256({_blob_literal(opad)} ||
                      unhex(sha256({_blob_literal(ipad)} || encode(CAST(secret AS VARCHAR))))), 32)
          END;
        CREATE OR REPLACE TEMP MACRO fp_keep(value) AS
          CASE WHEN starts_with(CAST(value AS VARCHAR), 'hmac-sha256:') THEN CAST(value AS VARCHAR)
               ELSE fp(value) END;
        -- the common "Bearer <credential>" skips the regular expression (same result: the
        -- scheme and the one space are what it would remove)
        CREATE OR REPLACE TEMP MACRO bearer_fp(header) AS
          fp(nullif(trim(CASE
            WHEN starts_with(CAST(header AS VARCHAR), 'Bearer ')
                 AND substr(CAST(header AS VARCHAR), 8, 1) NOT IN (' ', chr(9), chr(10), chr(12), chr(13))
              THEN substr(CAST(header AS VARCHAR), 8)
            ELSE regexp_replace(CAST(header AS VARCHAR), '^\\s*(?i:bearer|basic|token)\\s+', '') END), ''));
        CREATE OR REPLACE TEMP MACRO nullif_empty(text) AS nullif(trim(CAST(text AS VARCHAR)), '');
        -- ISO-8601 in UTC ("...Z"), what most logs write, is one cast; the rest take the CASE
        CREATE OR REPLACE TEMP MACRO parse_ts(text) AS coalesce(
          CASE WHEN suffix(CAST(text AS VARCHAR), 'Z')
                    AND substr(CAST(text AS VARCHAR), -2, 1) BETWEEN '0' AND '9'
                    AND NOT contains(CAST(text AS VARCHAR), ' ')
               THEN TRY_CAST(CAST(text AS VARCHAR) AS TIMESTAMP) END,
          CASE
            WHEN text IS NULL OR trim(CAST(text AS VARCHAR)) = '' THEN CAST(NULL AS TIMESTAMP)
            WHEN regexp_full_match(trim(CAST(text AS VARCHAR)), '[0-9]{{9,19}}(\\.[0-9]+)?') THEN
              make_timestamp(CAST(CASE
                WHEN length(split_part(trim(CAST(text AS VARCHAR)), '.', 1)) >= 18
                  THEN TRY_CAST(split_part(trim(CAST(text AS VARCHAR)), '.', 1) AS HUGEINT) // 1000
                WHEN length(split_part(trim(CAST(text AS VARCHAR)), '.', 1)) >= 15
                  THEN TRY_CAST(split_part(trim(CAST(text AS VARCHAR)), '.', 1) AS HUGEINT)
                WHEN length(split_part(trim(CAST(text AS VARCHAR)), '.', 1)) >= 12
                  THEN TRY_CAST(split_part(trim(CAST(text AS VARCHAR)), '.', 1) AS HUGEINT) * 1000
                ELSE CAST(TRY_CAST(trim(CAST(text AS VARCHAR)) AS DOUBLE) * 1000000 AS HUGEINT)
              END AS BIGINT))
            WHEN regexp_full_match(trim(CAST(text AS VARCHAR)),
                 '[A-Z][a-z]{{2}} [0-9]{{1,2}}, [0-9]{{4}},? [0-9]{{1,2}}:[0-9]{{2}}:[0-9]{{2}} [AP]M')
              THEN TRY_STRPTIME(replace(trim(CAST(text AS VARCHAR)), ', ', ' '), '%b %d %Y %I:%M:%S %p')
            ELSE CAST(TRY_CAST(trim(CAST(text AS VARCHAR)) AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)
          END);
        CREATE OR REPLACE TEMP MACRO split_list(text) AS (
          CASE WHEN text IS NULL THEN CAST(NULL AS VARCHAR[])
               ELSE list_filter(list_transform(string_split(CAST(text AS VARCHAR), ','),
                                               lambda s: trim(s)), lambda s: s <> '')
          END);
        CREATE OR REPLACE TEMP MACRO _id_segments(path) AS
          regexp_replace(path,
            '/(?:[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}|[0-9]+|[0-9a-fA-F]{{24,}})(/|$)',
            '/{{id}}\\1', 'g');
        -- twice: a match consumes the slash that the next adjacent id segment starts with
        CREATE OR REPLACE TEMP MACRO template_path(path) AS
          _id_segments(_id_segments(split_part(CAST(path AS VARCHAR), '?', 1)));
        CREATE OR REPLACE TEMP MACRO redact_raw(text) AS
          regexp_replace(regexp_replace(regexp_replace(regexp_replace(CAST(text AS VARCHAR),
            '(?i)("[a-z_\\-]*(?:token|secret|password|passwd|authorization|signature|api[_-]?key|apikey|private_?key|signed_?(?:blob|jwt)|privatekeydata|cookie|x-auth[a-z_-]*|raw_?body|request_?body|response_?body|client_?assertion|assertion|credential)[a-z_\\-]*"\\s*:\\s*)(\\[\\s*)?"(?:\\\\.|[^"\\\\])*"?',
            '\\1\\2"<redacted>"', 'g'),
            '(?i)(bearer|basic)\\s+[A-Za-z0-9._~+/=\\-]+', '\\1 <redacted>', 'g'),
            '(hv[sbr]\\.[A-Za-z0-9_\\-]{{8,}}|eyJ[A-Za-z0-9_\\-]+\\.[A-Za-z0-9_\\-]+\\.[A-Za-z0-9_\\-]*)', '<redacted>', 'g'),
            '(?i)((x-amz-)?(signature|sig|token|access_token|credential)=)[^&\\s"]+', '\\1<redacted>', 'g');
        CREATE OR REPLACE TEMP MACRO content_id(text) AS 'h:' || left(sha256(CAST(text AS VARCHAR)), 32);
        """
    )
