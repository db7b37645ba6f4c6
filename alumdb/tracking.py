"""The one owner of ``schema_migrations`` and ``schema_migrations_audit``.

Every read and write of the tracking tables goes through here: their DDL (the
upgrade of a table made by an older 001 or by hand from the spec), reading the
applied rows, recording a file, adopting rows the compose loop wrote without a
checksum, accepting an edited file's checksum. The tables are always addressed by
schema-qualified name, so nothing a migration does to ``search_path`` can make the
runner read or write another schema's table.

The schema is the one a fresh session finds the table in (or would create it in:
``current_schema()``), read by :func:`locate` before any file runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from alumdb.catalog import Migration

TRACKING_TABLE = "schema_migrations"
AUDIT_TABLE = "schema_migrations_audit"
# schema_migrations.version is VARCHAR(16): a longer version could not be recorded.
VERSION_MAX_LENGTH = 16
# The tracking columns this version of the runner needs, as 001_init.sql creates them.
NEEDED_COLUMNS = frozenset({"checksum", "duration_ms", "applied_by"})

# The same statements as 001_init.sql's upgrade path for the tracking table (a test
# compares the two): the columns the runner needs, their checks, the audit table.
_UPGRADE = """
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS checksum CHAR(64);
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS duration_ms INTEGER;
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS applied_by TEXT NOT NULL DEFAULT current_user;
DO $alumdb$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_constraint
        WHERE conname = 'ck_schema_migrations_checksum' AND conrelid = {regclass}::regclass
    ) THEN
        ALTER TABLE {table}
            ADD CONSTRAINT ck_schema_migrations_checksum CHECK (checksum ~ '^[0-9a-f]{{64}}$');
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_constraint
        WHERE conname = 'ck_schema_migrations_duration_ms' AND conrelid = {regclass}::regclass
    ) THEN
        ALTER TABLE {table}
            ADD CONSTRAINT ck_schema_migrations_duration_ms CHECK (duration_ms >= 0);
    END IF;
END $alumdb$;
CREATE TABLE IF NOT EXISTS {audit} (
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    version      VARCHAR(16) NOT NULL,
    event        TEXT NOT NULL,
    old_checksum CHAR(64),
    new_checksum CHAR(64),
    reason       TEXT,
    actor        TEXT NOT NULL DEFAULT current_user,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_schema_migrations_audit PRIMARY KEY (id),
    CONSTRAINT ck_schema_migrations_audit_event CHECK (event IN ('adopted', 'checksum_accepted'))
);
"""


@dataclass(frozen=True)
class AppliedRow:
    """One row of ``schema_migrations``."""

    version: str
    name: str
    executed_at: datetime | None
    checksum: str | None
    duration_ms: int | None

    @property
    def number(self) -> int | None:
        return int(self.version) if self.version.isdigit() else None


@dataclass(frozen=True)
class Tracking:
    """The tracking tables of one database, in ``schema``."""

    schema: str

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(self.schema, TRACKING_TABLE)

    @property
    def audit(self) -> sql.Identifier:
        return sql.Identifier(self.schema, AUDIT_TABLE)

    @property
    def qualified(self) -> str:
        """``schema.schema_migrations`` as SQL text (quoted where needed)."""
        return self.table.as_string(None)

    def oid_query(self) -> sql.Composed:
        """The table's oid from ``pg_class`` with the statement's snapshot (no row: none yet).

        Not ``to_regclass()``: it answers from the backend's catalog cache, which still
        says "no such table" after another run created it while this one waited for
        the lock (no relation lock was taken since, so the invalidation is pending).
        """
        return sql.SQL(
            "SELECT c.oid FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = {name} AND n.nspname = {schema}"
        ).format(name=sql.Literal(TRACKING_TABLE), schema=sql.Literal(self.schema))

    def exists(self, conn: psycopg.Connection[Any]) -> bool:
        return conn.execute(self.oid_query()).fetchone() is not None

    def columns(self, conn: psycopg.Connection[Any]) -> set[str]:
        """The columns of the table (empty when it does not exist)."""
        rows = conn.execute(
            "SELECT a.attname FROM pg_catalog.pg_attribute a"
            " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = %s AND n.nspname = %s AND a.attnum > 0 AND NOT a.attisdropped",
            (TRACKING_TABLE, self.schema),
        ).fetchall()
        return {str(row[0]) for row in rows}

    def read(
        self, conn: psycopg.Connection[Any], columns: set[str] | None = None
    ) -> list[AppliedRow]:
        """Every row; tolerates the spec's three-column table."""
        columns = self.columns(conn) if columns is None else columns
        if not columns:
            return []
        optional = [
            sql.Identifier(c) if c in columns else sql.SQL("NULL")
            for c in ("checksum", "duration_ms")
        ]
        query = sql.SQL(
            "SELECT version::text, name::text, executed_at, {}::text, {}::int FROM {}"
        ).format(*optional, self.table)
        with conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(query)
            return [
                AppliedRow(
                    version=str(v).strip(),
                    name=str(n),
                    executed_at=e,
                    checksum=str(c).strip() if c else None,
                    duration_ms=d,
                )
                for v, n, e, c, d in cur.fetchall()
            ]

    def upgrade_sql(self) -> sql.Composed:
        return sql.SQL(_UPGRADE).format(
            table=self.table, audit=self.audit, regclass=sql.Literal(self.qualified)
        )

    def upgrade(self, conn: psycopg.Connection[Any]) -> None:
        """Add what an older table lacks (in the caller's transaction)."""
        conn.execute(self.upgrade_sql())

    def applied_among(self, conn: psycopg.Connection[Any], versions: list[str]) -> dict[str, str]:
        """``{version: checksum}`` of the ``versions`` recorded by now."""
        if not self.exists(conn):
            return {}
        checksum = (
            sql.SQL("checksum::text") if "checksum" in self.columns(conn) else sql.SQL("NULL::text")
        )
        rows = conn.execute(
            sql.SQL("SELECT version::text, {} FROM {} WHERE version = ANY (%s)").format(
                checksum, self.table
            ),
            (versions,),
        ).fetchall()
        return {str(v).strip(): str(c or "").strip() for v, c in rows}

    def record(self, conn: psycopg.Connection[Any], migration: Migration, seconds: float) -> None:
        """Record ``migration`` with its checksum and duration (a no-transaction file)."""
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (version) DO UPDATE"
                " SET checksum = EXCLUDED.checksum, duration_ms = EXCLUDED.duration_ms"
            ).format(self.table),
            (migration.version, migration.name, migration.checksum, round(seconds * 1000)),
        )

    def adopt(self, conn: psycopg.Connection[Any], migrations: list[Migration]) -> list[Migration]:
        """Record the checksums of files applied without one; return those adopted."""
        adopted = []
        with conn.cursor() as cur:
            for m in migrations:
                cur.execute(
                    sql.SQL(
                        "UPDATE {} SET checksum = %s WHERE version = %s AND checksum IS NULL"
                    ).format(self.table),
                    (m.checksum, m.version),
                )
                if cur.rowcount:
                    self._audit(cur, m, event="adopted", old=None, reason=ADOPTED_REASON)
                    adopted.append(m)
        return adopted

    def accept(
        self, conn: psycopg.Connection[Any], migration: Migration, old: str | None, reason: str
    ) -> None:
        """Record the file's current checksum and name, logged with ``reason``."""
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("UPDATE {} SET checksum = %s, name = %s WHERE version = %s").format(
                    self.table
                ),
                (migration.checksum, migration.name, migration.version),
            )
            self._audit(cur, migration, event="checksum_accepted", old=old, reason=reason)

    def _audit(
        self,
        cur: psycopg.Cursor[Any],
        migration: Migration,
        *,
        event: str,
        old: str | None,
        reason: str,
    ) -> None:
        """Log a change of ``migration``'s recorded checksum in the audit table."""
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (version, event, old_checksum, new_checksum, reason)"
                " VALUES (%s, %s, %s, %s, %s)"
            ).format(self.audit),
            (migration.version, event, old, migration.checksum, reason),
        )


ADOPTED_REASON = "applied without a checksum; recorded the file's"


def locate(conn: psycopg.Connection[Any]) -> Tracking:
    """The tracking tables as this session finds them by ``search_path`` (call it on a
    fresh session), or where it would create them (``current_schema()``)."""
    row = conn.execute(
        "SELECT n.nspname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = %s AND n.nspname = ANY (current_schemas(false))"
        " ORDER BY array_position(current_schemas(false), n.nspname) LIMIT 1",
        (TRACKING_TABLE,),
    ).fetchone()
    if row is not None:
        return Tracking(str(row[0]))
    current = conn.execute("SELECT current_schema()").fetchone()
    return Tracking(str(current[0]) if current and current[0] else "public")


def read_applied(
    conn: psycopg.Connection[Any], columns: set[str] | None = None
) -> list[AppliedRow]:
    """Every row of the tracking table this session finds."""
    return locate(conn).read(conn, columns)
