"""Start-up: `invoke --list` and the light tasks do not load what only one task needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each is loaded by the one task that needs it (or by nothing at start-up at all).
ONE_TASK_ONLY = (
    "alumdb.seed.load",  # seed: the generators and COPY
    "faker",  # seed
    "alumdb.lint",  # lint
    "pglast",  # lint, drift
    "alumdb.diagram",  # erd
    "alumdb.replay",  # drift
    "alumdb.schema_dump",  # schema
    "alumdb.verify",  # verify
    "alumdb.scaffold",  # new-migration
    "alumdb.tenancy",  # psql
    "docker",  # whatever talks to the Docker Engine, when it does
)


def test_importing_tasks_loads_no_module_only_one_task_needs() -> None:
    probe = (
        f"import sys, tasks; print('\\n'.join(m for m in {ONE_TASK_ONLY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_the_seed_package_loads_its_generator_on_first_use() -> None:
    probe = (
        "import sys, alumdb.seed as s; before = 'alumdb.seed.load' in sys.modules; "
        "s.TABLES; print(before, 'alumdb.seed.load' in sys.modules, 'faker' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.stdout.split() == ["False", "True", "False"], result.stderr
