"""The source model: one migration file read, decoded, parsed and located once.

Every rule reads a :class:`Source`; none reads the file or runs the parser itself.
Positions are 0-based character offsets into the text until a :class:`Finding` is
made, which carries 1-based line and column numbers.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pglast import ast
from pglast.parser import ParseError, Token, parse_sql, scan

from alumdb import catalog
from alumdb.database import TRACKING_TABLE

HEADER_RULE = "-- " + "=" * 60
NO_TRANSACTION_DIRECTIVE = catalog.NO_TRANSACTION_DIRECTIVE
# A comment that looks like the directive, wherever it is and however it is spelled.
DIRECTIVE_LIKE = re.compile(r"^--\s*alumdb\s*:\s*no-transaction\s*$", re.IGNORECASE)


class Severity(StrEnum):
    """An error fails `invoke lint`; a warning fails it only with ``--strict``."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: where (1-based line and column), which rule, and what to do."""

    path: Path
    line: int
    column: int
    rule: str
    message: str
    severity: Severity = field(default=Severity.ERROR, compare=False)

    def __str__(self) -> str:
        label = " warning:" if self.severity is Severity.WARNING else ""
        return f"{self.path}:{self.line}:{self.column} {self.rule}{label} {self.message}"


@dataclass(frozen=True)
class Hit:
    """What a rule reports: a character offset, the message, and the top-level statement
    it belongs to (``None``: the file as a whole, which no waiver can excuse)."""

    offset: int
    message: str
    stmt: int | None = None
    line: int | None = None  # a 1-based line instead of the offset (a file without text)


@dataclass(frozen=True)
class Context:
    """Where a statement sits: its top-level statement, offsets, and whether it is guarded."""

    stmt: int
    start: int  # absolute offset of the statement's first token
    origin: int  # absolute offset that node locations are relative to
    in_do: bool = False
    guarded: bool = False

    def at(self, node: Any) -> int:
        """The absolute offset of ``node`` (its statement's start if it has no location)."""
        location = getattr(node, "location", None)
        if isinstance(location, int) and location >= 0:
            return self.origin + location
        return self.start


@dataclass(frozen=True)
class Statement:
    """A statement to check: top-level, or run by a ``DO`` block (``ctx.in_do``)."""

    node: ast.Node
    ctx: Context


@dataclass(frozen=True)
class DoEvent:
    """Something the PL/pgSQL walker met that is not a SQL statement: ``syntax`` (the
    body does not parse) or ``transaction`` (COMMIT, ROLLBACK, BEGIN ... in the body)."""

    kind: str
    offset: int
    stmt: int
    message: str


@dataclass
class Waivers:
    """The file's waiver comments: rules waived per top-level statement, and the comments
    that are not valid waivers (reported by the ``waiver`` rule)."""

    waived: dict[int, set[str]] = field(default_factory=dict)
    problems: list[Hit] = field(default_factory=list)


@dataclass
class Source:
    """A migration file as the rules see it.

    ``problem`` is set when the file has no text (unreadable, not UTF-8, a BOM, a NUL
    byte, empty); ``parse_error`` when PostgreSQL 15's parser rejects it. Either way
    ``raws`` and ``statements`` are empty and only the rules that read the text run.
    """

    path: Path
    text: str = ""
    problem: tuple[int, str] | None = None  # (line, message)
    parse_error: tuple[int, str] | None = None  # (offset, message)
    raws: list[ast.RawStmt] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # first token of each raw statement
    statements: list[Statement] = field(default_factory=list)
    do_events: list[DoEvent] = field(default_factory=list)
    line_starts: list[int] = field(default_factory=list)
    waivers: Waivers = field(default_factory=Waivers)
    # Every migration of the folder, in order and this one included, for the rules that
    # compare files (tenant-isolation); empty when the file is linted on its own.
    folder: list[Source] = field(default_factory=list)

    @property
    def version_name(self) -> tuple[int, str] | None:
        """``(number, name)`` from a valid file name, else ``None``."""
        parsed = catalog.parse_file_name(self.path.name)
        return None if isinstance(parsed, str) else parsed

    @property
    def transactional(self) -> bool:
        return not catalog.is_no_transaction(self.text)

    @property
    def parsed(self) -> bool:
        """Whether the file has text and PostgreSQL's parser accepted it."""
        return self.problem is None and self.parse_error is None

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a 0-based character offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def line_of(self, offset: int) -> int:
        return self.position(offset)[0]

    def offset_of_line(self, line: int) -> int:
        """The offset where 1-based ``line`` starts (the end of the text past the last)."""
        return self.line_starts[line - 1] if line - 1 < len(self.line_starts) else len(self.text)

    def finding(self, hit: Hit, rule: str, severity: Severity) -> Finding:
        """The finding of ``hit`` with 1-based line and column."""
        line, column = (hit.line, 1) if hit.line is not None else self.position(hit.offset)
        return Finding(self.path, line, column, rule, hit.message, severity)

    def statement_at(self, offset: int) -> int | None:
        """The index of the top-level statement that contains ``offset``, if any."""
        index = bisect.bisect_right(self.starts, offset) - 1
        return index if index >= 0 else None


def load(path: Path) -> Source:
    """Read, decode and parse ``path`` (PostgreSQL 15's grammar, via pglast 5).

    ``statements`` stays empty: :func:`alumdb.lint.plpgsql.collect_statements` fills it.
    """
    source = Source(path=path, line_starts=[0])
    try:
        data = path.read_bytes()
    except OSError as exc:
        source.problem = (1, f"cannot be read ({exc.strerror})")
        return source
    decoded = catalog.decode(data)
    if isinstance(decoded, catalog.TextProblem):
        source.problem = (decoded.line or 1, decoded.message)
        return source
    source.text = decoded
    source.line_starts = [0] + [i + 1 for i, ch in enumerate(decoded) if ch == "\n"]
    try:
        source.raws = list(parse_sql(decoded))
    except ParseError as exc:
        location = exc.args[1] if len(exc.args) > 1 else None
        offset = location if isinstance(location, int) and 0 <= location <= len(decoded) else 0
        source.parse_error = (offset, str(exc.args[0]))
        return source
    source.tokens = list(scan(decoded))
    source.starts = _statement_starts(source.raws, source.tokens)
    return source


def _statement_starts(raws: list[ast.RawStmt], tokens: list[Token]) -> list[int]:
    """The offset of each statement's first token (stmt_location may include comments)."""
    token_starts = [t.start for t in tokens]
    starts: list[int] = []
    for raw in raws:
        location = raw.stmt_location or 0
        index = bisect.bisect_left(token_starts, location)
        while index < len(tokens) and tokens[index].name in {"SQL_COMMENT", "C_COMMENT"}:
            index += 1
        starts.append(tokens[index].start if index < len(tokens) else location)
    return starts


def is_tracking_insert(stmt: ast.Node) -> bool:
    """Whether ``stmt`` is an INSERT INTO schema_migrations (checked by ``tracking-insert``)."""
    relation = getattr(stmt, "relation", None)
    return (
        isinstance(stmt, ast.InsertStmt)
        and relation is not None
        and relation.relname == TRACKING_TABLE
        and relation.schemaname in {None, "public"}
    )
