"""The schema as a Mermaid ER diagram, read from the catalog of a migrated database.

:func:`render_erd` lists every table of schema ``public`` (the migration tracking
tables left out) with its columns, their types and PK/FK/UK markers, and one
relationship line per foreign key. A table under row-level security says so on the
column(s) its policies read (``tenant_id``; ``id`` of ``tenants``), with the names of
its policies, as a Mermaid attribute comment. The output depends only on the schema: tables,
relationships and markers are sorted, columns are in table order, so rendering
the same schema twice gives the same text and a README that embeds it can be
checked for staleness (:func:`readme_erd`) and refreshed (:func:`update_readme`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from alumdb import runner, status
from alumdb.catalog import Catalog
from alumdb.errors import UsageError
from alumdb.tracking import AUDIT_TABLE, TRACKING_TABLE

SCHEMA = "public"
EXCLUDED_TABLES = (TRACKING_TABLE, AUDIT_TABLE)
START_MARKER = "<!-- erd:start -->"
END_MARKER = "<!-- erd:end -->"
INDENT = "    "

# format_type() spellings Mermaid cannot take (it allows no spaces in a type).
_SHORT_TYPES = {
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "time with time zone": "timetz",
    "time without time zone": "time",
    "character varying": "varchar",
    "character": "char",
    "double precision": "float8",
    "bit varying": "varbit",
}
_TYPE_WORD = re.compile(r"^(?P<base>[^(\[]+)(?P<rest>.*)$")

_COLUMNS_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND c.relname <> ALL (%(excluded)s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relname, a.attnum
"""

# (table, column, marker) for every column in a primary key, a foreign key or a
# unique constraint or index (partial unique indexes included).
_MARKERS_SQL = """
SELECT t.relname, a.attname, CASE WHEN i.indisprimary THEN 'PK' ELSE 'UK' END
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) AS k(attnum)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE n.nspname = %(schema)s AND (i.indisprimary OR i.indisunique)
UNION
SELECT t.relname, a.attname, 'FK'
FROM pg_constraint con
JOIN pg_class t ON t.oid = con.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL unnest(con.conkey) AS k(attnum)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE n.nspname = %(schema)s AND con.contype = 'f'
"""

# One row per foreign key: parent, child, name, and whether every referencing
# column is NOT NULL (a nullable key means the parent is optional).
_RELATIONSHIPS_SQL = """
SELECT parent.relname, child.relname, con.conname, bool_and(a.attnotnull)
FROM pg_constraint con
JOIN pg_class child ON child.oid = con.conrelid
JOIN pg_class parent ON parent.oid = con.confrelid
JOIN pg_namespace n ON n.oid = child.relnamespace
CROSS JOIN LATERAL unnest(con.conkey) AS k(attnum)
JOIN pg_attribute a ON a.attrelid = child.oid AND a.attnum = k.attnum
WHERE n.nspname = %(schema)s AND con.contype = 'f'
GROUP BY parent.relname, child.relname, con.conname
"""

# (table, column, policies) for every table with row-level security enabled: the
# columns its policies' expressions read (from pg_depend), else its first column,
# and the names of all its policies (none: the table shows nothing to anyone but its
# owner).
_POLICIES_SQL = """
SELECT c.relname,
       coalesce(
           (SELECT array_agg(DISTINCT a.attname::text)
            FROM pg_policy p
            JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid
             AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND d.refobjsubid > 0
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
            WHERE p.polrelid = c.oid),
           (SELECT ARRAY[a.attname::text] FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum LIMIT 1)),
       coalesce((SELECT array_agg(p.polname::text ORDER BY p.polname)
                 FROM pg_policy p WHERE p.polrelid = c.oid), '{}')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND c.relrowsecurity
"""

_MARKER_ORDER = ("PK", "FK", "UK")


@dataclass
class _Table:
    name: str
    columns: list[tuple[str, str]] = field(default_factory=list)


def mermaid_type(pg_type: str) -> str:
    """``format_type()`` as one Mermaid word: ``character varying(16)`` is ``varchar(16)``."""
    text = pg_type.removeprefix(f"{SCHEMA}.")
    match = _TYPE_WORD.match(text)
    if match:
        base = match.group("base").strip()
        text = _SHORT_TYPES.get(base, base) + match.group("rest")
    return re.sub(r"[^A-Za-z0-9_()\[\]-]", "_", text.replace(",", "-"))


def render_erd(conn: psycopg.Connection[Any]) -> str:
    """The Mermaid ``erDiagram`` of schema ``public``, fenced as a ```` ```mermaid ```` block."""
    params = {"schema": SCHEMA, "excluded": list(EXCLUDED_TABLES)}
    with conn.cursor(row_factory=tuple_row) as cur:
        columns = cur.execute(_COLUMNS_SQL, params).fetchall()
        markers = cur.execute(_MARKERS_SQL, params).fetchall()
        relationships = cur.execute(_RELATIONSHIPS_SQL, params).fetchall()
        policies = cur.execute(_POLICIES_SQL, params).fetchall()

    tables: dict[str, _Table] = {}
    for table, column, pg_type in columns:
        tables.setdefault(table, _Table(table)).columns.append((column, mermaid_type(pg_type)))
    keys: dict[tuple[str, str], set[str]] = defaultdict(set)
    for table, column, marker in markers:
        keys[(table, column)].add(marker)
    notes: dict[tuple[str, str], str] = {}
    for table, policy_columns, names in policies:
        note = f"RLS: {', '.join(names)}" if names else "RLS, no policy: no rows for any role"
        note = note.replace('"', "'")  # a Mermaid comment cannot hold a double quote
        for column in policy_columns:
            notes[(table, column)] = note

    lines = ["```mermaid", "erDiagram"]
    for name in sorted(tables):
        lines.append(f"{INDENT}{name} {{")
        for column, col_type in tables[name].columns:
            marks = ", ".join(m for m in _MARKER_ORDER if m in keys.get((name, column), ()))
            comment = f' "{notes[(name, column)]}"' if (name, column) in notes else ""
            lines.append(f"{INDENT * 2}{col_type} {column}{' ' + marks if marks else ''}{comment}")
        lines.append(f"{INDENT}}}")
    for parent, child, fk_name, mandatory in sorted(relationships):
        if parent in tables and child in tables:
            # ||: every child row has exactly one parent; |o: the key is nullable.
            parent_end = "||" if mandatory else "|o"
            lines.append(f'{INDENT}{parent} {parent_end}--o{{ {child} : "{fk_name}"')
    lines.append("```")
    return "\n".join(lines)


def render_migrated_erd(conn: psycopg.Connection[Any], folder: Catalog, where: str) -> str:
    """:func:`render_erd` of a database with every file of ``folder`` applied.

    A database with files not applied would draw another schema than the migrations
    make (and the README would go stale the other way): :class:`UsageError`.
    """
    pending = status.not_applied(runner.read_status(conn, folder))
    if pending:
        raise UsageError(
            f"{where}: {len(pending)} migration(s) not applied "
            f"({pending[0].version} first); run `invoke migrate` before `invoke erd`"
        )
    return render_erd(conn)


def _marker_span(readme: Path, text: str) -> tuple[int, int]:
    """Start and end offsets of the text between the markers of ``readme``."""
    start = text.find(START_MARKER)
    end = text.find(END_MARKER)
    if start < 0 or end < 0 or end < start or text.count(START_MARKER) != 1:
        raise UsageError(
            f"{readme}: needs exactly one {START_MARKER} line followed by one {END_MARKER} "
            "line where the schema diagram belongs; add them, then run `invoke erd`"
        )
    return start + len(START_MARKER), end


def _read(readme: Path) -> str:
    try:
        return readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{readme}: cannot read it ({exc.strerror}); check the path") from None


def readme_erd(readme: Path) -> str:
    """The diagram currently between the markers of ``readme`` (surrounding blank lines removed)."""
    text = _read(readme)
    start, end = _marker_span(readme, text)
    return text[start:end].strip()


def update_readme(readme: Path, erd: str) -> bool:
    """Put ``erd`` between the markers of ``readme``; return whether the file changed."""
    text = _read(readme)
    start, end = _marker_span(readme, text)
    updated = f"{text[:start]}\n{erd.strip()}\n{text[end:]}"
    if updated == text:
        return False
    readme.write_text(updated, encoding="utf-8")
    return True
