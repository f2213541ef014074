"""The YAML mapping of a custom JSON-lines or CSV log: typed model, validation, column SQL.

Everything that can be wrong with a mapping is found here, before any data is read, and
reported as ``FILE:LINE: key.path: problem``. See docs/custom-mappings.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jitaudit.ingest.files import InputError
from jitaudit.ingest.registry import MODULES
from jitaudit.schema import INGEST_TABLES, LINEAGE, spec

#: the tables a mapping may fill (span links are the OTel ingester's own)
MAPPABLE = tuple(t for t in INGEST_TABLES if t != "span_links")

FORMATS = ("jsonl", "csv")
#: named transformations → SQL template over the value ``{v}`` (see jitaudit.ingest.transforms)
TRANSFORMS: dict[str, str] = {
    "parse_ts": "parse_ts({v})",
    "strptime": "CAST(TRY_STRPTIME({v}, {fmt}) AT TIME ZONE 'UTC' AS TIMESTAMP)",
    "fp": "fp({v})",
    "fp_keep": "fp_keep({v})",
    "bearer_fp": "bearer_fp({v})",
    "split_list": "split_list({v})",
    "template_path": "template_path({v})",
    "nullif_empty": "nullif_empty({v})",
    "lower": "lower({v})",
    "upper": "upper({v})",
    "trim": "trim({v})",
    "bool": "CASE WHEN lower({v}) IN ('true', 'yes', '1', 'y') THEN true "
    "WHEN lower({v}) IN ('false', 'no', '0', 'n') THEN false END",
}
SECRET_TRANSFORMS = frozenset({"fp", "fp_keep", "bearer_fp"})
_SECRET_NAME = re.compile(
    r"(?i)(token|secret|passw|authorization|api[_-]?key|cookie|signature|credential_?value)"
)
_SEGMENT = r'(?:[A-Za-z0-9_@$\-]+|\["[^"\]]+"\]|\[[0-9]+\])'
_JSON_PATH = re.compile(rf"{_SEGMENT}(?:\.?{_SEGMENT})*")
_SOURCE = re.compile(r"[a-z][a-z0-9_.\-]*")
_COLUMN_KEYS = {"path", "const", "template", "transform", "map", "default", "format"}
_WHERE_KEYS = {"path", "equals", "in", "exists"}
_TOP_KEYS = {"format", "source", "delimiter", "description", "tables"}
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class Column:
    """How one canonical column is filled: from a field ``path``, a ``const`` or a ``template``
    of paths, then ``transforms`` in order, then the value ``map`` (misses → ``default``)."""

    path: str | None = None
    const: str | None = None
    template: str | None = None
    transforms: tuple[str, ...] = ()
    map: tuple[tuple[str, str], ...] | None = None
    default: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class Where:
    """Which records feed a table: ``path`` equals a value, is in a list, or exists."""

    path: str
    equals: str | None = None
    values: tuple[str, ...] | None = None
    exists: bool | None = None


@dataclass(frozen=True)
class TableMapping:
    columns: dict[str, Column]
    where: Where | None = None


@dataclass(frozen=True)
class CustomMapping:
    """A validated mapping file."""

    file: Path
    format: str
    source: str
    tables: dict[str, TableMapping]
    delimiter: str = ","
    description: str = ""
    paths: tuple[str, ...] = field(default=())

    def secret_fields(self) -> tuple[str, ...]:
        """Last key names of the paths that are fingerprinted (masked in quarantine raw)."""
        names = []
        for t in self.tables.values():
            for c in t.columns.values():
                if c.path and SECRET_TRANSFORMS & set(c.transforms):
                    names.append(re.split(r"[.\[\]\"]+", c.path.strip('."]'))[-1])
        return tuple(dict.fromkeys(n for n in names if n))


class _Problems:
    """Collects ``FILE:LINE: key: message`` lines from a composed YAML node tree."""

    def __init__(self, file: Path, root: yaml.Node | None):
        self.file = file
        self.root = root

    def line(self, keys: tuple[str, ...]) -> int:
        node, line = self.root, 1
        for k in keys:
            if not isinstance(node, yaml.MappingNode):
                break
            for kn, vn in node.value:
                if kn.value == k:
                    node, line = vn, kn.start_mark.line + 1
                    break
            else:
                break
        return line

    def fail(self, keys: tuple[str, ...], message: str) -> InputError:
        where = ".".join(keys) or "(top level)"
        return InputError(f"{self.file}:{self.line(keys)}: {where}: {message}")


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_mapping(path: str | Path) -> CustomMapping:
    """Read and validate a mapping file; InputError naming the file, line and key if wrong."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise InputError(f"cannot read mapping {file}: {exc.strerror or exc}") from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{file}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    p = _Problems(file, root)
    if not isinstance(data, dict):
        raise p.fail((), "a mapping file is a YAML mapping with format, source and tables")
    for k in data:
        if k not in _TOP_KEYS:
            raise p.fail((str(k),), f"unknown key; keys are {', '.join(sorted(_TOP_KEYS))}")
    fmt = data.get("format")
    if fmt not in FORMATS:
        raise p.fail(("format",), f"must be one of {', '.join(FORMATS)} (got {fmt!r})")
    source = data.get("source")
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        raise p.fail(("source",), "a lower-case name such as mcp-gateway is required")
    if source in MODULES:
        raise p.fail(("source",), f"{source!r} is a built-in format; name your own source")
    delimiter = str(data.get("delimiter", ","))
    if len(delimiter) != 1 or delimiter in '"\n\r':
        raise p.fail(("delimiter",), "one character other than a quote or newline")
    tables_raw = data.get("tables")
    if not isinstance(tables_raw, dict) or not tables_raw:
        raise p.fail(("tables",), f"map at least one of {', '.join(MAPPABLE)}")
    tables = {str(t): _table(p, fmt, str(t), cols) for t, cols in tables_raw.items()}
    paths: dict[str, None] = {}
    for t in tables.values():
        if t.where:
            paths[t.where.path] = None
        for c in t.columns.values():
            for ref in _refs(c):
                paths[ref] = None
    return CustomMapping(
        file=file,
        format=fmt,
        source=source,
        tables=tables,
        delimiter=delimiter,
        description=str(data.get("description", "")),
        paths=tuple(paths),
    )


def _refs(c: Column) -> list[str]:
    if c.path is not None:
        return [c.path]
    if c.template is not None:
        return _PLACEHOLDER.findall(c.template)
    return []


def _check_path(p: _Problems, keys: tuple[str, ...], fmt: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise p.fail(keys, "a field path must be a non-empty string")
    if fmt == "jsonl" and not _JSON_PATH.fullmatch(value):
        raise p.fail(keys, f'bad field path {value!r} (write a.b[0].c, or a["dotted.key"])')
    return value


def _table(p: _Problems, fmt: str, table: str, raw: Any) -> TableMapping:
    keys: tuple[str, ...] = ("tables", table)
    if table not in MAPPABLE:
        raise p.fail(keys, f"unknown table; tables are {', '.join(MAPPABLE)}")
    if not isinstance(raw, dict) or not raw:
        raise p.fail(keys, "map canonical columns to field paths")
    ts = spec(table)
    lineage_auto = {"source", "source_file", "source_offset", "ingested_at"}
    names = set(ts.schema.names) - lineage_auto
    columns: dict[str, Column] = {}
    where = None
    for col, cfg in raw.items():
        col = str(col)
        if col == "where":
            where = _where(p, fmt, (*keys, "where"), cfg)
            continue
        if col not in names:
            raise p.fail(
                (*keys, col), f"unknown column of {table}; columns are {', '.join(sorted(names))}"
            )
        columns[col] = _column(p, fmt, table, (*keys, col), cfg)
    lineage = {f.name for f in LINEAGE}
    missing = [c for c in ts.required if c not in columns and c not in lineage - {"event_time"}]
    if missing:
        raise p.fail(keys, f"required column(s) not mapped: {', '.join(missing)}")
    return TableMapping(columns=columns, where=where)


def _where(p: _Problems, fmt: str, keys: tuple[str, ...], cfg: Any) -> Where:
    if not isinstance(cfg, dict) or set(cfg) - _WHERE_KEYS or "path" not in cfg:
        raise p.fail(keys, "write {path: FIELD, equals: VALUE} (or in: [..], or exists: true)")
    path = _check_path(p, (*keys, "path"), fmt, cfg["path"])
    tests = [k for k in ("equals", "in", "exists") if k in cfg]
    if len(tests) != 1:
        raise p.fail(keys, "give exactly one of equals, in, exists")
    if "in" in cfg and not isinstance(cfg["in"], list):
        raise p.fail((*keys, "in"), "a list of values")
    return Where(
        path=path,
        equals=_scalar(cfg["equals"]) if "equals" in cfg else None,
        values=tuple(_scalar(v) for v in cfg["in"]) if "in" in cfg else None,
        exists=bool(cfg["exists"]) if "exists" in cfg else None,
    )


def _column(p: _Problems, fmt: str, table: str, keys: tuple[str, ...], cfg: Any) -> Column:
    if isinstance(cfg, str):
        cfg = {"path": cfg}
    if not isinstance(cfg, dict):
        raise p.fail(keys, "a field path, or {path|const|template, transform, map, default}")
    unknown = set(cfg) - _COLUMN_KEYS
    if unknown:
        raise p.fail((*keys, sorted(unknown)[0]), f"unknown key; keys are {sorted(_COLUMN_KEYS)}")
    sources = [k for k in ("path", "const", "template") if k in cfg]
    if len(sources) != 1:
        raise p.fail(keys, "give exactly one of path, const, template")
    path = _check_path(p, (*keys, "path"), fmt, cfg["path"]) if "path" in cfg else None
    template = None
    if "template" in cfg:
        template = str(cfg["template"])
        refs = _PLACEHOLDER.findall(template)
        if not refs:
            raise p.fail((*keys, "template"), "name at least one field as {path}")
        for ref in refs:
            _check_path(p, (*keys, "template"), fmt, ref)
    raw_t = cfg.get("transform", [])
    transforms = tuple(str(t) for t in (raw_t if isinstance(raw_t, list) else [raw_t]))
    for t in transforms:
        if t not in TRANSFORMS:
            raise p.fail(
                (*keys, "transform"),
                f"unknown transformation {t!r}; known: {', '.join(sorted(TRANSFORMS))}",
            )
    if "strptime" in transforms and not cfg.get("format"):
        raise p.fail((*keys, "format"), "strptime needs a format such as '%d/%b/%Y:%H:%M:%S %z'")
    value_map = None
    if "map" in cfg:
        if not isinstance(cfg["map"], dict) or not cfg["map"]:
            raise p.fail((*keys, "map"), "a mapping of source values to canonical values")
        value_map = tuple((_scalar(k), _scalar(v)) for k, v in cfg["map"].items())
    default = _scalar(cfg["default"]) if cfg.get("default") is not None else None
    const = _scalar(cfg["const"]) if "const" in cfg else None
    column = keys[-1]
    enums = dict(spec(table).enums)
    if column in enums:
        produced = [v for _, v in value_map or ()] + [x for x in (const, default) if x is not None]
        for v in produced:
            if v not in enums[column]:
                raise p.fail(
                    keys, f"{v!r} is not a {column}; use one of {', '.join(enums[column])}"
                )
    names = [path] if path else _PLACEHOLDER.findall(template or "")
    if any(_SECRET_NAME.search(n) for n in names) and not SECRET_TRANSFORMS & set(transforms):
        raise p.fail(
            keys, "this field looks like a secret: add transform: fp (or bearer_fp, fp_keep)"
        )
    return Column(path, const, template, transforms, value_map, default, cfg.get("format"))


def column_sql(c: Column, value: AnyMapping[str, str], column_type: str) -> str:
    """SQL for a column, given the SQL of each referenced path's (text) value."""
    if c.const is not None:
        expr = _sql_str(c.const)
    elif c.template is not None:
        expr = " || ".join(
            value[part] if i % 2 else _sql_str(part)
            for i, part in enumerate(_PLACEHOLDER.split(c.template))
            if part or i % 2
        )
    else:
        assert c.path is not None
        expr = value[c.path]
    transforms = c.transforms
    if not transforms and column_type == "TIMESTAMP":
        transforms = ("parse_ts",)
    for t in transforms:
        expr = TRANSFORMS[t].format(v=expr, fmt=_sql_str(c.format or ""))
    if c.map is not None:
        whens = " ".join(f"WHEN {_sql_str(k)} THEN {_sql_str(v)}" for k, v in c.map)
        fallback = _sql_str(c.default) if c.default is not None else "NULL"
        expr = f"CASE CAST({expr} AS VARCHAR) {whens} ELSE {fallback} END"
    elif c.default is not None:
        expr = f"coalesce({expr}, {_sql_str(c.default)})"
    if column_type.endswith("[]") and "split_list" not in transforms:
        # a JSON array, else a comma list
        expr = (
            f"CASE WHEN starts_with(CAST({expr} AS VARCHAR), '[') "
            f"THEN TRY_CAST(json(CAST({expr} AS VARCHAR)) AS VARCHAR[]) "
            f"ELSE split_list({expr}) END"
        )
    return expr


def where_sql(w: Where, value: AnyMapping[str, str]) -> str:
    v = value[w.path]
    if w.equals is not None:
        return f"{v} = {_sql_str(w.equals)}"
    if w.values is not None:
        return f"{v} IN ({', '.join(_sql_str(x) for x in w.values)})"
    return f"{v} IS {'NOT ' if w.exists else ''}NULL"
