"""The tracking table has one owner (alumdb.tracking): its upgrade DDL must leave an
older table exactly as 001_init.sql's own upgrade path does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from alumdb import tracking
from tests.conftest import PgServer
from tests.helpers import MIGRATIONS

pytestmark = pytest.mark.docker

# schema_migrations as an older 001 made it: the spec's three columns.
OLDER_TABLE = """
CREATE COLLATION IF NOT EXISTS "numeric" (provider = icu, locale = 'und-u-kn-true');
CREATE TABLE schema_migrations (
    version     VARCHAR(16) COLLATE "numeric" NOT NULL,
    name        VARCHAR(255) NOT NULL,
    executed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_schema_migrations PRIMARY KEY (version),
    CONSTRAINT ck_schema_migrations_version CHECK (version ~ '^[0-9]{3,}$')
);
"""


def table_dump(pg_server: PgServer, url: str) -> str:
    dbname = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    result = pg_server.exec(
        "pg_dump", "--schema-only", "--no-owner", "-U", pg_server.endpoint.user, "-d", dbname,
        "-t", "public.schema_migrations", "-t", "public.schema_migrations_audit",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    return "\n".join(
        line
        for line in result.stdout.decode().splitlines()
        if not line.startswith("\\restrict")
        and not line.startswith("\\unrestrict")
        and not line.startswith("-- Dumped")
    )


def test_runner_upgrade_equals_001_upgrade(
    pg_server: PgServer, fresh_db: str, apply_files: Callable[[str, list[Path]], None]
) -> None:
    """001's DDL and alumdb.tracking's upgrade, each applied to an older table, leave
    the same tracking and audit tables (columns, defaults, named checks). Before, the
    runner's upgrade lacked 001's checks."""
    by_runner = pg_server.url(pg_server.create_database())
    try:
        for url in (fresh_db, by_runner):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(OLDER_TABLE)
        apply_files(fresh_db, [MIGRATIONS / "001_init.sql"])
        with psycopg.connect(by_runner) as conn:
            tracking.locate(conn).upgrade(conn)
        assert table_dump(pg_server, by_runner) == table_dump(pg_server, fresh_db)
    finally:
        pg_server.drop_database(str(psycopg.conninfo.conninfo_to_dict(by_runner)["dbname"]))
