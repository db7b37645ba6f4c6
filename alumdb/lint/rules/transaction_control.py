"""``transaction-control``: no BEGIN/COMMIT/ROLLBACK/SAVEPOINT anywhere (each file runs in
its own transaction); statements that cannot run in a transaction (CONCURRENTLY,
VACUUM, CREATE DATABASE, ALTER SYSTEM) only at the top level of a file whose first line
is exactly ``-- alumdb:no-transaction``; and a directive written anywhere else, or
spelled otherwise, is reported because it does nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pglast import ast, enums

from alumdb.lint.model import DIRECTIVE_LIKE, NO_TRANSACTION_DIRECTIVE, Hit, Severity, Source
from alumdb.lint.registry import Rule
from alumdb.lint.sqltree import alter_commands, transaction_word


def check(source: Source) -> Iterator[Hit]:
    yield from _misplaced_directives(source)
    for event in source.do_events:
        if event.kind == "transaction":
            yield Hit(event.offset, event.message, event.stmt)
    for statement in source.statements:
        stmt, ctx = statement.node, statement.ctx
        if isinstance(stmt, ast.TransactionStmt):
            yield Hit(
                ctx.start,
                f"{transaction_word(stmt)} in a migration; remove it: each file runs in its "
                "own transaction (or, with `-- alumdb:no-transaction` on line 1, statement by "
                "statement)",
                ctx.stmt,
            )
            continue
        what = non_transactional(stmt)
        if what is None:
            continue
        if ctx.in_do:
            yield Hit(
                ctx.start,
                f"{what} cannot run inside a DO block (it is one transaction); run it as a "
                "top-level statement of a `-- alumdb:no-transaction` file",
                ctx.stmt,
            )
        elif source.transactional:
            yield Hit(
                ctx.start,
                f"{what} cannot run inside a transaction; put it in its own file whose first "
                f"line is `{NO_TRANSACTION_DIRECTIVE}`",
                ctx.stmt,
            )


def _reindex_concurrently(stmt: ast.Node) -> bool:
    params = stmt.params if isinstance(stmt, ast.ReindexStmt) else None
    return any(getattr(p, "defname", None) == "concurrently" for p in params or ())


def _detach_concurrently(stmt: ast.Node) -> bool:
    return isinstance(stmt, ast.AlterTableStmt) and any(
        cmd.subtype == enums.AlterTableType.AT_DetachPartition
        and getattr(cmd.def_, "concurrent", False)
        for cmd in alter_commands(stmt)
    )


# What PostgreSQL refuses to run inside a transaction block, and how to name it.
_NON_TRANSACTIONAL: tuple[tuple[Callable[[ast.Node], bool], str], ...] = (
    (lambda s: isinstance(s, ast.IndexStmt) and bool(s.concurrent), "CREATE INDEX CONCURRENTLY"),
    (lambda s: isinstance(s, ast.DropStmt) and bool(s.concurrent), "DROP INDEX CONCURRENTLY"),
    (_reindex_concurrently, "REINDEX CONCURRENTLY"),
    # ANALYZE alone runs inside a transaction; VACUUM does not.
    (lambda s: isinstance(s, ast.VacuumStmt) and bool(s.is_vacuumcmd), "VACUUM"),
    (lambda s: isinstance(s, ast.CreatedbStmt), "CREATE DATABASE"),
    (lambda s: isinstance(s, ast.AlterSystemStmt), "ALTER SYSTEM"),
    (_detach_concurrently, "DETACH PARTITION CONCURRENTLY"),
)


def non_transactional(stmt: ast.Node) -> str | None:
    """What ``stmt`` is, when PostgreSQL refuses to run it inside a transaction block."""
    return next((word for test, word in _NON_TRANSACTIONAL if test(stmt)), None)


def _misplaced_directives(source: Source) -> Iterator[Hit]:
    for token in source.tokens:
        if token.name != "SQL_COMMENT":
            continue
        comment = source.text[token.start : token.end + 1].rstrip()
        if not DIRECTIVE_LIKE.match(comment):
            continue
        if source.line_of(token.start) != 1 or comment != NO_TRANSACTION_DIRECTIVE:
            yield Hit(
                token.start,
                "the no-transaction directive only counts as line 1, written exactly "
                f"`{NO_TRANSACTION_DIRECTIVE}`; this file runs in a transaction",
            )


RULE = Rule(
    id="transaction-control",
    description="no BEGIN/COMMIT/ROLLBACK/SAVEPOINT; CONCURRENTLY and other non-transactional "
    "statements only in a `-- alumdb:no-transaction` file",
    severity=Severity.ERROR,
    waivable=True,
    check=check,
)
