"""``syntax``: the file is UTF-8 text that PostgreSQL 15's parser accepts.

The grammar is PostgreSQL 15's (pglast 5.x embeds its parser): syntax that only a
newer server accepts (``IS JSON`` of 16, ``SET EXPRESSION`` of 17) is a finding, as
it would be an error on the database the migrations are for.
"""

from __future__ import annotations

from collections.abc import Iterator

from alumdb.lint.model import Hit, Severity, Source
from alumdb.lint.registry import Rule


def check(source: Source) -> Iterator[Hit]:
    if source.problem is not None:
        yield Hit(0, source.problem[1], line=source.problem[0])
        return
    if source.parse_error is not None:
        offset, message = source.parse_error
        yield Hit(offset, _syntax_message(source.text, offset, message))
    for event in source.do_events:
        if event.kind == "syntax":
            yield Hit(event.offset, event.message)


def _syntax_message(text: str, offset: int, message: str) -> str:
    line_start = text.rfind("\n", 0, offset) + 1
    line_text = text[line_start:].split("\n", 1)[0]
    if line_text.lstrip().startswith("\\"):
        return (
            "psql meta-command; remove it (migrations also run through psycopg, which "
            "sends the file to the server as SQL)"
        )
    return f"{message}; fix the SQL (PostgreSQL 15's parser rejects it)"


RULE = Rule(
    id="syntax",
    description="the file is UTF-8 and parses as PostgreSQL 15 SQL (no psql meta-commands)",
    severity=Severity.ERROR,
    waivable=False,
    check=check,
    needs="name",
)
