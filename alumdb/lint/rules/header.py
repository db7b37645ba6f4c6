"""``header``: the template's header block opens the file (after the directive)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from alumdb.lint.model import HEADER_RULE, Hit, Severity, Source
from alumdb.lint.registry import Rule

_MIGRATION_LINE = re.compile(r"^-- Migration: (?P<name>\S.*?)\s*$")
_PURPOSE_LINE = re.compile(r"^-- Purpose: (?P<purpose>.*?)\s*$")


def check(source: Source) -> Iterator[Hit]:
    first = 0 if source.transactional else 1
    block = [line.rstrip() for line in source.text.split("\n")[first : first + 4]]
    block += [""] * (4 - len(block))
    problems = list(_problems(block, source.path.name))
    if len(problems) == 4:
        where = "line 2, after the directive" if first else "line 1"
        yield Hit(
            source.offset_of_line(first + 1),
            f"no header block; start the file ({where}) with the template's header: "
            f"`{HEADER_RULE}`, `-- Migration: {source.path.name}`, `-- Purpose: ...`, "
            f"`{HEADER_RULE}`",
        )
        return
    for index, message in problems:
        yield Hit(source.offset_of_line(first + index + 1), message)


def _problems(block: list[str], expected: str) -> Iterator[tuple[int, str]]:
    if block[0] != HEADER_RULE:
        yield 0, f"expected the header's rule line `{HEADER_RULE}`"
    migration = _MIGRATION_LINE.match(block[1])
    if migration is None:
        yield 1, f"expected `-- Migration: {expected}`"
    elif migration["name"] != expected:
        yield 1, f"header names {migration['name']!r}; write `-- Migration: {expected}`"
    purpose = _PURPOSE_LINE.match(block[2])
    if purpose is None:
        yield 2, "expected `-- Purpose: <what this migration does>`"
    elif not purpose["purpose"]:
        yield 2, "the Purpose line is empty; say what this migration does"
    if block[3] != HEADER_RULE:
        yield 3, f"expected the header's closing rule line `{HEADER_RULE}`"


RULE = Rule(
    id="header",
    description="the template's header block: rule line, Migration: <file name>, Purpose:, "
    "rule line",
    severity=Severity.ERROR,
    waivable=True,
    check=check,
    needs="text",
)
