"""Checks of the pending files that need no database: run before the first write,
and the same in ``--dry-run``. Each problem names the file, line and column and says
what to write instead; all of them together are a folder problem (exit 3).

Read with PostgreSQL's parser (pglast's JSON output: much faster than its Python
tree, and only a few node kinds matter here).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from alumdb.catalog import Catalog, Migration
from alumdb.errors import CatalogError
from alumdb.runner.locate import chars, line_col, slices, statement_start
from alumdb.tracking import TRACKING_TABLE, VERSION_MAX_LENGTH


@dataclass(frozen=True)
class Statement:
    """One parsed statement: its node kind, its node, and its first token's offset."""

    kind: str
    node: dict[str, Any]
    offset: int  # characters, to the first token (comments above are skipped)


@functools.lru_cache(maxsize=4096)
def parse(migration: Migration) -> tuple[Statement, ...] | str:
    """The file's statements, or the parser's error as ``file:line:col: message``."""
    from pglast import parser

    text = migration.sql
    data = text.encode("utf-8")
    try:
        tree = json.loads(parser.parse_sql_json(text))
    except parser.ParseError as exc:
        message, where = (*exc.args, 0)[:2]
        line, col = line_col(text, chars(data, int(where)))
        return f"{migration.filename}:{line}:{col}: {message}"
    found = []
    for raw, piece in zip(tree.get("stmts", []), slices(text, tree), strict=True):
        ((kind, node),) = raw["stmt"].items()
        found.append(Statement(kind, node, statement_start(text, piece)))
    return tuple(found)


def check(catalog: Catalog, pending: list[Migration]) -> None:
    """Raise :class:`CatalogError` listing every problem of the folder and pending files."""
    problems = [
        f"{m.filename}: version {m.version} has {len(m.version)} digits; "
        f"schema_migrations.version holds at most {VERSION_MAX_LENGTH}: renumber it"
        for m in catalog
        if len(m.version) > VERSION_MAX_LENGTH
    ]
    for migration in pending:
        problems.extend(file_problems(migration))
    if problems:
        raise CatalogError(problems)


def file_problems(migration: Migration) -> Iterator[str]:
    parsed = parse(migration)
    if isinstance(parsed, str):
        if not migration.transactional:  # statement by statement: it must parse first
            yield parsed
        return  # the server reports it with its position, as psql would
    for statement in parsed:
        where = "{}:{}:{}".format(migration.filename, *line_col(migration.sql, statement.offset))
        if statement.kind == "TransactionStmt" and migration.transactional:
            yield (
                f"{where}: transaction control statement in a migration; remove it (each "
                "file already runs in its own transaction) or make the file's first line "
                "`-- alumdb:no-transaction`; nothing was run"
            )
        elif statement.kind == "DiscardStmt":
            yield (
                f"{where}: DISCARD in a migration; remove it (each file already starts "
                "from a fresh session, as psql would give it); nothing was run"
            )
        elif statement.kind == "InsertStmt":
            stray = _stray_tracking_row(statement.node, migration)
            if stray is not None:
                yield (
                    f"{where}: the tracking insert records version {stray[0]!r}, name "
                    f"{stray[1]!r}, not {migration.version!r}, {migration.name!r}; make the "
                    "INSERT INTO schema_migrations at its end match the file name; nothing "
                    "was run"
                )


def _stray_tracking_row(node: dict[str, Any], migration: Migration) -> tuple[str, str] | None:
    """The (version, name) of a VALUES row for schema_migrations that is not the file's."""
    if node.get("relation", {}).get("relname") != TRACKING_TABLE:
        return None
    columns = [c.get("ResTarget", {}).get("name") for c in node.get("cols", [])]
    if "version" not in columns or "name" not in columns:
        return None
    values = node.get("selectStmt", {}).get("SelectStmt", {}).get("valuesLists", [])
    for row in values:
        items = row.get("List", {}).get("items", [])
        texts = [item.get("A_Const", {}).get("sval", {}).get("sval") for item in items]
        if len(texts) != len(columns):
            continue
        version, name = texts[columns.index("version")], texts[columns.index("name")]
        if version is None or name is None:
            continue  # not a constant: the server checks it when the file runs
        if (version, name) != (migration.version, migration.name):
            return version, name
    return None


def concurrent_indexes(migration: Migration) -> dict[int, tuple[str | None, str]]:
    """``{statement index: (schema, name)}`` of each index the file creates
    ``CONCURRENTLY``."""
    parsed = parse(migration)
    if isinstance(parsed, str):
        return {}
    return {
        index: (s.node.get("relation", {}).get("schemaname"), str(s.node["idxname"]))
        for index, s in enumerate(parsed)
        if s.kind == "IndexStmt" and s.node.get("concurrent") and s.node.get("idxname")
    }
