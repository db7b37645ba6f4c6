"""A database's schema read from its catalogs (pg_catalog), as plain data to compare.

Every object becomes a :class:`DbObject`: its kind, its qualified name and one
definition string, mostly PostgreSQL's own rendering (``pg_get_constraintdef``,
``pg_get_indexdef``, ``pg_get_triggerdef``, ``pg_get_functiondef``...), so two
databases are compared by what the server says an object is, not by how a dump
prints it. Column order is kept apart (a different order is a note, not drift).

What is left out on purpose: system schemas (``pg_catalog``, ``information_schema``,
``pg_toast``, every session's ``pg_temp_N``, where the runner creates its transient
helper functions), the members of extensions (the extension and its version stand
for them), owners (a shadow database is owned by whoever built it) and the rows of
every table, the tracking tables included.

The reads run with ``search_path = pg_catalog``, so every name PostgreSQL renders is
schema-qualified and both databases render alike whatever their settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import tuple_row

# Kinds in the order a report lists them: containers before what they contain.
KINDS = (
    "schema",
    "extension",
    "collation",
    "enum",
    "domain",
    "type",
    "table",
    "view",
    "column",
    "constraint",
    "index",
    "trigger",
    "function",
    "sequence",
    "row security",
    "policy",
    "privileges",
)

Key = tuple[str, str]  # (kind, name)


@dataclass(frozen=True)
class DbObject:
    """One schema object: what it is, its qualified name, and its definition."""

    kind: str
    name: str
    definition: str
    parent: Key | None = None  # the object it belongs to (a column's table, say)

    @property
    def key(self) -> Key:
        return (self.kind, self.name)


@dataclass
class Snapshot:
    """Every object of one database, and the column order of each table."""

    objects: dict[Key, DbObject] = field(default_factory=dict)
    column_order: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def add(self, kind: str, name: str, definition: str, parent: Key | None = None) -> None:
        self.objects[(kind, name)] = DbObject(kind, name, definition, parent)


USER_SCHEMA = (
    "{n}.nspname <> 'information_schema' AND {n}.nspname !~ '^pg_'"
    " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass"
    " AND d.objid = {n}.oid AND d.deptype = 'e')"
)


def _user(alias: str, catalog: str, oid: str) -> str:
    """An object in a user schema that no extension owns."""
    return (
        USER_SCHEMA.format(n="n")
        + f" AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass"
        f" AND e.objid = {alias}.{oid} AND e.deptype = 'e')"
    )


def _acl(acl: str, owner: str, objtype: str) -> str:
    """Privileges without the owner's own: ``role: PRIV, PRIV; role2: ...`` ('' when none)."""
    return (
        "(SELECT coalesce(string_agg(g.who || ': ' || g.privs, '; ' ORDER BY g.who), '') FROM"
        " (SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END"
        " AS who, string_agg(x.privilege_type || CASE WHEN x.is_grantable"
        " THEN ' WITH GRANT OPTION' ELSE '' END, ', ' ORDER BY x.privilege_type) AS privs"
        f" FROM aclexplode(coalesce({acl}, acldefault('{objtype}', {owner}))) x"
        f" WHERE x.grantee <> {owner} GROUP BY 1) g)"
    )


SCHEMAS = f"""
SELECT quote_ident(n.nspname), {_acl("n.nspacl", "n.nspowner", "n")}
FROM pg_namespace n WHERE {USER_SCHEMA.format(n="n")}
"""

EXTENSIONS = """
SELECT x.extname, x.extversion, n.nspname
FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
"""

COLLATIONS = f"""
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.collname),
       'provider ' || CASE c.collprovider WHEN 'i' THEN 'icu' WHEN 'c' THEN 'libc'
           ELSE 'default' END
       || ', locale ' || coalesce(c.colliculocale, c.collcollate, '')
       || CASE WHEN c.collisdeterministic THEN '' ELSE ', nondeterministic' END
FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
WHERE {_user("c", "pg_collation", "oid")}
"""

TYPES = f"""
SELECT t.typtype, t.oid::regtype::text,
       CASE t.typtype
         WHEN 'e' THEN 'ENUM (' || (SELECT string_agg(quote_literal(e.enumlabel), ', '
                                   ORDER BY e.enumsortorder)
                                   FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
         WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)
                       || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                       || coalesce(' DEFAULT ' || t.typdefault, '')
         WHEN 'c' THEN '(' || (SELECT string_agg(quote_ident(a.attname) || ' '
                               || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                               FROM pg_attribute a WHERE a.attrelid = t.typrelid
                               AND a.attnum > 0 AND NOT a.attisdropped) || ')'
         ELSE 'type ' || t.typtype::text END,
       {_acl("t.typacl", "t.typowner", "T")}
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'c', 'r', 'm')
  AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  AND {_user("t", "pg_type", "oid")}
"""

RELATIONS = f"""
SELECT c.oid::regclass::text, c.relkind,
       CASE c.relpersistence WHEN 'u' THEN 'unlogged ' ELSE '' END
         || CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table'
              WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END
         || coalesce(' PARTITION BY ' || pg_get_partkeydef(c.oid), '')
         || coalesce(' PARTITION OF ' || (SELECT i.inhparent::regclass::text FROM pg_inherits i
              WHERE i.inhrelid = c.oid LIMIT 1) || ' ' || pg_get_expr(c.relpartbound, c.oid), '')
         || coalesce(' WITH (' || array_to_string(c.reloptions, ', ') || ')', '')
         || CASE WHEN c.relkind IN ('v', 'm') THEN ': ' || pg_get_viewdef(c.oid) ELSE '' END,
       CASE WHEN c.relrowsecurity THEN 'enabled' ELSE 'disabled' END
         || CASE WHEN c.relforcerowsecurity THEN ', forced' ELSE ', not forced' END,
       {_acl("c.relacl", "c.relowner", "r")}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND {_user("c", "pg_class", "oid")}
"""

COLUMNS = f"""
SELECT c.oid::regclass::text, quote_ident(a.attname),
       format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
              THEN ' COLLATE ' || (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                   FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                   WHERE co.oid = a.attcollation) ELSE '' END
         || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
         || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
              WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
         || CASE WHEN a.attgenerated = 's'
              THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'
              ELSE coalesce(' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid), '') END,
       CASE WHEN a.attacl IS NULL THEN '' ELSE {_acl("a.attacl", "c.relowner", "c")} END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  AND {_user("c", "pg_class", "oid")}
ORDER BY c.oid, a.attnum
"""

CONSTRAINTS = f"""
SELECT coalesce(c.oid::regclass::text, k.contypid::regtype::text), k.contypid <> 0,
       quote_ident(k.conname), pg_get_constraintdef(k.oid)
FROM pg_constraint k
JOIN pg_namespace n ON n.oid = k.connamespace
LEFT JOIN pg_class c ON c.oid = k.conrelid
WHERE (k.conrelid <> 0 OR k.contypid <> 0) AND {_user("k", "pg_constraint", "oid")}
"""

INDEXES = f"""
SELECT x.indrelid::regclass::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       pg_get_indexdef(c.oid) || CASE WHEN x.indisvalid THEN '' ELSE ' (INVALID)' END
FROM pg_index x
JOIN pg_class c ON c.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_user("c", "pg_class", "oid")}
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid
                  AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x'))
"""

TRIGGERS = f"""
SELECT g.tgrelid::regclass::text, quote_ident(g.tgname),
       pg_get_triggerdef(g.oid) || ' [' || CASE g.tgenabled WHEN 'O' THEN 'enabled'
         WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'enabled on replica only'
         WHEN 'A' THEN 'enabled always' END || ']'
FROM pg_trigger g
JOIN pg_class c ON c.oid = g.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT g.tgisinternal AND {_user("c", "pg_class", "oid")}
"""

FUNCTIONS = f"""
SELECT quote_ident(n.nspname) || '.' || quote_ident(p.proname)
         || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       CASE WHEN p.prokind = 'a'
         THEN 'AGGREGATE RETURNS ' || format_type(p.prorettype, NULL)
         ELSE pg_get_functiondef(p.oid) END,
       {_acl("p.proacl", "p.proowner", "f")}
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_user("p", "pg_proc", "oid")}
"""

SEQUENCES = f"""
SELECT c.oid::regclass::text,
       'AS ' || format_type(s.seqtypid, NULL) || ' START ' || s.seqstart
         || ' INCREMENT ' || s.seqincrement || ' MINVALUE ' || s.seqmin
         || ' MAXVALUE ' || s.seqmax || ' CACHE ' || s.seqcache
         || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END
         || coalesce(' OWNED BY ' || d.refobjid::regclass::text || '.'
              || quote_ident(a.attname), ''),
       d.refobjid::regclass::text,
       {_acl("c.relacl", "c.relowner", "s")}
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE {_user("c", "pg_class", "oid")}
"""

POLICIES = f"""
SELECT p.polrelid::regclass::text, quote_ident(p.polname),
       'AS ' || CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END
         || ' FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
              WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END
         || ' TO ' || (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC'
              ELSE quote_ident(pg_get_userbyid(r)) END, ', ' ORDER BY 1)
              FROM unnest(p.polroles) r)
         || coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
         || coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '')
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_user("c", "pg_class", "oid")}
"""

# The role that runs the migrations (the owner of the tracking table; without one, the
# session's user): its default privileges are named without it, so that a shadow
# replayed by another user (a container's superuser) compares ownership-free.
MIGRATION_ROLE = """coalesce(
    (SELECT c.relowner FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
      WHERE c.relname = 'schema_migrations' AND c.relkind IN ('r', 'p')
      ORDER BY ns.nspname = 'public' DESC LIMIT 1),
    (SELECT oid FROM pg_roles WHERE rolname = current_user))"""

DEFAULT_PRIVILEGES = f"""
SELECT CASE WHEN d.defaclrole = {MIGRATION_ROLE}
         THEN '' ELSE 'for role ' || pg_get_userbyid(d.defaclrole) || ' ' END
       || coalesce('in schema ' || n.nspname || ' ', '')
       || 'on ' || CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences'
            WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' ELSE 'schemas' END,
       {_acl("d.defaclacl", "d.defaclrole", "r")}
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
"""

TYPE_KINDS = {"e": "enum", "d": "domain"}


def _rows(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query)
        return cur.fetchall()


def _privileges(snap: Snapshot, owner: tuple[str, str], acl: str) -> None:
    """Non-owner privileges, only when there are any (an extra grant then shows as +)."""
    if acl:
        snap.add("privileges", f"{owner[0]} {owner[1]}", acl, owner)


def read(conn: psycopg.Connection[Any]) -> Snapshot:
    """The schema of ``conn``'s database (call inside a read-only transaction)."""
    conn.execute("SET LOCAL search_path = pg_catalog")
    snap = Snapshot()
    for name, acl in _rows(conn, SCHEMAS):
        snap.add("schema", name, "schema")
        _privileges(snap, ("schema", name), acl)
    for name, version, schema in _rows(conn, EXTENSIONS):
        snap.add("extension", name, f"version {version} in schema {schema}")
    for name, definition in _rows(conn, COLLATIONS):
        snap.add("collation", name, definition)
    for typtype, name, definition, acl in _rows(conn, TYPES):
        kind = TYPE_KINDS.get(typtype, "type")
        snap.add(kind, name, definition)
        _privileges(snap, (kind, name), acl)
    _read_relations(conn, snap)
    for table, is_domain, name, definition in _rows(conn, CONSTRAINTS):
        parent: Key = ("domain", table) if is_domain else _relation_key(snap, table)
        snap.add("constraint", f"{table}.{name}", definition, parent)
    for table, name, definition in _rows(conn, INDEXES):
        snap.add("index", name, definition, _relation_key(snap, table))
    for table, name, definition in _rows(conn, TRIGGERS):
        snap.add("trigger", f"{table}.{name}", definition, _relation_key(snap, table))
    for name, definition, acl in _rows(conn, FUNCTIONS):
        snap.add("function", name, definition)
        _privileges(snap, ("function", name), acl)
    for name, definition, owner, acl in _rows(conn, SEQUENCES):
        snap.add("sequence", name, definition, _relation_key(snap, owner) if owner else None)
        _privileges(snap, ("sequence", name), acl)
    for table, name, definition in _rows(conn, POLICIES):
        snap.add("policy", f"{table}.{name}", definition, _relation_key(snap, table))
    for name, acl in _rows(conn, DEFAULT_PRIVILEGES):
        snap.add("privileges", f"default {name}", acl or "none")
    return snap


def _relation_key(snap: Snapshot, name: str) -> Key:
    view = ("view", name)
    return view if view in snap.objects else ("table", name)


def _read_relations(conn: psycopg.Connection[Any], snap: Snapshot) -> None:
    for name, relkind, definition, security, acl in _rows(conn, RELATIONS):
        kind = "view" if relkind in {"v", "m"} else "table"
        snap.add(kind, name, definition)
        if kind == "table":
            snap.add("row security", name, security, (kind, name))
        _privileges(snap, (kind, name), acl)
    order: dict[str, list[str]] = {}
    for table, column, definition, acl in _rows(conn, COLUMNS):
        name = f"{table}.{column}"
        snap.add("column", name, definition, ("table", table))
        order.setdefault(table, []).append(column)
        _privileges(snap, ("column", name), acl)
    snap.column_order = {table: tuple(columns) for table, columns in order.items()}
