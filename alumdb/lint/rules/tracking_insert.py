"""``tracking-insert``: exactly one ``INSERT INTO schema_migrations`` with the file's own
version and name, ``ON CONFLICT (version) DO NOTHING``, as the last statement."""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from alumdb import catalog
from alumdb.database import TRACKING_TABLE
from alumdb.lint.model import Hit, Severity, Source, is_tracking_insert
from alumdb.lint.registry import Rule


def check(source: Source) -> Iterator[Hit]:
    version_name = source.version_name
    version = catalog.format_version(version_name[0]) if version_name else "<NNN>"
    name = version_name[1] if version_name else "<name>"
    wanted = (
        f"INSERT INTO {TRACKING_TABLE} (version, name) VALUES ('{version}', '{name}') "
        "ON CONFLICT (version) DO NOTHING;"
    )
    raws = source.raws
    found = [i for i, raw in enumerate(raws) if raw.stmt and is_tracking_insert(raw.stmt)]
    if not found:
        yield Hit(len(source.text.rstrip()), f"no tracking insert; end the file with `{wanted}`")
        return
    for extra in found[1:]:
        yield Hit(
            source.starts[extra],
            "a second INSERT INTO schema_migrations; keep exactly one, as the last statement",
            extra,
        )
    index = found[0]
    if index != len(raws) - 1 and len(found) == 1:
        yield Hit(
            source.starts[index],
            "the tracking insert is not the last statement; move it to the end of the file",
            index,
        )
    stmt = raws[index].stmt
    assert isinstance(stmt, ast.InsertStmt)  # noqa: S101 - is_tracking_insert says so
    problem = _problem(stmt, (version, name) if version_name else None)
    if problem is not None:
        yield Hit(source.starts[index], f"{problem}; write `{wanted}`", index)


def _problem(stmt: ast.InsertStmt, expected: tuple[str, str] | None) -> str | None:
    """What is wrong with the tracking insert, checked in the order a reader would."""
    columns = [getattr(c, "name", None) for c in stmt.cols or ()]
    if columns != ["version", "name"]:
        return "the tracking insert must list exactly the columns (version, name)"
    if stmt.withClause is not None or getattr(stmt, "returningList", None):
        return "the tracking insert has a WITH or RETURNING clause"
    return _values_problem(stmt, expected) or _conflict_problem(stmt)


def _values_problem(stmt: ast.InsertStmt, expected: tuple[str, str] | None) -> str | None:
    select = stmt.selectStmt
    rows = getattr(select, "valuesLists", None) if isinstance(select, ast.SelectStmt) else None
    if not rows or len(rows) != 1 or len(rows[0]) != 2:
        return "the tracking insert must be a single VALUES row"
    values = [getattr(getattr(v, "val", None), "sval", None) for v in rows[0]]
    if not all(isinstance(v, str) for v in values):
        return "the tracking insert's values must be string literals"
    for column, value, want in zip(("version", "name"), values, expected or values, strict=True):
        if value != want:
            return f"the tracking insert records {column} {value!r}, not {want!r}"
    return None


def _conflict_problem(stmt: ast.InsertStmt) -> str | None:
    conflict = stmt.onConflictClause
    infer = conflict.infer if conflict is not None else None
    elems = [getattr(e, "name", None) for e in infer.indexElems or ()] if infer else []
    if (
        conflict is None
        or conflict.action != enums.OnConflictAction.ONCONFLICT_NOTHING
        or elems != ["version"]
    ):
        return "the tracking insert must end with ON CONFLICT (version) DO NOTHING"
    return None


RULE = Rule(
    id="tracking-insert",
    description="exactly one INSERT INTO schema_migrations (version, name) VALUES (<file's "
    "version>, <file's name>) ON CONFLICT (version) DO NOTHING, as the last statement",
    severity=Severity.ERROR,
    waivable=True,
    check=check,
)
