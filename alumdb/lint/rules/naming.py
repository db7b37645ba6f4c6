"""``naming``: the file name is ``NNN_snake_case.sql`` and its number is unique."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from alumdb import catalog
from alumdb.lint.model import Hit, Severity, Source
from alumdb.lint.registry import Rule


def check(source: Source) -> Iterator[Hit]:
    parsed = catalog.parse_file_name(source.path.name)
    if isinstance(parsed, str):
        yield Hit(0, parsed, line=1)


def check_folder(paths: Sequence[Path]) -> Iterator[tuple[Path, str]]:
    for path in paths:
        if not path.is_file():
            yield path, "is not a regular file; remove it or rename it"
    for number, group in catalog.duplicate_numbers(paths).items():
        for path in group:
            others = ", ".join(p.name for p in group if p != path)
            yield (
                path,
                f"version {catalog.format_version(number)} is also used by {others}; "
                "renumber all but one (use the next free number)",
            )


RULE = Rule(
    id="naming",
    description="file name is NNN_snake_case.sql and its number is unique in the folder",
    severity=Severity.ERROR,
    waivable=False,
    check=check,
    needs="name",
    check_folder=check_folder,
)
