"""The tenant id a person types (`invoke psql --tenant`), checked before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from alumdb import tenancy
from alumdb.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
TENANT = uuid.UUID("2f1c9a0e-5b7d-4c3e-9f61-0a8b7c6d5e4f")


@pytest.mark.parametrize(
    "typed",
    [str(TENANT), str(TENANT).upper(), f"{{{TENANT}}}", TENANT.hex, f"  {TENANT}\n"],
    ids=["canonical", "upper-case", "braces", "no-hyphens", "surrounding-space"],
)
def test_any_spelling_of_a_uuid_is_accepted_and_normalised(typed: str) -> None:
    assert tenancy.parse_tenant(typed) == TENANT
    options = tenancy.session_options(tenancy.parse_tenant(typed))
    assert options == f"-c role=alumoutreach_app -c app.tenant_id={TENANT}"


@pytest.mark.parametrize(
    "typed", ["", "acme", "2f1c9a0e-5b7d-4c3e-9f61", f"{TENANT} x", "-c role=postgres"]
)
def test_anything_else_is_a_usage_error(typed: str) -> None:
    with pytest.raises(UsageError) as refused:
        tenancy.parse_tenant(typed)
    assert str(refused.value).startswith(f"--tenant {typed!r}: not a UUID")
    assert refused.value.exit_code == 2


def test_psql_refuses_a_bad_tenant_before_touching_docker() -> None:
    """A dead DOCKER_HOST would fail with exit 4: exit 2 proves the check comes first."""
    environ = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "psql", "--tenant", "acme"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --tenant 'acme': not a UUID; pass the tenant's id (tenants.id), "
        f"e.g. --tenant {tenancy.EXAMPLE_TENANT}"
    ]
    assert "Traceback" not in result.stderr
