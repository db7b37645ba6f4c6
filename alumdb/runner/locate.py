"""Error location: which file, line and column an error of the server belongs to."""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg

from alumdb.catalog import Migration
from alumdb.errors import MigrationFailed


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset."""
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def pg_message(exc: psycopg.Error) -> str:
    """The server's message with its detail, hint and SQLSTATE, on one line."""
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    parts = [message]
    if diag.message_detail:
        parts.append(f"DETAIL: {diag.message_detail}")
    if diag.message_hint:
        parts.append(f"HINT: {diag.message_hint}")
    if diag.context:
        context = " / ".join(line.strip() for line in diag.context.splitlines() if line.strip())
        parts.append(f"CONTEXT: {context}")
    if exc.sqlstate:
        parts.append(f"SQLSTATE {exc.sqlstate}")
    return "; ".join(parts)


def statement_start(text: str, piece: slice) -> int:
    """The offset of the first token of the statement ``text[piece]``.

    The parser's statement slices start right after the previous statement, so they
    include the comments and blank lines above a statement: skip them.
    """
    at: int = piece.start or 0
    end: int = len(text) if piece.stop is None else piece.stop
    while at < end:
        if text[at].isspace():
            at += 1
        elif text.startswith("--", at):
            newline = text.find("\n", at)
            at = end if newline < 0 else newline + 1
        elif text.startswith("/*", at):
            close = text.find("*/", at + 2)
            at = end if close < 0 else close + 2
        else:
            return at
    return piece.start or 0


def statements(text: str) -> list[slice]:
    """The statements of ``text`` as slices (empty when it does not parse)."""
    from pglast import parser

    try:
        tree = json.loads(parser.parse_sql_json(text))
    except parser.ParseError:
        return []
    return slices(text, tree)


def slices(text: str, tree: dict[str, Any]) -> list[slice]:
    """The character slices of the statements of ``tree`` (``parse_sql_json(text)``).

    From the parser's own ``stmt_location``/``stmt_len`` (bytes of the UTF-8 text; a
    length of 0 means "to the end"), not ``pglast.split``: pglast 5's split, the line
    with PostgreSQL 15's grammar, misplaces every statement after the first.
    """
    data = text.encode("utf-8")
    found = []
    for raw in tree.get("stmts", []):
        start = raw.get("stmt_location", 0)
        length = raw.get("stmt_len", 0)
        found.append(
            slice(chars(data, start), chars(data, start + length if length else len(data)))
        )
    return found


def chars(data: bytes, location: int) -> int:
    """Characters in the first ``location`` bytes of the UTF-8 ``data``."""
    return len(data[:location].decode("utf-8", "replace"))


def failure(
    conn: psycopg.Connection[Any],
    migration: Migration,
    exc: psycopg.Error,
    *,
    offset: int = 0,
    statement: int | None = None,
) -> MigrationFailed:
    """A :class:`MigrationFailed` naming the file, line and column of ``exc``.

    ``offset``: the characters sent before the file in the same message;
    ``statement``: the 0-based statement of the file that failed, when known.
    """
    if isinstance(exc, psycopg.OperationalError) and (conn.broken or conn.closed):
        return MigrationFailed(
            f"{migration.filename}: lost the connection to the database while applying it "
            f"({pg_message(exc)}); the server rolls back what it had not committed: run "
            "migrate again once the database is back (it applies only what is missing)"
        )
    where = locate(migration.sql, exc, offset=offset, statement=statement)
    prefix = f"{migration.filename}:{where[0]}:{where[1]}" if where else migration.filename
    return MigrationFailed(
        f"{prefix}: {pg_message(exc)} (rolled back: nothing of this file was applied)"
    )


def locate(
    text: str, exc: psycopg.Error, *, offset: int = 0, statement: int | None = None
) -> tuple[int, int] | None:
    """Where in ``text`` the error ``exc`` happened, without running anything again.

    The server's position when it gives one; else the failing statement (counted by
    the runner from the statements that completed before the error) and, inside a
    ``DO`` block, the line PostgreSQL's CONTEXT names.
    """
    position = exc.diag.statement_position
    if position and 0 <= int(position) - 1 - offset < len(text):
        return line_col(text, int(position) - 1 - offset)
    if statement is None:
        return None
    pieces = statements(text)
    if not 0 <= statement < len(pieces):
        return None
    return within(text, pieces[statement], exc)


def within(text: str, piece: slice, exc: psycopg.Error) -> tuple[int, int]:
    """The position of ``exc`` inside the statement ``text[piece]``."""
    position = exc.diag.statement_position
    start = statement_start(text, piece)
    if position:
        return line_col(text, start + int(position) - 1)
    context = exc.diag.context or ""
    body_line = re.findall(r"inline_code_block line (\d+)", context)
    opening = re.search(r"\$[A-Za-z_0-9]*\$", text[start : piece.stop])
    if body_line and opening:
        line, _ = line_col(text, start + opening.start())
        return line + int(body_line[-1]) - 1, 1
    return line_col(text, start)
