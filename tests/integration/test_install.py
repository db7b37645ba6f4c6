"""A clean install: ``pip install .`` (not editable) into a new virtualenv gives a working
engine, with its data files and nothing of the checkout's tooling."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.helpers import MIGRATIONS, ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )


def test_pip_install_then_invoke_list_and_migrate(tmp_path: Path, fresh_db: str) -> None:
    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    # A copy of the checkout, so the install cannot pick up build leftovers or .venv.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".nox", ".git", "build"))
    pip = (venv / "bin" / "pip", "--disable-pip-version-check", "install", "--quiet")
    installed = _run(*pip, source, cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "warning" not in installed.stderr.lower(), installed.stderr  # a clean build

    # A project that uses the installed engine: tasks.py, migrations/, compose files; no
    # alumdb/ folder beside it that could shadow the installed package.
    project = tmp_path / "project"
    project.mkdir()
    for name in ("tasks.py", "docker-compose.dev.yml", "docker-compose.prod.yml", ".squawk.toml"):
        shutil.copy(ROOT / name, project)
    shutil.copytree(MIGRATIONS, project / "migrations")
    python = venv / "bin" / "python"
    where = _run(python, "-c", "import alumdb, importlib.util as u; "
                 "print(alumdb.__file__); print(u.find_spec('tools'))", cwd=project)  # fmt: skip
    assert where.returncode == 0, where.stderr
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    package = site / "site-packages" / "alumdb"
    # The installed engine, and no tools/: it stays in the checkout.
    assert where.stdout.splitlines() == [str(package / "__init__.py"), "None"]
    assert (package / "py.typed").is_file()
    assert (package / "lint" / "rules" / "naming.py").is_file()

    listed = _run(venv / "bin" / "invoke", "--list", cwd=project)
    assert listed.returncode == 0, listed.stderr
    for task in ("migrate", "status", "new-migration", "lint", "erd", "verify"):
        assert f"  {task}" in listed.stdout, listed.stdout

    migrated = _run(venv / "bin" / "invoke", "migrate", "--database-url", fresh_db, cwd=project)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    count = len(list(MIGRATIONS.glob("[0-9]*.sql")))
    assert f"done: {count} applied" in migrated.stdout, migrated.stdout
    with psycopg.connect(fresh_db) as conn:
        rows = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    assert rows == (count,)
