"""``tenant-scoped``: every table carries ``tenant_id`` (NOT NULL, a foreign key to
``tenants``), ``created_at``, ``updated_at`` and a BEFORE UPDATE row trigger calling
``set_updated_at()`` in the same file.

The ``tenants`` table itself needs only the timestamps and the trigger. Temporary
tables and partitions (which inherit their parent's columns and triggers) are skipped.
A table that is not tenant data takes a waiver with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from alumdb.lint.model import Hit, Severity, Source
from alumdb.lint.registry import Rule

TENANTS_TABLE = "tenants"
UPDATED_AT_FUNCTION = "set_updated_at"


def check(source: Source) -> Iterator[Hit]:
    triggers = [s.node for s in source.statements if isinstance(s.node, ast.CreateTrigStmt)]
    for statement in source.statements:
        stmt = statement.node
        if statement.ctx.in_do or not isinstance(stmt, ast.CreateStmt) or stmt.relation is None:
            continue
        if stmt.relation.relpersistence == "t":
            continue  # temporary
        if stmt.partbound is not None or stmt.inhRelations:
            continue  # a partition or child inherits its parent's columns and triggers
        name = str(stmt.relation.relname)
        missing = _problems(stmt, triggers)
        if missing:
            yield Hit(
                statement.ctx.start,
                f"table {name}: "
                + "; ".join(missing)
                + " (or, if it is not tenant data, put `-- alumdb: allow tenant-scoped "
                "because <reason>` above it)",
                statement.ctx.stmt,
            )


def _problems(stmt: ast.CreateStmt, triggers: list[ast.CreateTrigStmt]) -> list[str]:
    assert stmt.relation is not None  # noqa: S101 - check() skips the others
    name = str(stmt.relation.relname)
    columns = {str(e.colname): e for e in stmt.tableElts or () if isinstance(e, ast.ColumnDef)}
    missing = [] if name == TENANTS_TABLE else _tenant_problems(stmt, columns)
    missing.extend(
        f"add column {column} TIMESTAMPTZ NOT NULL DEFAULT now()"
        for column in ("created_at", "updated_at")
        if column not in columns
    )
    if not any(_is_updated_at_trigger(t, stmt.relation) for t in triggers):
        missing.append(
            f"add `CREATE OR REPLACE TRIGGER trg_{name}_updated_at BEFORE UPDATE ON "
            f"{name} FOR EACH ROW EXECUTE FUNCTION {UPDATED_AT_FUNCTION}()` to this file"
        )
    return missing


def _references_tenants(constraint: ast.Constraint) -> bool:
    return (
        constraint.contype == enums.ConstrType.CONSTR_FOREIGN
        and constraint.pktable is not None
        and constraint.pktable.relname == TENANTS_TABLE
    )


def _names(nodes: tuple[ast.Node, ...] | None) -> list[str | None]:
    return [getattr(n, "sval", None) for n in nodes or ()]


def _tenant_problems(stmt: ast.CreateStmt, columns: dict[str, ast.ColumnDef]) -> list[str]:
    tenant = columns.get("tenant_id")
    if tenant is None:
        return [
            "add column tenant_id UUID NOT NULL with CONSTRAINT fk_<table>_tenant FOREIGN "
            "KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE"
        ]
    problems: list[str] = []
    constraints = [c for c in stmt.tableElts or () if isinstance(c, ast.Constraint)]
    on_column = [c for c in tenant.constraints or () if isinstance(c, ast.Constraint)]
    has_fk = any(_references_tenants(c) for c in on_column) or any(
        _references_tenants(c) and "tenant_id" in _names(c.fk_attrs) for c in constraints
    )
    if not has_fk:
        problems.append(
            "add CONSTRAINT fk_<table>_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)"
        )
    not_null = bool(tenant.is_not_null) or any(
        c.contype in {enums.ConstrType.CONSTR_NOTNULL, enums.ConstrType.CONSTR_PRIMARY}
        for c in on_column
    )
    in_primary_key = any(
        c.contype == enums.ConstrType.CONSTR_PRIMARY and "tenant_id" in _names(c.keys)
        for c in constraints
    )
    if not (not_null or in_primary_key):
        problems.append("make tenant_id NOT NULL")
    return problems


def _is_updated_at_trigger(node: ast.CreateTrigStmt, table: ast.RangeVar) -> bool:
    relation = node.relation
    same_table = (
        relation is not None
        and relation.relname == table.relname
        and (relation.schemaname is None or table.schemaname in {None, relation.schemaname})
    )
    function = [str(getattr(n, "sval", n)) for n in node.funcname or ()]
    return (
        same_table
        and bool(node.row)
        and bool((node.timing or 0) & enums.TRIGGER_TYPE_BEFORE)
        and bool((node.events or 0) & enums.TRIGGER_TYPE_UPDATE)
        and bool(function)
        and function[-1] == UPDATED_AT_FUNCTION
    )


RULE = Rule(
    id="tenant-scoped",
    description="every table has tenant_id (NOT NULL, FK to tenants), created_at, updated_at "
    "and a BEFORE UPDATE trigger calling set_updated_at()",
    severity=Severity.ERROR,
    waivable=True,
    check=check,
)
