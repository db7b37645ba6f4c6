"""``idempotent``: every statement is safe to run twice.

``IF NOT EXISTS`` / ``IF EXISTS`` / ``OR REPLACE`` where PostgreSQL has them; types,
domains, constraints, constraint triggers, policies and roles (which have none) only
inside a guarded ``DO`` block (see :mod:`alumdb.lint.plpgsql` for what counts as a
guard).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pglast import ast, enums

from alumdb.lint.model import Context, Hit, Severity, Source
from alumdb.lint.registry import Rule
from alumdb.lint.sqltree import OBJECT_WORDS, alter_commands, dotted, guard_hint, qualified

# Statement type -> (the flag that makes it idempotent, how to describe it). The flag
# is read with getattr; the describer gets the statement.
_FLAGGED: dict[type, tuple[str, Callable[[Any], str]]] = {
    ast.CreateStmt: (
        "if_not_exists",
        lambda s: f"CREATE TABLE {qualified(s.relation)}: add IF NOT EXISTS",
    ),
    ast.IndexStmt: (
        "if_not_exists",
        lambda s: f"CREATE INDEX {s.idxname or '(unnamed)'}: add IF NOT EXISTS (and a name)",
    ),
    ast.CreateSeqStmt: (
        "if_not_exists",
        lambda s: f"CREATE SEQUENCE {qualified(s.sequence)}: add IF NOT EXISTS",
    ),
    ast.CreateSchemaStmt: (
        "if_not_exists",
        lambda s: f"CREATE SCHEMA {s.schemaname}: add IF NOT EXISTS",
    ),
    ast.CreateExtensionStmt: (
        "if_not_exists",
        lambda s: f"CREATE EXTENSION {s.extname}: add IF NOT EXISTS",
    ),
    ast.CreateStatsStmt: (
        "if_not_exists",
        lambda s: f"CREATE STATISTICS {dotted(s.defnames)}: add IF NOT EXISTS",
    ),
    ast.CreateTableAsStmt: (
        "if_not_exists",
        lambda s: f"CREATE ... AS {qualified(s.into.rel if s.into else None)}: add IF NOT EXISTS",
    ),
    ast.CreateFunctionStmt: (
        "replace",
        lambda s: (
            f"CREATE {'PROCEDURE' if s.is_procedure else 'FUNCTION'} "
            f"{dotted(s.funcname)}: use CREATE OR REPLACE"
        ),
    ),
    ast.ViewStmt: (
        "replace",
        lambda s: f"CREATE VIEW {qualified(s.view)}: use CREATE OR REPLACE VIEW",
    ),
    ast.RuleStmt: ("replace", lambda s: f"CREATE RULE {s.rulename}: use CREATE OR REPLACE RULE"),
    ast.DropStmt: (
        "missing_ok",
        lambda s: f"DROP {OBJECT_WORDS.get(s.removeType, 'object')}: add IF EXISTS",
    ),
}
_CREATE_TYPE = (
    ast.CreateEnumStmt,
    ast.CompositeTypeStmt,
    ast.CreateDomainStmt,
    ast.CreateRangeStmt,
)
_ADD_CONSTRAINT = {
    enums.AlterTableType.AT_AddConstraint,
    enums.AlterTableType.AT_AddIndexConstraint,
}


def check(source: Source) -> Iterator[Hit]:
    for statement in source.statements:
        if not statement.ctx.guarded:
            yield from _statement(statement.node, statement.ctx)


def _statement(stmt: ast.Node, ctx: Context) -> Iterator[Hit]:
    flagged = _FLAGGED.get(type(stmt))
    if flagged is not None:
        flag, describe = flagged
        if not getattr(stmt, flag, False):
            yield Hit(ctx.start, describe(stmt), ctx.stmt)
    elif isinstance(stmt, ast.AlterTableStmt):
        yield from _alter_table(stmt, ctx)
    else:
        message = _unguarded(stmt, ctx)
        if message is not None:
            yield Hit(ctx.start, message, ctx.stmt)


def _unguarded(stmt: ast.Node, ctx: Context) -> str | None:
    """The message for a statement with no IF NOT EXISTS of its own, if it needs one."""
    for kinds, describe in _UNGUARDED:
        if isinstance(stmt, kinds):
            return describe(stmt, ctx)
    return None


def _where(ctx: Context) -> str:
    return "unguarded in a DO block" if ctx.in_do else "at top level"


def _define(stmt: ast.DefineStmt, ctx: Context) -> str | None:
    name = dotted(stmt.defnames)
    if stmt.kind == enums.ObjectType.OBJECT_COLLATION and not stmt.if_not_exists:
        return f"CREATE COLLATION {name}: add IF NOT EXISTS"
    if stmt.kind == enums.ObjectType.OBJECT_TYPE:
        return f"CREATE TYPE {name} {_where(ctx)}: " + guard_hint("pg_type", in_do=ctx.in_do)
    if stmt.kind == enums.ObjectType.OBJECT_AGGREGATE and not stmt.replace:
        return f"CREATE AGGREGATE {name}: use CREATE OR REPLACE"
    return None


def _create_type(stmt: Any, ctx: Context) -> str:
    if isinstance(stmt, ast.CompositeTypeStmt):
        name = qualified(stmt.typevar)
    else:
        name = dotted(getattr(stmt, "typeName", None) or getattr(stmt, "domainname", None))
    word = "CREATE DOMAIN" if isinstance(stmt, ast.CreateDomainStmt) else "CREATE TYPE"
    return f"{word} {name} {_where(ctx)}: " + guard_hint("pg_type", in_do=ctx.in_do)


def _alter_enum(stmt: ast.AlterEnumStmt, ctx: Context) -> str | None:
    if stmt.newVal is None or stmt.oldVal is not None or stmt.skipIfNewValExists:
        return None
    return f"ALTER TYPE {dotted(stmt.typeName)} ADD VALUE {stmt.newVal!r}: add IF NOT EXISTS"


def _trigger(stmt: ast.CreateTrigStmt, ctx: Context) -> str | None:
    if stmt.isconstraint:
        guard = guard_hint("pg_trigger", in_do=ctx.in_do)
        return f"CREATE CONSTRAINT TRIGGER {stmt.trigname} cannot be OR REPLACE: {guard}"
    if not stmt.replace:
        return f"CREATE TRIGGER {stmt.trigname}: use CREATE OR REPLACE TRIGGER"
    return None


def _policy(stmt: ast.CreatePolicyStmt, ctx: Context) -> str:
    guard = guard_hint("pg_policies", in_do=ctx.in_do)
    return f"CREATE POLICY {stmt.policy_name} {_where(ctx)} (it has no IF NOT EXISTS): {guard}"


def _role(stmt: ast.CreateRoleStmt, ctx: Context) -> str:
    guard = guard_hint("pg_roles", in_do=ctx.in_do)
    return f"CREATE ROLE {stmt.role} {_where(ctx)} (it has no IF NOT EXISTS): {guard}"


_UNGUARDED: tuple[tuple[type | tuple[type, ...], Callable[[Any, Context], str | None]], ...] = (
    (ast.DefineStmt, _define),
    (_CREATE_TYPE, _create_type),
    (ast.AlterEnumStmt, _alter_enum),
    (ast.CreateTrigStmt, _trigger),
    (ast.CreatePolicyStmt, _policy),
    (ast.CreateRoleStmt, _role),
)


def _alter_table(stmt: ast.AlterTableStmt, ctx: Context) -> Iterator[Hit]:
    table = qualified(stmt.relation)
    for cmd in alter_commands(stmt):
        if cmd.subtype == enums.AlterTableType.AT_AddColumn and not cmd.missing_ok:
            column = getattr(cmd.def_, "colname", "?")
            yield Hit(
                ctx.start, f"ALTER TABLE {table} ADD COLUMN {column}: add IF NOT EXISTS", ctx.stmt
            )
        elif cmd.subtype in _ADD_CONSTRAINT:
            name = getattr(cmd.def_, "conname", None) or "(unnamed)"
            state = "unguarded in a DO block" if ctx.in_do else "has no IF NOT EXISTS"
            guard = guard_hint("pg_constraint WHERE conname = ... AND conrelid", in_do=ctx.in_do)
            yield Hit(
                ctx.at(cmd.def_),
                f"ALTER TABLE {table} ADD CONSTRAINT {name} {state}: {guard}",
                ctx.stmt,
            )
        elif cmd.subtype == enums.AlterTableType.AT_DropConstraint and not cmd.missing_ok:
            yield Hit(
                ctx.start,
                f"ALTER TABLE {table} DROP CONSTRAINT {cmd.name}: add IF EXISTS",
                ctx.stmt,
            )


RULE = Rule(
    id="idempotent",
    description="safe to run twice: IF NOT EXISTS / IF EXISTS / OR REPLACE, types, "
    "constraints and policies created only inside a guarded DO block",
    severity=Severity.ERROR,
    waivable=True,
    check=check,
)
