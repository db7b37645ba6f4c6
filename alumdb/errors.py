"""The errors the engine raises. Each message is one line meant for a person:
it names the file, line or argument at fault and says what to do."""

from __future__ import annotations


class AlumdbError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(AlumdbError):
    """A bad argument, option or configuration value."""

    exit_code = 2


class CatalogError(AlumdbError):
    """The migrations folder is not valid; nothing was run.

    ``problems`` holds one line per problem, each naming its file.
    """

    exit_code = 3

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} problems in the migrations folder:\n" + "\n".join(
                f"  {p}" for p in problems
            )
        super().__init__(message)


class DockerUnavailableError(AlumdbError):
    """The Docker Engine cannot be reached."""

    exit_code = 4


class EnvironmentFailure(AlumdbError):
    """Compose failed, or the database container never became healthy."""

    exit_code = 4


class DatabaseUnavailableError(AlumdbError):
    """The database did not accept a connection in time."""

    exit_code = 5


class DriftError(AlumdbError):
    """Applied migrations differ from the files on disk (changed or missing)."""

    exit_code = 6


class MigrationFailed(AlumdbError):
    """A migration file failed; its transaction was rolled back."""

    exit_code = 7


class LockWaitTimeout(MigrationFailed):
    """Another run held the migration lock longer than ``--wait-for-lock``."""


class ScaffoldError(AlumdbError):
    """``new-migration`` refused its name or could not write the file."""

    exit_code = 2


class VerifyError(AlumdbError):
    """A fresh-database check of migrations/ found a difference (``invoke verify``)."""

    exit_code = 9


class SchemaDriftError(AlumdbError):
    """``invoke drift``: the schema differs from what the recorded migrations make."""

    exit_code = 10


class LintError(AlumdbError):
    """The linter could not run (for example, the ``squawk`` binary is missing)."""

    exit_code = 8


class CheckFailed(AlumdbError):
    """A check found something to fix: lint findings, a stale schema diagram."""

    exit_code = 1


class Cancelled(AlumdbError):
    """The user answered no; nothing changed."""

    exit_code = 1


class Interrupted(AlumdbError):
    """Ctrl-C (SIGINT) stopped a run; the message says what was rolled back."""

    exit_code = 130


class SeedError(AlumdbError):
    """``seed`` refused its target (prod, not disposable, not migrated); nothing was written."""

    exit_code = 11
