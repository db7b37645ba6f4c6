"""``tenant-isolation``: a table created with ``tenant_id`` is brought under row-level
security, with its tenant policy, in the file that creates it.

"Under row-level security" means both, for the table (top level or inside a ``DO``
block, where guarded statements belong): ``ALTER TABLE <t> ENABLE ROW LEVEL SECURITY``
and a ``CREATE POLICY ... ON <t>`` for all commands whose ``USING`` reads
``tenant_id`` (``WITH CHECK`` defaults to ``USING`` for such a policy). A policy
without the switch does nothing; the switch without a policy hides every row from
everyone but the owner. A table that is deliberately not isolated takes a waiver with
its reason above its ``CREATE TABLE``.

Files that predate row-level security are deployed and checksummed: they cannot be
edited. The first file of the folder that enables row-level security anywhere (012 in
this project) is the baseline. A table created in a file *before* the baseline is
grandfathered when a later file of the folder (the baseline or after) isolates it,
and is reported on its ``CREATE TABLE`` when none does (fix it with a new file). A
table created in the baseline or any later file must be isolated in its own file: a
later file does not excuse it. Linted alone (no folder), a file has no later files:
every table with ``tenant_id`` in it must be isolated there.

Not covered: ``ALTER TABLE ... ADD COLUMN tenant_id`` on an existing table, and a
later ``DISABLE ROW LEVEL SECURITY`` or ``DROP POLICY`` (the integration meta-test,
``tests/integration/test_rls.py``, checks the migrated database for both).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pglast import ast, enums

from alumdb.lint.model import Hit, Severity, Source
from alumdb.lint.registry import Rule
from alumdb.lint.sqltree import alter_commands, walk

TENANT_COLUMN = "tenant_id"


@dataclass
class _Isolation:
    """What one file does for row-level security, per table name."""

    enabled: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)  # tables with a tenant policy

    def isolated(self) -> set[str]:
        return self.enabled & self.policies


def check(source: Source) -> Iterator[Hit]:
    own = _isolation(source)
    baseline, later = _folder_view(source)
    for statement in source.statements:
        stmt = statement.node
        if statement.ctx.in_do or not isinstance(stmt, ast.CreateStmt) or stmt.relation is None:
            continue
        if stmt.relation.relpersistence == "t" or stmt.partbound is not None:
            continue  # temporary, or a partition (the parent's security applies)
        name = str(stmt.relation.relname)
        if not _has_tenant_column(stmt) or name in own.isolated():
            continue
        if baseline is not None and _number(source) < baseline and name in later:
            continue  # grandfathered: a later file brings it under row-level security
        yield Hit(statement.ctx.start, _message(name, own, baseline, source), statement.ctx.stmt)


def _message(name: str, own: _Isolation, baseline: int | None, source: Source) -> str:
    if name in own.enabled:
        what = "enables row-level security but creates no tenant policy (no rows for anyone)"
    elif name in own.policies:
        what = "creates a tenant policy but does not enable row-level security (it does nothing)"
    else:
        what = "has tenant_id but is not under row-level security"
    if baseline is not None and _number(source) < baseline:
        where = "no later file of the folder brings it under row-level security; add a new file"
    else:
        where = "do it in this file"
    return (
        f"table {name} {what}; {where}: `ALTER TABLE {name} ENABLE ROW LEVEL SECURITY` and "
        f"`CREATE POLICY pol_{name}_tenant ON {name} FOR ALL TO alumoutreach_app USING "
        "(tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id())`, "
        "each guarded in a DO block (migrations/README.md, Create New Table); or, if it must "
        "not be isolated, put `-- alumdb: allow tenant-isolation because <reason>` above it"
    )


def _has_tenant_column(stmt: ast.CreateStmt) -> bool:
    return any(
        isinstance(e, ast.ColumnDef) and e.colname == TENANT_COLUMN for e in stmt.tableElts or ()
    )


def _isolation(source: Source) -> _Isolation:
    found = _Isolation()
    for statement in source.statements:
        stmt = statement.node
        if isinstance(stmt, ast.AlterTableStmt) and stmt.relation is not None:
            if any(
                c.subtype == enums.AlterTableType.AT_EnableRowSecurity for c in alter_commands(stmt)
            ):
                found.enabled.add(str(stmt.relation.relname))
        elif isinstance(stmt, ast.CreatePolicyStmt) and _is_tenant_policy(stmt):
            assert stmt.table is not None  # noqa: S101 - a policy is always on a table
            found.policies.add(str(stmt.table.relname))
    return found


def _is_tenant_policy(stmt: ast.CreatePolicyStmt) -> bool:
    """A permissive policy for all commands whose USING reads tenant_id."""
    if str(stmt.cmd_name or "all").lower() != "all" or stmt.permissive is False:
        return False
    return any(
        isinstance(node, ast.ColumnRef)
        and [getattr(f, "sval", None) for f in node.fields or ()][-1:] == [TENANT_COLUMN]
        for node in walk(stmt.qual)
    )


def _number(source: Source) -> int:
    version = source.version_name
    return version[0] if version is not None else 0


def _folder_view(source: Source) -> tuple[int | None, set[str]]:
    """The baseline's number (the first file enabling row-level security) and the tables
    that files after ``source`` isolate."""
    baseline: int | None = None
    later: set[str] = set()
    for other in source.folder:
        isolation = _isolation(other)
        if baseline is None and isolation.enabled:
            baseline = _number(other)
        if _number(other) > _number(source):
            later |= isolation.isolated()
    return baseline, later


RULE = Rule(
    id="tenant-isolation",
    description="a table created with tenant_id enables row-level security and creates its "
    "tenant policy in the same file (files before the first row-level security file are "
    "grandfathered when a later file isolates their tables)",
    severity=Severity.ERROR,
    waivable=True,
    check=check,
)
