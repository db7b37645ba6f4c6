"""Exit codes: one list in the engine (ExitCode), the same numbers in README.md's table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alumdb import errors
from alumdb.errors import AlumdbError, ExitCode

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_exit_codes() -> dict[int, str]:
    """The rows of README.md's exit-code table: ``| code | meaning |``."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("Exit codes") : text.index("## Which database")]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.MULTILINE)
    return {int(code): meaning for code, meaning in rows}


def error_classes() -> list[type[AlumdbError]]:
    found = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, AlumdbError)
    ]
    assert len(found) > 10
    return found


def test_readme_table_lists_exactly_the_exit_codes() -> None:
    assert sorted(readme_exit_codes()) == sorted(ExitCode)


def test_every_error_ends_with_a_documented_exit_code() -> None:
    documented = readme_exit_codes()
    for cls in error_classes():
        assert isinstance(cls.exit_code, ExitCode), cls
        assert cls.exit_code in documented, cls
        assert cls.exit_code != ExitCode.OK, cls


def test_every_failing_exit_code_has_an_error() -> None:
    """Each non-zero code is raised by some error class (no number only a task knows)."""
    used = {cls.exit_code for cls in error_classes()}
    assert set(ExitCode) - used == {ExitCode.OK}


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.UsageError, 2),
        (errors.ScaffoldError, 2),  # inherited from UsageError
        (errors.DockerUnavailableError, 4),  # inherited from EnvironmentFailure
        (errors.LockWaitTimeout, 7),  # inherited from MigrationFailed
        (errors.SeedError, 11),
        (errors.Interrupted, 130),
    ],
)
def test_class_keyword_sets_the_code_and_subclasses_inherit_it(
    cls: type[AlumdbError], code: int
) -> None:
    assert cls.exit_code == code
    assert cls("x").exit_code == code


def test_a_subclass_may_override_its_parents_code() -> None:
    class Special(errors.UsageError, exit_code=ExitCode.SEED):
        pass

    assert Special.exit_code == ExitCode.SEED
    assert errors.UsageError.exit_code == ExitCode.USAGE
