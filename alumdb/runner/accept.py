"""``accept-checksum``: accept an applied file's edit only when the database would see
no difference, i.e. the parsed statements are identical (comments, whitespace and
layout may change; nothing else).

The applied content is found by its checksum in the file's git history, the only
place a deployed file's earlier text is kept.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from alumdb import status as status_mod
from alumdb import tracking as tracking_mod
from alumdb.catalog import Catalog, Migration, checksum
from alumdb.errors import UsageError
from alumdb.runner.locate import line_col
from alumdb.runner.locking import locked
from alumdb.runner.preflight import parse

_POSITIONS = {"location", "stmt_location", "stmt_len"}


def _shape(node: Any) -> Any:
    """A parse tree without source positions: equal for equal statements."""
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items() if k not in _POSITIONS}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    return node


def first_difference(old: str, new: str) -> int | None:
    """The 0-based index of the first statement that differs (``None``: all identical).

    A text that does not parse differs at statement 0.
    """
    from pglast import parser

    try:
        before = json.loads(parser.parse_sql_json(old)).get("stmts", [])
        after = json.loads(parser.parse_sql_json(new)).get("stmts", [])
    except parser.ParseError:
        return 0
    for index, (a, b) in enumerate(zip(before, after, strict=False)):
        if _shape(a.get("stmt")) != _shape(b.get("stmt")):
            return index
    return None if len(before) == len(after) else min(len(before), len(after))


def applied_text(path: Path, recorded: str) -> str | None:
    """The content of ``path`` whose checksum is ``recorded``, from its git history."""
    folder = str(path.parent)
    try:
        log = subprocess.run(
            ["git", "-C", folder, "log", "--format=%H", "--", path.name],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.split()  # fmt: skip
        prefix = subprocess.run(
            ["git", "-C", folder, "rev-parse", "--show-prefix"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    for commit in log:
        shown = subprocess.run(
            ["git", "-C", folder, "show", f"{commit}:{prefix}{path.name}"],
            capture_output=True, check=False, timeout=30,
        )  # fmt: skip
        text = shown.stdout.decode("utf-8", "replace")
        if shown.returncode == 0 and checksum(text) == recorded:
            return text
    return None


def check_edit(migration: Migration, recorded: str | None) -> None:
    """:class:`UsageError` unless the edit leaves the parsed statements identical."""
    if recorded is None:
        return  # nothing recorded to compare with: the file is adopted as it is
    old = applied_text(migration.path, recorded)
    if old is None:
        raise UsageError(
            f"{migration.filename}: the applied content (checksum {recorded[:12]}...) is not "
            "in the file's git history, so the edit cannot be checked; restore the applied "
            "file and put the change in a new migration"
        )
    index = first_difference(old, migration.sql)
    if index is None:
        return
    statements = parse(migration)
    offset = (
        statements[index].offset
        if not isinstance(statements, str) and index < len(statements)
        else 0
    )
    line, col = line_col(migration.sql, offset)
    raise UsageError(
        f"{migration.filename}:{line}:{col}: statement {index + 1} differs from the applied "
        "file's; only comments and whitespace may change in an applied migration: restore "
        "it and put the change in a new migration"
    )


def accept_checksum(
    conn: psycopg.Connection[Any], catalog: Catalog, version: str, reason: str
) -> tuple[str | None, str]:
    """Record the current checksum of an applied, changed file; logged with ``reason``.

    Returns ``(old, new)``. Refuses an empty reason, a version that is not changed,
    and an edit that changes a statement.
    """
    if not reason.strip():
        raise UsageError("--reason is required: say why the changed file is acceptable")
    migration = catalog.find(version)
    if migration is None:
        raise UsageError(f"VERSION {version!r}: no migration with that version on disk")
    tracking = tracking_mod.locate(conn)
    entries = {e.number: e for e in status_mod.compare(catalog, tracking.read(conn))}
    entry = entries.get(migration.number)
    if entry is None or entry.state != "changed" or entry.recorded_checksum == migration.checksum:
        state = entry.state if entry else "unknown"
        raise UsageError(
            f"{migration.filename}: is {state}, not changed; there is no checksum to accept"
        )
    check_edit(migration, entry.recorded_checksum)
    with locked(conn):
        if not tracking.columns(conn) >= tracking_mod.NEEDED_COLUMNS:
            tracking.upgrade(conn)
        tracking.accept(conn, migration, entry.recorded_checksum, reason.strip())
    return entry.recorded_checksum, migration.checksum
