"""Small helpers over pglast's parse trees, shared by the rules."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pglast import ast, enums

# Subtrees that define code run later, not now: DML inside them is not data.
DEFINITIONS = (ast.CreateFunctionStmt, ast.RuleStmt)

OBJECT_WORDS: dict[Any, str] = {
    enums.ObjectType.OBJECT_TABLE: "TABLE",
    enums.ObjectType.OBJECT_SCHEMA: "SCHEMA",
    enums.ObjectType.OBJECT_TYPE: "TYPE",
    enums.ObjectType.OBJECT_DOMAIN: "DOMAIN",
    enums.ObjectType.OBJECT_SEQUENCE: "SEQUENCE",
    enums.ObjectType.OBJECT_MATVIEW: "MATERIALIZED VIEW",
    enums.ObjectType.OBJECT_EXTENSION: "EXTENSION",
    enums.ObjectType.OBJECT_FOREIGN_TABLE: "FOREIGN TABLE",
    enums.ObjectType.OBJECT_VIEW: "VIEW",
    enums.ObjectType.OBJECT_COLUMN: "COLUMN",
    enums.ObjectType.OBJECT_ATTRIBUTE: "ATTRIBUTE",
    enums.ObjectType.OBJECT_INDEX: "INDEX",
    enums.ObjectType.OBJECT_FUNCTION: "FUNCTION",
    enums.ObjectType.OBJECT_PROCEDURE: "PROCEDURE",
    enums.ObjectType.OBJECT_TRIGGER: "TRIGGER",
    enums.ObjectType.OBJECT_POLICY: "POLICY",
}


def walk(node: Any, *, skip: tuple[type, ...] = ()) -> Iterator[ast.Node]:
    """Every node under ``node`` (included), depth first, not entering ``skip`` types."""
    if skip and isinstance(node, skip):
        return
    if isinstance(node, ast.Node):
        yield node
        for attribute in node:
            if attribute != "ancestors":
                yield from walk(getattr(node, attribute, None), skip=skip)
    elif isinstance(node, tuple | list):
        for item in node:
            yield from walk(item, skip=skip)


def qualified(rangevar: ast.RangeVar | None) -> str:
    """``schema.name`` or ``name`` of a relation."""
    if rangevar is None:
        return "?"
    name = str(rangevar.relname)
    return f"{rangevar.schemaname}.{name}" if rangevar.schemaname else name


def dotted(names: Iterable[Any] | None) -> str:
    """A qualified name from a list of String nodes."""
    if not names:
        return "?"
    return ".".join(str(getattr(n, "sval", n)) for n in names)


def transaction_word(stmt: ast.TransactionStmt) -> str:
    """``BEGIN``, ``COMMIT``, ``SAVEPOINT`` ... of a transaction statement."""
    kind = str(getattr(stmt.kind, "name", stmt.kind))
    word = kind.removeprefix("TRANS_STMT_").replace("_", " ")
    return word or "transaction control"


def guard_hint(catalog: str, *, in_do: bool) -> str:
    """How to make a CREATE without IF NOT EXISTS safe to run twice."""
    check = f"IF NOT EXISTS (SELECT 1 FROM {catalog} ...) THEN ...; END IF"
    if in_do:
        return f"guard it with {check}, or an EXCEPTION WHEN duplicate_object handler"
    return f"wrap it in DO $$ BEGIN {check}; END $$"


def alter_commands(stmt: ast.AlterTableStmt) -> Iterator[ast.AlterTableCmd]:
    """The subcommands of an ALTER TABLE."""
    for cmd in stmt.cmds or ():
        if isinstance(cmd, ast.AlterTableCmd):
            yield cmd
