"""``new-migration``: the next number, a validated name, a file from the template."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from alumdb import catalog
from alumdb.errors import ScaffoldError

TEMPLATE_NAME = "_template.sql.tmpl"
MAX_NAME_LENGTH = 63  # PostgreSQL's identifier length; names end up in schema_migrations


@dataclass(frozen=True)
class NewMigration:
    path: Path
    version: str
    name: str


def validate_name(name: str) -> str:
    """``name`` if it is a plain snake_case word, else :class:`ScaffoldError` saying why."""
    if not name:
        raise ScaffoldError(
            "NAME is empty; give a snake_case description such as add_contact_notes"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"NAME {name!r} is {len(name)} characters long; keep it to {MAX_NAME_LENGTH}"
        )
    if not catalog.NAME_PATTERN.match(name):
        suggestion = "_".join(
            "".join(ch for ch in part if ch.isalnum()).lower()
            for part in name.replace("-", " ").replace("_", " ").split()
        ).strip("_")
        hint = (
            f" such as {suggestion!r}"
            if suggestion and catalog.NAME_PATTERN.match(suggestion)
            else ""
        )
        raise ScaffoldError(
            f"NAME {name!r} is not snake_case; use lower-case letters, digits and single "
            f"underscores, starting with a letter{hint}"
        )
    return name


def new_migration(directory: Path, name: str, purpose: str | None = None) -> NewMigration:
    """Write ``directory/NNN_name.sql`` from the template (NNN = highest + 1) and return it.

    The folder must be valid (see :func:`alumdb.catalog.load`); a name already used
    by another migration is refused. Nothing is written unless everything checks out.
    """
    validate_name(name)
    if purpose is not None and (not purpose.strip() or not purpose.isprintable()):
        raise ScaffoldError(
            f"--purpose {purpose!r}: must be one line of printable text (it goes into the "
            "header comment; a line break would put the rest outside it, as live SQL)"
        )
    existing = catalog.load(directory)
    taken = [m.filename for m in existing if m.name == name]
    if taken:
        raise ScaffoldError(
            f"NAME {name!r} is already used by {taken[0]}; choose a name that says what "
            "this migration adds"
        )
    template_path = directory / TEMPLATE_NAME
    if not template_path.is_file():
        raise ScaffoldError(f"{template_path}: the migration template is missing; restore it")
    number = existing.highest + 1
    version = catalog.format_version(number)
    filename = catalog.file_name(number, name)
    text = template_path.read_text(encoding="utf-8").format(
        version=version,
        name=name,
        filename=filename,
        purpose=purpose or name.replace("_", " ").capitalize(),
    )
    path = directory / filename
    try:
        # O_EXCL: never overwrite, even if another process created the file meanwhile.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ScaffoldError(f"{path}: already exists; run new-migration again") from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    return NewMigration(path=path, version=version, name=name)
