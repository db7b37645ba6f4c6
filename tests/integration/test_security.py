"""Secrets stay secret, prod needs a real password, and tenants cannot reach each other."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pg_errors

from alumdb import environment
from alumdb.tenancy import APP_ROLE
from tests.conftest import PgServer
from tests.helpers import ROOT, migration_sql, write_folder

pytestmark = pytest.mark.docker

Invoke = Callable[..., subprocess.CompletedProcess[str]]


def test_prod_compose_refuses_to_run_without_a_password(pg_server: PgServer) -> None:
    del pg_server  # compose is installed once the session server is up
    environ = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    command = [*environment.compose_command(), "-f", "docker-compose.prod.yml", "config"]
    result = subprocess.run(
        command, cwd=ROOT, env=environ, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD must be set" in result.stderr
    with_password = subprocess.run(
        command, cwd=ROOT, env={**environ, "POSTGRES_PASSWORD": "x"}, capture_output=True,
        check=False,
    )  # fmt: skip
    assert with_password.returncode == 0


def command_lines() -> list[str]:
    """The arguments of every process on this machine (as /proc shows them to anyone)."""
    lines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue  # the process ended meanwhile
    return lines


def test_no_password_in_process_arguments_or_output(
    pg_server: PgServer, tmp_path: Path, run_invoke: Invoke
) -> None:
    """`invoke up`, then `invoke migrate` with a slow file so that it can be watched.

    The URL comes in DATABASE_URL, as it should: a password typed as an argument is
    visible to every user of the machine before any code of ours runs.
    """
    folder = write_folder(
        tmp_path / "migrations",
        {"002_slow.sql": migration_sql("002", "slow", "SELECT pg_sleep(3);")},
    )
    dbname = pg_server.create_database()
    try:
        environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        environ.update(pg_server.environ)
        environ["DATABASE_URL"] = pg_server.url(dbname)
        seen: list[str] = []
        for args in (["up", "--env", "dev"], ["migrate", "--migrations", str(folder)]):
            proc = subprocess.Popen(
                [sys.executable, "-m", "invoke", *args],
                cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            while proc.poll() is None:
                seen += command_lines()
                time.sleep(0.05)
            out, err = proc.communicate()
            assert proc.returncode == 0, err
            seen += [out, err]
        assert any("invoke migrate" in line for line in seen)  # we did watch it run
        leaks = [line for line in seen if pg_server.password in line]
        assert leaks == []
    finally:
        pg_server.drop_database(dbname)


@pytest.fixture
def app_role(pg_server: PgServer, migrated_db: str) -> Iterator[str]:
    """A login role that is not the owner: the application's, a member of alumoutreach_app."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE {APP_ROLE}")
    try:
        yield migrated_db.replace(
            f"{pg_server.endpoint.user}:{pg_server.password}", f"{role}:{password}"
        )
    finally:
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_non_owner_cannot_reference_another_tenants_row(app_role: str) -> None:
    """Row-level security hides B's contact from A, and the composite key refuses it too:
    the key's check runs below the policies (as PostgreSQL's referential checks do)."""
    tenant = "SELECT set_config('app.tenant_id', %s, true)"
    with psycopg.connect(app_role) as conn:
        tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
        for tenant_id, name in ((tenant_a, "Alpha University"), (tenant_b, "Beta College")):
            conn.execute(tenant, (str(tenant_id),))  # a new tenant: its id is set first
            conn.execute(
                "INSERT INTO tenants (id, slug, name) VALUES (%s, %s, %s)",
                (tenant_id, f"t-{uuid.uuid4().hex[:8]}", name),
            )
            conn.commit()
        conn.execute(tenant, (str(tenant_b),))
        contact_b = conn.execute(
            "INSERT INTO contacts (tenant_id, email) VALUES (%s, %s) RETURNING id",
            (tenant_b, "grad@beta.example"),
        ).fetchone()[0]  # type: ignore[index]
        conn.commit()

        superuser = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        assert conn.execute(superuser).fetchone() == (False,)
        conn.execute(tenant, (str(tenant_a),))
        with pytest.raises(pg_errors.ForeignKeyViolation) as refused:
            conn.execute(
                "INSERT INTO contact_tags (tenant_id, contact_id, tag) VALUES (%s, %s, %s)",
                (tenant_a, contact_b, "class-of-2020"),
            )
        assert refused.value.diag.constraint_name == "fk_contact_tags_contact"
        conn.rollback()

        conn.execute(tenant, (str(tenant_b),))
        conn.execute(
            "INSERT INTO contact_tags (tenant_id, contact_id, tag) VALUES (%s, %s, %s)",
            (tenant_b, contact_b, "class-of-2020"),
        )  # the same row for its own tenant is fine
        conn.commit()
