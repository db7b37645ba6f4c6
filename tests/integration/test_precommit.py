"""The pre-commit hooks run in a temporary copy of the working tree, offline, and pass;
a broken migration makes them fail. The pre-push stage (migrate, then the diagram check)
runs against a scratch compose project, never the developer's database."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from alumdb import environment
from tests.conftest import PgServer
from tests.helpers import ROOT

pytestmark = pytest.mark.slow
SKIP = shutil.ignore_patterns(
    ".venv", ".nox", ".git", "build", "__pycache__", ".mypy_cache", ".ruff_cache", "*.egg-info"
)


def _clone(tmp_path: Path) -> Path:
    """The working tree as a fresh repository, sharing this checkout's .venv."""
    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=SKIP)
    (clone / ".venv").symlink_to(ROOT / ".venv")
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=clone, check=True, capture_output=True)
    return clone


def _pre_commit(clone: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "pre-commit"), "run", "--all-files", *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def _offline_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRE_COMMIT")}
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    # Nothing may be fetched: an unreachable proxy for every protocol.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = "http://127.0.0.1:9"
    return env


def test_pre_commit_hooks_pass_offline_and_catch_a_bad_migration(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    env = _offline_env(tmp_path)
    result = _pre_commit(clone, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    for hook in ("ruff check", "ruff format", "mypy", "invoke lint", "template"):
        assert hook in result.stdout, result.stdout

    (clone / "migrations" / "012_bad.sql").write_text("DROP TABLE contacts;\n", encoding="utf-8")
    subprocess.run(["git", "add", "-A"], cwd=clone, check=True, capture_output=True)
    failed = _pre_commit(clone, env=env)
    assert failed.returncode != 0
    assert "012_bad.sql" in failed.stdout
    assert "non-destructive" in failed.stdout


@pytest.mark.docker
def test_pre_push_checks_the_diagram_on_a_scratch_database(
    tmp_path: Path, pg_server: PgServer
) -> None:
    del pg_server  # the image and compose plugin are ready
    clone = _clone(tmp_path)
    settings = environment.scratch_settings("alumdbhook")
    env = {**_offline_env(tmp_path), **settings}
    try:
        result = _pre_commit(clone, "--hook-stage", "pre-push", "erd-stale", env=env)
    finally:
        environment.down(environment.resolve("dev", clone, settings), volumes=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "schema diagram up to date" in result.stdout
