"""``explicit-names``: every constraint, index and trigger is named, with its prefix
(``pk_ fk_ uq_ ck_ ex_ idx_ trg_``), and no identifier is longer than 63 bytes
(PostgreSQL silently truncates longer names, so two can collide)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast, enums

from alumdb.lint.model import Context, Hit, Severity, Source
from alumdb.lint.registry import Rule
from alumdb.lint.sqltree import alter_commands

MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1
_CONSTRAINT_PREFIX: dict[Any, tuple[str, str]] = {
    enums.ConstrType.CONSTR_PRIMARY: ("pk_", "PRIMARY KEY"),
    enums.ConstrType.CONSTR_FOREIGN: ("fk_", "FOREIGN KEY"),
    enums.ConstrType.CONSTR_UNIQUE: ("uq_", "UNIQUE"),
    enums.ConstrType.CONSTR_CHECK: ("ck_", "CHECK"),
    enums.ConstrType.CONSTR_EXCLUSION: ("ex_", "EXCLUDE"),
}
_ADD_CONSTRAINT = {
    enums.AlterTableType.AT_AddConstraint,
    enums.AlterTableType.AT_AddIndexConstraint,
}


def check(source: Source) -> Iterator[Hit]:
    yield from _identifier_lengths(source)
    for statement in source.statements:
        yield from _statement(statement.node, statement.ctx)


def _identifier_lengths(source: Source) -> Iterator[Hit]:
    """Names longer than 63 bytes: the parser (like the server) has already truncated them."""
    for token in source.tokens:
        if token.name != "IDENT":
            continue
        name = source.text[token.start : token.end + 1]
        if name.startswith('"'):
            name = name[1:-1].replace('""', '"')
        if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            yield Hit(
                token.start,
                f"{name} is longer than {MAX_IDENTIFIER_BYTES} bytes and PostgreSQL silently "
                "truncates it; shorten it",
                source.statement_at(token.start),
            )


def _statement(stmt: ast.Node, ctx: Context) -> Iterator[Hit]:
    if isinstance(stmt, ast.CreateStmt):
        for element in stmt.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                for constraint in element.constraints or ():
                    yield from _constraint(ctx, constraint, ctx.at(element))
            else:
                yield from _constraint(ctx, element, ctx.start)
    elif isinstance(stmt, ast.AlterTableStmt):
        for cmd in alter_commands(stmt):
            if cmd.subtype == enums.AlterTableType.AT_AddColumn and isinstance(
                cmd.def_, ast.ColumnDef
            ):
                for constraint in cmd.def_.constraints or ():
                    yield from _constraint(ctx, constraint, ctx.start)
            elif cmd.subtype in _ADD_CONSTRAINT:
                yield from _constraint(ctx, cmd.def_, ctx.start)
    elif isinstance(stmt, ast.IndexStmt):
        prefix = "uq_" if stmt.unique else "idx_"
        kind = "unique index" if stmt.unique else "index"
        yield from _name(ctx, ctx.start, kind=kind, name=stmt.idxname, prefix=prefix)
    elif isinstance(stmt, ast.CreateTrigStmt):
        yield from _name(ctx, ctx.start, kind="trigger", name=stmt.trigname, prefix="trg_")


def _constraint(ctx: Context, node: Any, default_at: int) -> Iterator[Hit]:
    if not isinstance(node, ast.Constraint):
        return
    known = _CONSTRAINT_PREFIX.get(node.contype)
    if known is None:
        return  # NOT NULL, NULL, DEFAULT, GENERATED, IDENTITY: not named constraints
    prefix, word = known
    where = ctx.at(node) if node.location is not None and node.location >= 0 else default_at
    if not node.conname:
        yield Hit(
            where,
            f"unnamed {word} constraint; write CONSTRAINT {prefix}<table>_<columns> {word} ...",
            ctx.stmt,
        )
        return
    yield from _name(ctx, where, kind=f"{word} constraint", name=node.conname, prefix=prefix)


def _name(ctx: Context, where: int, *, kind: str, name: str | None, prefix: str) -> Iterator[Hit]:
    if not name:
        message = f"unnamed {kind}; name it explicitly ({prefix}<table>_<columns>)"
        yield Hit(where, message, ctx.stmt)
    elif not name.startswith(prefix):
        yield Hit(where, f"{kind} {name}: its name must start with {prefix}", ctx.stmt)


RULE = Rule(
    id="explicit-names",
    description="every constraint, index and trigger named, with its prefix (pk_ fk_ uq_ ck_ "
    "ex_ idx_ trg_), at most 63 bytes",
    severity=Severity.ERROR,
    waivable=True,
    check=check,
)
