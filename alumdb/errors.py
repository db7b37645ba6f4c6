"""The errors the engine raises, and the exit codes they end a task with.

Each message is one line meant for a person: it names the file, line or argument at
fault and says what to do. Each error class names its exit code in its class
statement (``class X(AlumdbError, exit_code=ExitCode.USAGE)``); :class:`ExitCode` is
the one list of them, and README.md's exit-code table documents the same numbers
(``tests/unit/test_errors.py`` compares the two).
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar


class ExitCode(enum.IntEnum):
    """Every exit code a task ends with."""

    OK = 0
    FAILED_CHECK = 1  # lint findings, a stale diagram or schema.sql, a cancelled reset
    USAGE = 2  # a bad argument, option, name or configuration value
    CATALOG = 3  # the migrations folder is invalid
    DOCKER = 4  # the Docker Engine or compose failed
    UNREACHABLE = 5  # the database did not accept a connection
    CHANGED_FILES = 6  # applied files changed or missing on disk
    MIGRATION_FAILED = 7  # a migration failed (rolled back), or its locks were not had
    LINTER_UNAVAILABLE = 8  # the linter could not run (squawk missing)
    VERIFY = 9  # `verify` found a difference
    SCHEMA_DRIFT = 10  # `drift`: the schema is not what its migrations make
    SEED = 11  # `seed` refused its target or failed
    INTERRUPTED = 130  # Ctrl-C


class AlumdbError(Exception):
    """Base of every error the engine raises on purpose.

    A subclass names its exit code as a keyword of its class statement; without
    one it keeps its parent's.
    """

    exit_code: ClassVar[ExitCode] = ExitCode.FAILED_CHECK

    def __init_subclass__(cls, exit_code: ExitCode | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CheckFailed(AlumdbError, exit_code=ExitCode.FAILED_CHECK):
    """A check found something to fix: lint findings, a stale schema diagram."""


class Cancelled(AlumdbError, exit_code=ExitCode.FAILED_CHECK):
    """The user answered no; nothing changed."""


class UsageError(AlumdbError, exit_code=ExitCode.USAGE):
    """A bad argument, option or configuration value."""


class ScaffoldError(UsageError):
    """``new-migration`` refused its name or could not write the file."""


class CatalogError(AlumdbError, exit_code=ExitCode.CATALOG):
    """The migrations folder is not valid; nothing was run.

    ``problems`` holds one line per problem, each naming its file.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} problems in the migrations folder:\n" + "\n".join(
                f"  {p}" for p in problems
            )
        super().__init__(message)


class EnvironmentFailure(AlumdbError, exit_code=ExitCode.DOCKER):
    """Compose failed, or the database container never became healthy."""


class DockerUnavailableError(EnvironmentFailure):
    """The Docker Engine cannot be reached."""


class DatabaseUnavailableError(AlumdbError, exit_code=ExitCode.UNREACHABLE):
    """The database did not accept a connection in time."""


class DriftError(AlumdbError, exit_code=ExitCode.CHANGED_FILES):
    """Applied migrations differ from the files on disk (changed or missing)."""


class MigrationFailed(AlumdbError, exit_code=ExitCode.MIGRATION_FAILED):
    """A migration file failed; its transaction was rolled back."""


class LockWaitTimeout(MigrationFailed):
    """Another run held the migration lock longer than ``--wait-for-lock``."""


class LintError(AlumdbError, exit_code=ExitCode.LINTER_UNAVAILABLE):
    """The linter could not run (for example, the ``squawk`` binary is missing)."""


class VerifyError(AlumdbError, exit_code=ExitCode.VERIFY):
    """A fresh-database check of migrations/ found a difference (``invoke verify``)."""


class SchemaDriftError(AlumdbError, exit_code=ExitCode.SCHEMA_DRIFT):
    """``invoke drift``: the schema differs from what the recorded migrations make."""


class SeedError(AlumdbError, exit_code=ExitCode.SEED):
    """``seed`` refused its target (prod, not disposable, not migrated); nothing was written."""


class Interrupted(AlumdbError, exit_code=ExitCode.INTERRUPTED):
    """Ctrl-C (SIGINT) stopped a run; the message says what was rolled back."""
