"""``non-destructive``: nothing that loses data or breaks running code.

Refused: DROP of a table, schema, type, domain, sequence, materialized view, foreign
table or extension, any DROP ... CASCADE, DROP COLUMN, ALTER COLUMN ... TYPE, TRUNCATE,
DROP DATABASE, and renaming or moving a table, view, column, schema, type or enum
value. Dropping an index, view, function, trigger, policy or constraint loses no data
and is allowed (``idempotent`` still wants ``IF EXISTS``).
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from alumdb.lint.model import Hit, Severity, Source
from alumdb.lint.registry import Rule
from alumdb.lint.sqltree import OBJECT_WORDS, alter_commands, dotted, qualified

_O = enums.ObjectType
_DESTRUCTIVE_DROPS = frozenset(
    {
        _O.OBJECT_TABLE,
        _O.OBJECT_SCHEMA,
        _O.OBJECT_TYPE,
        _O.OBJECT_DOMAIN,
        _O.OBJECT_SEQUENCE,
        _O.OBJECT_MATVIEW,
        _O.OBJECT_EXTENSION,
        _O.OBJECT_FOREIGN_TABLE,
    }
)
_BREAKING_RENAMES = _DESTRUCTIVE_DROPS - {_O.OBJECT_EXTENSION} | {
    _O.OBJECT_VIEW,
    _O.OBJECT_COLUMN,
    _O.OBJECT_ATTRIBUTE,
}


def check(source: Source) -> Iterator[Hit]:
    for statement in source.statements:
        ctx = statement.ctx
        for message in _messages(statement.node):
            yield Hit(ctx.start, message, ctx.stmt)


def _messages(stmt: ast.Node) -> Iterator[str]:
    if isinstance(stmt, ast.DropStmt):
        yield from _drop(stmt)
    elif isinstance(stmt, ast.TruncateStmt):
        yield "TRUNCATE deletes every row; migrations never remove data"
    elif isinstance(stmt, ast.DropdbStmt):
        yield "DROP DATABASE in a migration; remove it"
    elif isinstance(stmt, ast.AlterTableStmt):
        table = qualified(stmt.relation)
        for cmd in alter_commands(stmt):
            if cmd.subtype == enums.AlterTableType.AT_DropColumn:
                yield (
                    f"ALTER TABLE {table} DROP COLUMN {cmd.name} loses data and breaks "
                    "running code; stop using the column and leave it in place"
                )
            elif cmd.subtype == enums.AlterTableType.AT_AlterColumnType:
                yield (
                    f"ALTER TABLE {table} ALTER COLUMN {cmd.name} TYPE rewrites the table "
                    "and can break running code; add a new column and backfill it instead"
                )
    elif isinstance(stmt, ast.RenameStmt) and stmt.renameType in _BREAKING_RENAMES:
        yield (
            f"RENAME {OBJECT_WORDS.get(stmt.renameType, 'object')} {_old_name(stmt)} TO "
            f"{stmt.newname} breaks running code that uses the old name; add the new object "
            "and migrate the code first"
        )
    elif isinstance(stmt, ast.AlterObjectSchemaStmt) and stmt.objectType in _BREAKING_RENAMES:
        word = OBJECT_WORDS.get(stmt.objectType, "object")
        yield f"ALTER {word} ... SET SCHEMA moves it away from running code; leave it in place"
    elif isinstance(stmt, ast.AlterEnumStmt) and stmt.oldVal is not None:
        yield (
            f"ALTER TYPE {dotted(stmt.typeName)} RENAME VALUE {stmt.oldVal!r} breaks running "
            "code and stored references; add a new value instead"
        )


def _drop(stmt: ast.DropStmt) -> Iterator[str]:
    word = OBJECT_WORDS.get(stmt.removeType, "object")
    if stmt.removeType in _DESTRUCTIVE_DROPS:
        yield (
            f"DROP {word} loses data and breaks running code; never drop in a migration: "
            "stop using it in the application and leave it in place"
        )
    elif stmt.behavior == enums.DropBehavior.DROP_CASCADE:
        yield (
            f"DROP {word} ... CASCADE can drop dependent tables and columns; drop exactly "
            "what you mean without CASCADE"
        )


def _old_name(stmt: ast.RenameStmt) -> str:
    if stmt.subname:
        return f"{qualified(stmt.relation)}.{stmt.subname}" if stmt.relation else stmt.subname
    if stmt.relation is not None:
        return qualified(stmt.relation)
    return dotted(stmt.object) if isinstance(stmt.object, tuple) else "?"


RULE = Rule(
    id="non-destructive",
    description="no DROP TABLE/SCHEMA/TYPE, DROP COLUMN, ALTER COLUMN TYPE, TRUNCATE or renames",
    severity=Severity.ERROR,
    waivable=True,
    check=check,
)
