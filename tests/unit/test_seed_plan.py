"""invoke seed without a database: options, sizes, deterministic generation, bad input."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from alumdb import seed
from alumdb.errors import UsageError
from alumdb.seed import gen, people, tables

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)


def rows(seed_value: int, index: int = 1) -> dict[str, list[tuple[object, ...]]]:
    options = seed.options(2, "small", contacts=50, seed=seed_value, anchor=ANCHOR)
    perms: dict[str, object] = {key: f"perm-{key}" for key in people.PERMISSIONS}
    ctx = seed.generate(options, index, gen.make_pools(seed_value, 60), perms)
    return {name: table.rows for name, table in ctx.tables.items()}


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    first, again = rows(3), rows(3)
    assert first == again
    assert rows(4)["contacts"] != first["contacts"]
    assert rows(3, index=2)["contacts"] != first["contacts"]


def test_every_table_gets_rows_and_each_row_fits_its_columns() -> None:
    options = seed.options(1, "small", contacts=80, seed=1, anchor=ANCHOR)
    ctx = seed.generate(options, 1, gen.make_pools(1, 60), dict.fromkeys(
        people.PERMISSIONS, "p"))  # fmt: skip
    assert set(ctx.tables) == set(seed.TABLES)
    for name, table in ctx.tables.items():
        assert table.rows, name
        assert table.columns[0] == "tenant_id"
        assert {len(r) for r in table.rows} == {len(table.columns)}, name
        assert {r[0] for r in table.rows} == {gen.tenant_id(1, 1)}, name
    statuses = {r[ctx.tables["pipeline_jobs"].columns.index("status")]
                for r in ctx.tables["pipeline_jobs"].rows}  # fmt: skip
    assert statuses == {"pending", "processing", "completed", "failed", "retrying"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tenants": 0}, "--tenants 0"),
        ({"tenants": 1, "preset": "huge"}, "--size 'huge': unknown preset"),
        ({"tenants": 1, "contacts": 0}, "--contacts 0"),
        ({"tenants": 1, "seed": -1}, "--seed -1"),
    ],
)
def test_bad_options_are_one_line_usage_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")) as info:
        seed.options(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--env", "prod"], 11, "--env prod"),
        (["--size", "huge"], 2, "--size 'huge'"),
        (["--contacts", "lots"], 2, "--contacts 'lots'"),
        (["--tenants", "0"], 2, "--tenants 0"),
    ],
)
def test_task_refuses_bad_input_before_touching_anything(
    args: list[str], code: int, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "seed", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "tcp://127.0.0.1:1"},
    )  # fmt: skip
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_each_table_is_declared_once_and_copied_once() -> None:
    assert len(set(tables.NAMES)) == len(tables.ALL) == len(seed.TABLES)
    assert seed.TABLES == tables.NAMES
    for spec in tables.ALL:
        assert "tenant_id" not in spec.columns, spec.name  # Ctx.table puts it first
        assert len(set(spec.columns)) == len(spec.columns), spec.name
