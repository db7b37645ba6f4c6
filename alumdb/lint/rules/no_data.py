"""``no-data``: DDL only; no INSERT/UPDATE/DELETE/MERGE/COPY besides the tracking insert,
no ``SELECT INTO`` or ``CREATE TABLE AS`` that copies rows. DML inside a function or
rule body is code run later, not data, and is accepted."""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from alumdb.lint.model import Hit, Severity, Source, is_tracking_insert
from alumdb.lint.registry import Rule
from alumdb.lint.sqltree import DEFINITIONS, qualified, walk

_DML_WORDS: dict[type, str] = {
    ast.InsertStmt: "INSERT",
    ast.UpdateStmt: "UPDATE",
    ast.DeleteStmt: "DELETE",
    ast.MergeStmt: "MERGE",
    ast.CopyStmt: "COPY",
}


def check(source: Source) -> Iterator[Hit]:
    for statement in source.statements:
        stmt, ctx = statement.node, statement.ctx
        if not ctx.in_do and is_tracking_insert(stmt):
            continue  # the tracking-insert rule's
        for node in walk(stmt, skip=DEFINITIONS):
            word = _DML_WORDS.get(type(node))
            if word is not None:
                relation = getattr(node, "relation", None)
                target = f" {qualified(relation)}" if relation is not None else ""
                where = " (in a WITH clause)" if node is not stmt else ""
                yield Hit(
                    ctx.start if node is stmt else ctx.at(node),
                    f"{word}{target}{where}: migrations hold DDL only; move data changes to "
                    "the application or a one-off script",
                    ctx.stmt,
                )
            elif isinstance(node, ast.SelectStmt) and node.intoClause is not None:
                yield Hit(
                    ctx.start,
                    f"SELECT INTO {qualified(node.intoClause.rel)} copies data: use CREATE "
                    "TABLE IF NOT EXISTS with explicit columns",
                    ctx.stmt,
                )
            elif (
                isinstance(node, ast.CreateTableAsStmt)
                and node.objtype == enums.ObjectType.OBJECT_TABLE
                and not (node.into is not None and node.into.skipData)
            ):
                rel = node.into.rel if node.into is not None else None
                yield Hit(
                    ctx.start,
                    f"CREATE TABLE {qualified(rel)} AS copies data: use CREATE TABLE IF NOT "
                    "EXISTS with explicit columns",
                    ctx.stmt,
                )


RULE = Rule(
    id="no-data",
    description="DDL only: no INSERT/UPDATE/DELETE/MERGE/COPY besides the tracking insert",
    severity=Severity.ERROR,
    waivable=True,
    check=check,
)
