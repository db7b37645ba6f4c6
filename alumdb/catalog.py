"""Reads the migrations folder: validates names, orders by number, checksums.

A migration is a file named ``NNN_snake_case.sql``: ``NNN`` is the version,
zero-padded to three digits below 1000 and written without leading zeros from
1000 on; files are ordered by the number, never by the text (``1000`` comes
after ``999``).

Checksums are SHA-256 over the file's text with line endings normalised to LF.
A checkout that turns LF into CRLF (git's ``autocrlf``) does not change a
migration; any other edit does. A UTF-8 byte-order mark is refused outright:
psql, and so the compose ``migrations`` service, would send it to the server
as part of the first statement.

Files that do not end in ``.sql`` (the README, the template), hidden files and
``schema.sql`` (the schema snapshot ``invoke schema`` writes) are not migrations
and are ignored; any other ``*.sql`` file must follow the naming convention, so
that the compose loop and this engine run the same set.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from alumdb.errors import CatalogError

FILE_PATTERN = re.compile(r"^(?P<version>[0-9]+)_(?P<name>[a-z][a-z0-9]*(?:_[a-z0-9]+)*)\.sql$")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
NO_TRANSACTION_DIRECTIVE = "-- alumdb:no-transaction"
BOM = "\ufeff"
ASCII_SPACE = " \t\r\n\v\f"  # what the shell's [[:space:]] matches
# The schema snapshot beside the migrations (alumdb.schema_dump): the one *.sql file
# of the folder that is not a migration.
SNAPSHOT_FILE = "schema.sql"


def format_version(number: int) -> str:
    """The version text of a migration number: ``12`` -> ``"012"``, ``1000`` -> ``"1000"``."""
    return f"{number:03d}"


def file_name(number: int, name: str) -> str:
    """The file name of migration ``number`` called ``name``."""
    return f"{format_version(number)}_{name}.sql"


def normalise(text: str) -> str:
    """The text a checksum is taken over: CRLF and lone CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    """SHA-256 (hex) of a migration's text, line endings normalised."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Migration:
    """One migration file on disk."""

    number: int
    name: str
    path: Path
    sql: str
    checksum: str
    transactional: bool

    @property
    def version(self) -> str:
        """The version as ``schema_migrations`` stores it (``"012"``)."""
        return format_version(self.number)

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Catalog:
    """The migrations of a folder, in numeric order."""

    directory: Path
    migrations: tuple[Migration, ...]

    def __iter__(self) -> Iterator[Migration]:
        return iter(self.migrations)

    def __len__(self) -> int:
        return len(self.migrations)

    def find(self, version: str) -> Migration | None:
        """The migration with ``version`` (``"12"``, ``"012"`` and ``"0012"`` all match 12)."""
        if not version.isdigit():
            return None
        number = int(version)
        return next((m for m in self.migrations if m.number == number), None)

    @property
    def highest(self) -> int:
        return max((m.number for m in self.migrations), default=0)


def parse_file_name(filename: str) -> tuple[int, str] | str:
    """``(number, name)`` for a valid migration file name, else the reason it is not."""
    match = FILE_PATTERN.match(filename)
    if match is None:
        return (
            f"{filename}: not a migration file name; rename it NNN_snake_case.sql "
            "(three-digit number, lower-case words joined by underscores)"
        )
    digits = match["version"]
    number = int(digits)
    if number == 0:
        return f"{filename}: version 000 is not allowed; migrations are numbered from 001"
    if digits != format_version(number):
        return (
            f"{filename}: version {digits!r} is not zero-padded to three digits; "
            f"rename it {file_name(number, match['name'])}"
        )
    return number, match["name"]


@dataclass(frozen=True)
class TextProblem:
    """Why a file's bytes are not a migration's text: the 1-based line and what to do."""

    line: int | None  # None: the whole file
    message: str

    def located(self, filename: str) -> str:
        """``name:line: message`` (``name: message`` for the whole file)."""
        where = filename if self.line is None else f"{filename}:{self.line}"
        return f"{where}: {self.message}"


def decode(data: bytes) -> str | TextProblem:
    """The text of a migration file's bytes, or why it has none.

    The one decision for every reader (catalog, lint): UTF-8 without a byte-order
    mark, no NUL byte, not empty or blank.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return TextProblem(
            line,
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
        )
    if text.startswith(BOM):
        return TextProblem(
            1,
            "starts with a UTF-8 byte-order mark, which psql sends to the server as part "
            "of the first statement; save the file as UTF-8 without BOM",
        )
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        return TextProblem(line, "contains a NUL byte; this is not a SQL text file")
    if not text.strip():
        return TextProblem(None, "the file is empty; write its DDL or delete the file")
    return text


def is_no_transaction(text: str) -> bool:
    """Whether a migration opts out of its transaction: its first line, without the
    ASCII white space around it (a CRLF's CR included), is exactly
    ``-- alumdb:no-transaction``.

    The one rule for the runner, the linter and squawk's adapter; the compose loop's
    ``head -n 1 "$f" | grep -qxE '[[:space:]]*-- alumdb:no-transaction[[:space:]]*'``
    tests the same (tests/unit/test_decisions.py runs both).
    """
    return text.split("\n", 1)[0].strip(ASCII_SPACE) == NO_TRANSACTION_DIRECTIVE


def migration_paths(directory: Path) -> list[Path]:
    """The files of ``directory`` that are migrations or meant to be, sorted by name.

    Every ``*.sql`` entry that is not hidden and not the schema snapshot
    (:data:`SNAPSHOT_FILE`). The README, the template, ``.hidden.sql`` files and
    ``schema.sql`` are not migrations. The one listing for the catalog, the linter
    and the tasks.
    """
    # os.scandir: the entries' types come with the listing, no stat per file.
    with os.scandir(directory) as listing:
        names = sorted(
            e.name
            for e in listing
            if not e.name.startswith(".") and e.name.endswith(".sql") and e.name != SNAPSHOT_FILE
        )
    return [directory / name for name in names]


def duplicate_numbers(paths: Sequence[Path]) -> dict[int, list[Path]]:
    """The version numbers used by more than one of ``paths`` (invalid names ignored)."""
    found: dict[int, list[Path]] = {}
    for path in paths:
        parsed = parse_file_name(path.name)
        if not isinstance(parsed, str):
            found.setdefault(parsed[0], []).append(path)
    return {number: group for number, group in sorted(found.items()) if len(group) > 1}


def load(directory: Path) -> Catalog:
    """Read and validate every migration in ``directory``.

    Raises :class:`CatalogError` listing every problem found (bad names, duplicate
    numbers, unreadable files); nothing is returned unless the whole folder is valid.
    """
    if not directory.exists():
        raise CatalogError(
            [f"{directory}: the migrations folder does not exist; create it or pass --migrations"]
        )
    if not directory.is_dir():
        raise CatalogError([f"{directory}: is not a folder; pass the migrations folder"])

    problems: list[str] = []
    migrations: list[Migration] = []
    paths = migration_paths(directory)
    for path in paths:
        if not path.is_file():
            problems.append(f"{path.name}: is not a regular file")
            continue
        parsed = parse_file_name(path.name)
        if isinstance(parsed, str):
            problems.append(parsed)
            continue
        number, name = parsed
        try:
            text = decode(path.read_bytes())
        except OSError as exc:
            problems.append(f"{path.name}: cannot be read ({exc.strerror})")
            continue
        if isinstance(text, TextProblem):
            problems.append(text.located(path.name))
            continue
        migrations.append(
            Migration(
                number=number,
                name=name,
                path=path,
                sql=text,
                checksum=checksum(text),
                transactional=not is_no_transaction(text),
            )
        )
    for number, group in duplicate_numbers(paths).items():
        names = ", ".join(p.name for p in group)
        problems.append(
            f"{names}: {len(group)} files share version {format_version(number)}; "
            "renumber all but one"
        )
    if problems:
        raise CatalogError(problems)
    migrations.sort(key=lambda m: m.number)
    return Catalog(directory=directory, migrations=tuple(migrations))


def select(catalog: Catalog, versions: Sequence[str]) -> list[Migration]:
    """The migrations named by ``versions``, in numeric order (unknown ones are skipped)."""
    wanted = {int(v) for v in versions if v.isdigit()}
    return [m for m in catalog if m.number in wanted]
