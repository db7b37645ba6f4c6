"""scripts/prepare_docker.py is idempotent: with everything in place it changes nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alumdb import environment
from tests.conftest import PgServer, Pooler
from tests.helpers import ROOT
from tools import provision

pytestmark = pytest.mark.docker


def image_ids() -> dict[str, str]:
    client = environment.docker_client()
    names = (provision.configured_image(), provision.POOLER_IMAGE)
    return {name: str(client.images.get(name).id) for name in names}


def test_second_run_builds_nothing(pg_server: PgServer, pooler: Pooler) -> None:
    """The session's fixtures made both images; the program finds them and says so."""
    before = image_ids()
    result = subprocess.run(
        [sys.executable, "scripts/prepare_docker.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"image {provision.configured_image()}: already present, nothing to do",
        f"image {provision.POOLER_IMAGE}: already present, nothing to do",
        "docker compose v2: already available, nothing to do",
    ]
    assert image_ids() == before
