"""The PL/pgSQL walker: the statements a ``DO`` block runs, each with its guard state.

``DO`` bodies are parsed again with PostgreSQL's PL/pgSQL parser. A statement counts
as guarded when it sits in an ``IF``/``ELSIF``/``ELSE`` branch whose condition has an
``EXISTS (...)`` or ``IS [NOT] NULL`` test (``to_regtype(...) IS NULL``), or in a block
whose ``EXCEPTION`` clause handles ``duplicate_*``, ``invalid_table_definition``,
``unique_violation``, ``others`` or their SQLSTATEs. Statements run through
``EXECUTE`` (dynamic SQL) cannot be checked and are accepted.
"""

from __future__ import annotations

import re
from typing import Any

import pglast
from pglast import ast, enums
from pglast.parser import ParseError, parse_sql

from alumdb.lint.model import Context, DoEvent, Source, Statement
from alumdb.lint.sqltree import transaction_word, walk

_DOLLAR_TAG = re.compile(r"^\$[A-Za-z_0-9]*\$")
# Exception conditions that make re-creating an existing object harmless.
_GUARD_CONDITIONS = frozenset(
    {
        "others",
        "invalid_table_definition",
        "unique_violation",
        "42710",
        "42p07",
        "42p16",
        "42723",
        "42p06",
        "23505",
    }
)


def collect_statements(source: Source) -> None:
    """Fill ``source.statements`` (top level, then what each DO block runs) and
    ``source.do_events``."""
    for index, (raw, start) in enumerate(zip(source.raws, source.starts, strict=True)):
        if raw.stmt is None:
            continue
        ctx = Context(stmt=index, start=start, origin=0)
        source.statements.append(Statement(raw.stmt, ctx))
        if isinstance(raw.stmt, ast.DoStmt):
            end = (raw.stmt_location or 0) + raw.stmt_len if raw.stmt_len else len(source.text)
            _walk_do(source, raw.stmt, ctx, end)


def _walk_do(source: Source, stmt: ast.DoStmt, ctx: Context, end: int) -> None:
    body: str | None = None
    language = "plpgsql"
    for arg in stmt.args or ():
        if getattr(arg, "defname", None) == "as":
            body = getattr(arg.arg, "sval", None)
        elif getattr(arg, "defname", None) == "language":
            language = str(getattr(arg.arg, "sval", language)).lower()
    if body is None or language != "plpgsql":
        return
    tag = "$alumdb_do$"
    while tag in body:
        tag = tag[:-1] + "_$"
    try:
        tree = pglast.parse_plpgsql(f"DO {tag}{body}{tag}")
    except ParseError as exc:
        message = f"the DO block's PL/pgSQL does not parse ({exc.args[0]}); fix it"
        source.do_events.append(DoEvent("syntax", ctx.start, ctx.stmt, message))
        return
    offset = _body_offset(source, ctx.start, end, body)
    _DoWalker(source, ctx, body, offset).walk(tree, guarded=False)


def _body_offset(source: Source, start: int, end: int, body: str) -> int:
    """The absolute offset of a DO body's first character (inside its quotes)."""
    for token in source.tokens:
        if token.start < start or token.start >= end or token.name != "SCONST":
            continue
        first: int = token.start
        literal = source.text[first : token.end + 1]
        tag = _DOLLAR_TAG.match(literal)
        if tag and literal[len(tag.group()) : len(literal) - len(tag.group())] == body:
            return first + len(tag.group())
        if not tag:
            return first + 1
    return start


class _DoWalker:
    """Walks the PL/pgSQL tree of one DO block, tracking whether each statement is guarded."""

    def __init__(self, source: Source, ctx: Context, body: str, offset: int) -> None:
        self.source = source
        self.ctx = ctx
        self.body = body
        self.offset = offset
        self.lines = [0] + [i + 1 for i, ch in enumerate(body) if ch == "\n"]

    def walk(self, node: Any, *, guarded: bool) -> None:
        if isinstance(node, list):
            for item in node:
                self.walk(item, guarded=guarded)
            return
        if not isinstance(node, dict):
            return
        if len(node) == 1:
            ((kind, value),) = node.items()
            if isinstance(value, dict) and kind.startswith("PLpgSQL_"):
                self.visit(kind, value, guarded=guarded)
                return
        for value in node.values():
            self.walk(value, guarded=guarded)

    def visit(self, kind: str, value: dict[str, Any], *, guarded: bool) -> None:
        if kind == "PLpgSQL_stmt_block":
            handled = _handles_duplicates(value.get("exceptions"))
            self.walk(value.get("body"), guarded=guarded or handled)
            self.walk(value.get("exceptions"), guarded=guarded)
        elif kind == "PLpgSQL_stmt_if":
            branch = guarded or _is_guard(value.get("cond"))
            self.walk(value.get("then_body"), guarded=branch)
            for elsif in value.get("elsif_list") or ():
                inner = elsif.get("PLpgSQL_if_elsif", {}) if isinstance(elsif, dict) else {}
                self.walk(inner.get("stmts"), guarded=branch or _is_guard(inner.get("cond")))
            self.walk(value.get("else_body"), guarded=branch)
        elif kind == "PLpgSQL_stmt_execsql":
            self.statement(value, guarded=guarded)
        elif kind in {"PLpgSQL_stmt_commit", "PLpgSQL_stmt_rollback"}:
            word = "COMMIT" if kind.endswith("commit") else "ROLLBACK"
            self.event(self.locate(value, None), word)
        else:
            for item in value.values():
                self.walk(item, guarded=guarded)

    def event(self, offset: int, word: str) -> None:
        message = f"{word} inside a DO block; remove it (each file runs in its own transaction)"
        self.source.do_events.append(DoEvent("transaction", offset, self.ctx.stmt, message))

    def locate(self, value: dict[str, Any], query: str | None) -> int:
        lineno = value.get("lineno")
        if not isinstance(lineno, int) or not 1 <= lineno <= len(self.lines):
            return self.ctx.start
        line_start = self.lines[lineno - 1]
        if query:
            found = self.body.find(query, line_start)
            if found >= 0:
                return self.offset + found
        line_text = self.body[line_start:].split("\n", 1)[0]
        return self.offset + line_start + (len(line_text) - len(line_text.lstrip()))

    def statement(self, value: dict[str, Any], *, guarded: bool) -> None:
        query = value.get("sqlstmt", {}).get("PLpgSQL_expr", {}).get("query")
        if not isinstance(query, str):
            return
        try:
            raws = parse_sql(query)
        except ParseError:
            return  # PL/pgSQL rewrites some statements (INTO ...); the server checks them
        origin = self.locate(value, query)
        for raw in raws:
            start = origin + (raw.stmt_location or 0)
            if isinstance(raw.stmt, ast.TransactionStmt):
                self.event(start, transaction_word(raw.stmt))
            elif raw.stmt is not None:
                inner = Context(self.ctx.stmt, start, origin, in_do=True, guarded=guarded)
                self.source.statements.append(Statement(raw.stmt, inner))


def _is_guard(cond: Any) -> bool:
    """Whether an IF condition tests existence (``NOT EXISTS (...)``, ``... IS NULL``)."""
    query = cond.get("PLpgSQL_expr", {}).get("query") if isinstance(cond, dict) else None
    if not isinstance(query, str):
        return False
    try:
        raws = parse_sql(f"SELECT ({query})")
    except ParseError:
        return False
    for node in walk(raws):
        if isinstance(node, ast.NullTest):
            return True
        if isinstance(node, ast.SubLink) and node.subLinkType == enums.SubLinkType.EXISTS_SUBLINK:
            return True
    return False


def _handles_duplicates(exceptions: Any) -> bool:
    names: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            condition = node.get("PLpgSQL_condition")
            if isinstance(condition, dict) and isinstance(condition.get("condname"), str):
                names.add(condition["condname"].lower())
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(exceptions)
    return any(n.startswith("duplicate_") or n in _GUARD_CONDITIONS for n in names)
