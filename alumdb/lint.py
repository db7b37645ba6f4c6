"""The spec's rules for migration files, checked on the parsed SQL (pglast), plus squawk.

Every file is parsed with PostgreSQL's own parser (libpg_query through pglast);
``DO`` blocks are parsed again with its PL/pgSQL parser, so a guarded
``CREATE TYPE`` or ``ADD CONSTRAINT`` inside one is checked too. Regular
expressions only ever look at file names and at comments.

Rules (ids as reported; :data:`RULES` holds the one-line descriptions):

``naming``, ``header``, ``tracking-insert``, ``idempotent``, ``no-data``,
``non-destructive``, ``explicit-names``, ``tenant-scoped``,
``transaction-control``, ``syntax`` and ``waiver``.

Decisions worth knowing:

* ``non-destructive`` refuses what loses data or breaks running code: DROP of a
  table, schema, type, domain, sequence, materialized view or extension, any
  DROP ... CASCADE, DROP COLUMN, ALTER COLUMN ... TYPE, TRUNCATE, and renaming or
  moving a table, view, column, schema, type or enum value. Dropping an index,
  view, function, trigger, policy or constraint loses no data and is allowed
  (``idempotent`` still wants ``IF EXISTS``; squawk's
  ``require-concurrent-index-deletion`` covers the lock a plain DROP INDEX takes).
* ``tenant-scoped``: the ``tenants`` table itself needs only ``created_at``,
  ``updated_at`` and the ``set_updated_at()`` trigger, without a waiver. Temporary
  tables and partitions (which inherit their parent's columns and triggers) are
  skipped. ``tenant_id`` must also be NOT NULL.
* Guards inside ``DO`` blocks: a statement counts as guarded when it sits in an
  ``IF``/``ELSIF``/``ELSE`` branch whose condition has an ``EXISTS (...)`` test or an
  ``IS [NOT] NULL`` test (``to_regtype(...) IS NULL``), or in a block whose
  ``EXCEPTION`` clause handles ``duplicate_*``, ``invalid_table_definition``,
  ``unique_violation``, ``others`` or their SQLSTATEs. Statements run through
  ``EXECUTE`` (dynamic SQL) cannot be checked and are accepted.
* A waiver that is malformed (no reason, an unknown or unwaivable rule) silences
  nothing; waivers inside a ``DO`` body are not seen (they are string contents).
"""

from __future__ import annotations

import bisect
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pglast
from pglast import ast, enums
from pglast.parser import ParseError, Token, parse_sql, scan

from alumdb.catalog import BOM, NO_TRANSACTION_DIRECTIVE, is_candidate, parse_file_name
from alumdb.database import TRACKING_TABLE
from alumdb.errors import LintError, UsageError

RULES: dict[str, str] = {
    "naming": "file name is NNN_snake_case.sql and its number is unique in the folder",
    "header": "the template's header block: rule line, Migration: <file name>, Purpose:, rule line",
    "tracking-insert": (
        "exactly one INSERT INTO schema_migrations (version, name) VALUES (<file's version>, "
        "<file's name>) ON CONFLICT (version) DO NOTHING, as the last statement"
    ),
    "idempotent": (
        "safe to run twice: IF NOT EXISTS / IF EXISTS / OR REPLACE, types, constraints and "
        "policies created only inside a guarded DO block"
    ),
    "no-data": "DDL only: no INSERT/UPDATE/DELETE/MERGE/COPY besides the tracking insert",
    "non-destructive": (
        "no DROP TABLE/SCHEMA/TYPE, DROP COLUMN, ALTER COLUMN TYPE, TRUNCATE or renames"
    ),
    "explicit-names": (
        "every constraint, index and trigger named, with its prefix (pk_ fk_ uq_ ck_ ex_ idx_ "
        "trg_), at most 63 bytes"
    ),
    "tenant-scoped": (
        "every table has tenant_id (NOT NULL, FK to tenants), created_at, updated_at and a "
        "BEFORE UPDATE trigger calling set_updated_at()"
    ),
    "transaction-control": (
        "no BEGIN/COMMIT/ROLLBACK/SAVEPOINT; CONCURRENTLY and other non-transactional "
        "statements only in a `-- alumdb:no-transaction` file"
    ),
    "syntax": "the file parses as PostgreSQL SQL (no psql meta-commands)",
    "waiver": "`-- alumdb: allow <rule>[, <rule>] because <reason>` directly above a statement",
}
UNWAIVABLE = frozenset({"naming", "syntax", "waiver"})

HEADER_RULE = "-- " + "=" * 60
MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL silently truncates longer names
TENANTS_TABLE = "tenants"
UPDATED_AT_FUNCTION = "set_updated_at"
SQUAWK_PREFIX = "squawk/"

_WAIVER = re.compile(r"^--\s*alumdb\s*:\s*allow\b\s*(?P<body>.*?)\s*$", re.IGNORECASE)
_WAIVER_BODY = re.compile(r"^(?P<rules>.*?)(?:(?:^|\s)because\b\s*(?P<reason>.*))?$", re.DOTALL)
_ALUMDB_COMMENT = re.compile(r"^--\s*alumdb\s*:", re.IGNORECASE)
_DIRECTIVE_LIKE = re.compile(r"^--\s*alumdb\s*:\s*no-transaction\s*$", re.IGNORECASE)
_MIGRATION_LINE = re.compile(r"^-- Migration: (?P<name>\S.*?)\s*$")
_PURPOSE_LINE = re.compile(r"^-- Purpose: (?P<purpose>.*?)\s*$")
_DOLLAR_TAG = re.compile(r"^\$[A-Za-z_0-9]*\$")

_CONSTRAINT_PREFIX: dict[Any, tuple[str, str]] = {
    enums.ConstrType.CONSTR_PRIMARY: ("pk_", "PRIMARY KEY"),
    enums.ConstrType.CONSTR_FOREIGN: ("fk_", "FOREIGN KEY"),
    enums.ConstrType.CONSTR_UNIQUE: ("uq_", "UNIQUE"),
    enums.ConstrType.CONSTR_CHECK: ("ck_", "CHECK"),
    enums.ConstrType.CONSTR_EXCLUSION: ("ex_", "EXCLUDE"),
}
# Exception conditions that make re-creating an existing object harmless.
_GUARD_CONDITIONS = frozenset(
    {
        "others",
        "invalid_table_definition",
        "unique_violation",
        "42710",
        "42p07",
        "42p16",
        "42723",
        "42p06",
        "23505",
    }
)
_OBJECT_WORDS: dict[Any, str] = {
    enums.ObjectType.OBJECT_TABLE: "TABLE",
    enums.ObjectType.OBJECT_SCHEMA: "SCHEMA",
    enums.ObjectType.OBJECT_TYPE: "TYPE",
    enums.ObjectType.OBJECT_DOMAIN: "DOMAIN",
    enums.ObjectType.OBJECT_SEQUENCE: "SEQUENCE",
    enums.ObjectType.OBJECT_MATVIEW: "MATERIALIZED VIEW",
    enums.ObjectType.OBJECT_EXTENSION: "EXTENSION",
    enums.ObjectType.OBJECT_FOREIGN_TABLE: "FOREIGN TABLE",
    enums.ObjectType.OBJECT_VIEW: "VIEW",
    enums.ObjectType.OBJECT_COLUMN: "COLUMN",
    enums.ObjectType.OBJECT_ATTRIBUTE: "ATTRIBUTE",
    enums.ObjectType.OBJECT_INDEX: "INDEX",
    enums.ObjectType.OBJECT_FUNCTION: "FUNCTION",
    enums.ObjectType.OBJECT_PROCEDURE: "PROCEDURE",
    enums.ObjectType.OBJECT_TRIGGER: "TRIGGER",
    enums.ObjectType.OBJECT_POLICY: "POLICY",
}
_DESTRUCTIVE_DROPS = frozenset(
    {
        enums.ObjectType.OBJECT_TABLE,
        enums.ObjectType.OBJECT_SCHEMA,
        enums.ObjectType.OBJECT_TYPE,
        enums.ObjectType.OBJECT_DOMAIN,
        enums.ObjectType.OBJECT_SEQUENCE,
        enums.ObjectType.OBJECT_MATVIEW,
        enums.ObjectType.OBJECT_EXTENSION,
        enums.ObjectType.OBJECT_FOREIGN_TABLE,
    }
)
_BREAKING_RENAMES = frozenset(
    {
        enums.ObjectType.OBJECT_TABLE,
        enums.ObjectType.OBJECT_VIEW,
        enums.ObjectType.OBJECT_MATVIEW,
        enums.ObjectType.OBJECT_COLUMN,
        enums.ObjectType.OBJECT_ATTRIBUTE,
        enums.ObjectType.OBJECT_SCHEMA,
        enums.ObjectType.OBJECT_TYPE,
        enums.ObjectType.OBJECT_DOMAIN,
        enums.ObjectType.OBJECT_SEQUENCE,
        enums.ObjectType.OBJECT_FOREIGN_TABLE,
    }
)
_DML = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt, ast.CopyStmt)
_DML_WORDS = {
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
    "CopyStmt": "COPY",
}
# Subtrees that define code run later, not now: DML inside them is not data.
_DEFINITIONS = (ast.CreateFunctionStmt, ast.RuleStmt)
_CREATE_TYPE = (
    ast.CreateEnumStmt,
    ast.CompositeTypeStmt,
    ast.CreateDomainStmt,
    ast.CreateRangeStmt,
)


def _guard_hint(catalog: str, *, in_do: bool) -> str:
    check = f"IF NOT EXISTS (SELECT 1 FROM {catalog} ...) THEN ...; END IF"
    if in_do:
        return f"guard it with {check}, or an EXCEPTION WHEN duplicate_object handler"
    return f"wrap it in DO $$ BEGIN {check}; END $$"


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: where (1-based line and column), which rule, and what to do."""

    path: Path
    line: int
    column: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column} {self.rule} {self.message}"


# --- public API ----------------------------------------------------------------------


def lint_file(path: Path) -> list[Finding]:
    """The findings of one migration file (its name checked too, but not against others)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such migration file; pass an existing .sql file")
    return sorted(_lint_one(path))


def lint_directory(directory: Path) -> list[Finding]:
    """The findings of every ``*.sql`` file of ``directory`` plus the cross-file checks.

    Hidden files, files not ending in ``.sql`` (the README, the template) and the
    schema snapshot are skipped, exactly as :func:`alumdb.catalog.load` does.
    """
    if not directory.is_dir():
        raise UsageError(f"{directory}: is not a folder; pass the migrations folder")
    findings: list[Finding] = []
    by_number: dict[int, list[Path]] = {}
    for path in sorted(directory.iterdir()):
        if not is_candidate(path.name):
            continue
        if not path.is_file():
            findings.append(
                Finding(path, 1, 1, "naming", "is not a regular file; remove it or rename it")
            )
            continue
        parsed = parse_file_name(path.name)
        if not isinstance(parsed, str):
            by_number.setdefault(parsed[0], []).append(path)
        findings.extend(_lint_one(path))
    for number, paths in sorted(by_number.items()):
        if len(paths) > 1:
            for path in paths:
                others = ", ".join(p.name for p in paths if p != path)
                findings.append(
                    Finding(
                        path,
                        1,
                        1,
                        "naming",
                        f"version {number:03d} is also used by {others}; "
                        "renumber all but one (use the next free number)",
                    )
                )
    return sorted(findings)


def squawk_binary() -> Path | None:
    """The ``squawk`` executable: next to the running Python first, then on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    if beside.is_file():
        return beside
    found = shutil.which("squawk")
    return Path(found) if found else None


def run_squawk(paths: Sequence[Path], config: Path) -> list[Finding]:
    """Run squawk over ``paths`` with ``config``; its findings, rule ids prefixed ``squawk/``.

    Files whose first line is ``-- alumdb:no-transaction`` are checked with
    ``--no-assume-in-transaction`` (the runner does not wrap them); the rest as the
    configuration says. Raises :class:`LintError` when squawk is missing or fails.
    """
    if not paths:
        return []
    binary = squawk_binary()
    if binary is None:
        raise LintError(
            "squawk is not installed (looked next to Python and on PATH); "
            "install the dev extras: pip install -e '.[dev]'"
        )
    if not config.is_file():
        raise LintError(f"{config}: squawk configuration not found; pass the .squawk.toml path")
    in_transaction: list[Path] = []
    outside: list[Path] = []
    for path in paths:
        (outside if _is_no_transaction(path) else in_transaction).append(path)
    findings: list[Finding] = []
    for group, extra in ((in_transaction, []), (outside, ["--no-assume-in-transaction"])):
        if group:
            findings.extend(_squawk(binary, group, config, extra))
    return sorted(findings)


# --- squawk --------------------------------------------------------------------------


def _is_no_transaction(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except OSError:
        return False
    return first.lstrip(BOM).strip() == NO_TRANSACTION_DIRECTIVE


def _squawk(binary: Path, paths: list[Path], config: Path, extra: list[str]) -> list[Finding]:
    command = [
        str(binary),
        "--reporter",
        "json",
        "--config",
        str(config),
        *extra,
        *(str(p) for p in paths),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    except OSError as exc:
        raise LintError(f"squawk could not be started ({binary}: {exc.strerror})") from None
    except subprocess.TimeoutExpired:
        raise LintError("squawk did not finish within 300 s") from None
    try:
        records = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        records = None
    if not isinstance(records, list):
        detail = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
        raise LintError(f"squawk failed (exit {result.returncode}): {detail[0]}")
    given = {str(p): p for p in paths}
    findings: list[Finding] = []
    for record in records:
        if not isinstance(record, dict):
            continue
        file = str(record.get("file", ""))
        message = str(record.get("message", "")).strip()
        help_text = record.get("help")
        if help_text:
            message = f"{message} {str(help_text).strip()}"
        findings.append(
            Finding(
                given.get(file, Path(file)),
                int(record.get("line", 0)) + 1,
                int(record.get("column", 0)) + 1,
                SQUAWK_PREFIX + str(record.get("rule_name", "unknown")),
                message,
            )
        )
    return findings


# --- one file ------------------------------------------------------------------------


@dataclass
class _Hit:
    """A finding before waivers: a character offset and the top-level statement it is in."""

    offset: int
    rule: str
    message: str
    stmt: int | None


@dataclass
class _Table:
    stmt: int
    offset: int
    name: str
    schema: str | None
    node: ast.CreateStmt


@dataclass
class _Trigger:
    table: str
    schema: str | None
    node: ast.CreateTrigStmt


@dataclass
class _Source:
    """A file's text and what the checks share while walking it."""

    path: Path
    text: str
    transactional: bool
    line_starts: list[int] = field(default_factory=list)
    hits: list[_Hit] = field(default_factory=list)
    tables: list[_Table] = field(default_factory=list)
    triggers: list[_Trigger] = field(default_factory=list)
    waived: dict[int, set[str]] = field(default_factory=dict)  # statement -> rules

    def __post_init__(self) -> None:
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a 0-based character offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def line_of(self, offset: int) -> int:
        return self.position(offset)[0]

    def hit(self, offset: int, rule: str, message: str, stmt: int | None) -> None:
        self.hits.append(_Hit(offset, rule, message, stmt))


@dataclass(frozen=True)
class _Context:
    """Where a statement sits: its top-level statement, offsets, and whether it is guarded."""

    stmt: int
    start: int  # absolute offset of the statement's first token
    origin: int  # absolute offset that node locations are relative to
    in_do: bool = False
    guarded: bool = False

    def at(self, node: Any) -> int:
        location = getattr(node, "location", None)
        if isinstance(location, int) and location >= 0:
            return self.origin + location
        return self.start


def _lint_one(path: Path) -> list[Finding]:
    name_check = parse_file_name(path.name)
    findings: list[Finding] = []
    if isinstance(name_check, str):
        findings.append(Finding(path, 1, 1, "naming", name_check))
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [*findings, Finding(path, 1, 1, "syntax", f"cannot be read ({exc.strerror})")]
    text, problem = _decode(data)
    if problem is not None:
        line, column, message = problem
        return [*findings, Finding(path, line, column, "syntax", message)]
    version_name = None if isinstance(name_check, str) else name_check
    source = _Source(
        path=path,
        text=text,
        transactional=text.split("\n", 1)[0].strip() != NO_TRANSACTION_DIRECTIVE,
    )
    _check_header(source)
    _check_statements(source, version_name)
    findings.extend(_apply_waivers(source))
    return findings


def _decode(data: bytes) -> tuple[str, tuple[int, int, str] | None]:
    """The text, or a (line, column, message) problem: not UTF-8, a BOM, a NUL byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return "", (line, 1, f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save as UTF-8")
    if text.startswith(BOM):
        return "", (
            1,
            1,
            "starts with a UTF-8 byte-order mark (psql sends it as part of the first "
            "statement); save the file as UTF-8 without BOM",
        )
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        return "", (line, 1, "contains a NUL byte; this is not a SQL text file")
    return text, None


# --- header --------------------------------------------------------------------------


def _check_header(source: _Source) -> None:
    lines = source.text.split("\n")
    first = 1 if lines and lines[0].strip() == NO_TRANSACTION_DIRECTIVE else 0
    block = [line.rstrip() for line in lines[first : first + 4]]
    block += [""] * (4 - len(block))
    expected = source.path.name
    problems: list[tuple[int, str]] = []
    if block[0] != HEADER_RULE:
        problems.append((0, f"expected the header's rule line `{HEADER_RULE}`"))
    migration = _MIGRATION_LINE.match(block[1])
    if migration is None:
        problems.append((1, f"expected `-- Migration: {expected}`"))
    elif migration["name"] != expected:
        problems.append(
            (1, f"header names {migration['name']!r}; write `-- Migration: {expected}`")
        )
    purpose = _PURPOSE_LINE.match(block[2])
    if purpose is None:
        problems.append((2, "expected `-- Purpose: <what this migration does>`"))
    elif not purpose["purpose"]:
        problems.append((2, "the Purpose line is empty; say what this migration does"))
    if block[3] != HEADER_RULE:
        problems.append((3, f"expected the header's closing rule line `{HEADER_RULE}`"))
    if len(problems) == 4:
        where = "line 2, after the directive" if first else "line 1"
        source.hit(
            source.line_starts[first] if first < len(source.line_starts) else 0,
            "header",
            f"no header block; start the file ({where}) with the template's header: "
            f"`{HEADER_RULE}`, `-- Migration: {expected}`, `-- Purpose: ...`, `{HEADER_RULE}`",
            None,
        )
        return
    for index, message in problems:
        line = first + index
        offset = source.line_starts[line] if line < len(source.line_starts) else len(source.text)
        source.hit(offset, "header", message, None)


# --- statements ----------------------------------------------------------------------


def _check_statements(source: _Source, version_name: tuple[int, str] | None) -> None:
    text = source.text
    try:
        raws = parse_sql(text)
    except ParseError as exc:
        source.hit(_error_offset(exc, text), "syntax", _syntax_message(exc, text), None)
        return
    try:
        tokens = scan(text)
    except ParseError:  # pragma: no cover - anything that parses also scans
        tokens = []
    starts = _statement_starts(raws, tokens)
    _collect_waivers(source, tokens, starts)
    _check_identifier_lengths(source, tokens, starts)
    for index, (raw, start) in enumerate(zip(raws, starts, strict=True)):
        context = _Context(stmt=index, start=start, origin=0)
        stmt = raw.stmt
        if stmt is None:
            continue
        end = (raw.stmt_location or 0) + raw.stmt_len if raw.stmt_len else len(text)
        if isinstance(stmt, ast.TransactionStmt):
            source.hit(
                start,
                "transaction-control",
                f"{_transaction_word(stmt)} in a migration; remove it: each file runs in its "
                "own transaction (or, with `-- alumdb:no-transaction` on line 1, statement by "
                "statement)",
                index,
            )
            continue
        if _is_tracking_candidate(stmt):
            continue  # checked as a whole below
        _check_statement(source, stmt, context)
        if isinstance(stmt, ast.DoStmt):
            _check_do(source, stmt, context, tokens, end)
    _check_tracking(source, raws, starts, version_name)
    _check_tenancy(source)


def _check_identifier_lengths(source: _Source, tokens: list[Token], starts: list[int]) -> None:
    """Names longer than 63 bytes: the parser (like the server) has already truncated them."""
    for token in tokens:
        if token.name != "IDENT":
            continue
        name = source.text[token.start : token.end + 1]
        if name.startswith('"'):
            name = name[1:-1].replace('""', '"')
        if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            index = bisect.bisect_right(starts, token.start) - 1
            source.hit(
                token.start,
                "explicit-names",
                f"{name} is longer than {MAX_IDENTIFIER_BYTES} bytes and PostgreSQL silently "
                "truncates it; shorten it",
                index if index >= 0 else None,
            )


def _error_offset(exc: ParseError, text: str) -> int:
    location = exc.args[1] if len(exc.args) > 1 else None
    return location if isinstance(location, int) and 0 <= location <= len(text) else 0


def _syntax_message(exc: ParseError, text: str) -> str:
    offset = _error_offset(exc, text)
    line_start = text.rfind("\n", 0, offset) + 1
    line_text = text[line_start:].split("\n", 1)[0]
    if line_text.lstrip().startswith("\\"):
        return (
            "psql meta-command; remove it (migrations also run through psycopg, which "
            "sends the file to the server as SQL)"
        )
    return f"{exc.args[0]}; fix the SQL (PostgreSQL's parser rejects it)"


def _statement_starts(raws: Sequence[ast.RawStmt], tokens: list[Token]) -> list[int]:
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


def _transaction_word(stmt: ast.TransactionStmt) -> str:
    kind = str(getattr(stmt.kind, "name", stmt.kind))
    word = kind.removeprefix("TRANS_STMT_").replace("_", " ")
    return word or "transaction control"


def _walk(node: Any) -> Iterator[ast.Node]:
    """Every node under ``node`` (included), depth first."""
    if isinstance(node, ast.Node):
        yield node
        for attribute in node:
            if attribute == "ancestors":
                continue
            yield from _walk(getattr(node, attribute, None))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)


def _walk_data(node: Any) -> Iterator[ast.Node]:
    """Like :func:`_walk`, without entering function and rule bodies (run later, not now)."""
    if isinstance(node, _DEFINITIONS):
        return
    if isinstance(node, ast.Node):
        yield node
        for attribute in node:
            if attribute != "ancestors":
                yield from _walk_data(getattr(node, attribute, None))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk_data(item)


def _qualified(rangevar: ast.RangeVar | None) -> str:
    if rangevar is None:
        return "?"
    name = str(rangevar.relname)
    return f"{rangevar.schemaname}.{name}" if rangevar.schemaname else name


def _dotted(names: Iterable[Any] | None) -> str:
    if not names:
        return "?"
    return ".".join(str(getattr(n, "sval", n)) for n in names)


def _check_statement(source: _Source, stmt: ast.Node, ctx: _Context) -> None:
    """The per-statement rules, for a top-level statement or one inside a DO block."""
    _check_idempotent(source, stmt, ctx)
    _check_no_data(source, stmt, ctx)
    _check_non_destructive(source, stmt, ctx)
    _check_names(source, stmt, ctx)
    _check_non_transactional(source, stmt, ctx)
    if isinstance(stmt, ast.CreateStmt) and not ctx.in_do:
        relation = stmt.relation
        if relation is not None:
            source.tables.append(
                _Table(ctx.stmt, ctx.start, str(relation.relname), relation.schemaname, stmt)
            )
    if isinstance(stmt, ast.CreateTrigStmt) and stmt.relation is not None:
        source.triggers.append(_Trigger(str(stmt.relation.relname), stmt.relation.schemaname, stmt))


def _check_idempotent(  # noqa: PLR0912, PLR0915
    source: _Source, stmt: ast.Node, ctx: _Context
) -> None:
    if ctx.guarded:
        return
    where = "unguarded in a DO block" if ctx.in_do else "at top level"

    def need(condition: bool | None, message: str) -> None:
        if not condition:
            source.hit(ctx.start, "idempotent", message, ctx.stmt)

    if isinstance(stmt, ast.CreateStmt):
        need(stmt.if_not_exists, f"CREATE TABLE {_qualified(stmt.relation)}: add IF NOT EXISTS")
    elif isinstance(stmt, ast.IndexStmt):
        need(
            stmt.if_not_exists,
            f"CREATE INDEX {stmt.idxname or '(unnamed)'}: add IF NOT EXISTS (and a name)",
        )
    elif isinstance(stmt, ast.CreateSeqStmt):
        need(stmt.if_not_exists, f"CREATE SEQUENCE {_qualified(stmt.sequence)}: add IF NOT EXISTS")
    elif isinstance(stmt, ast.CreateSchemaStmt):
        need(stmt.if_not_exists, f"CREATE SCHEMA {stmt.schemaname}: add IF NOT EXISTS")
    elif isinstance(stmt, ast.CreateExtensionStmt):
        need(stmt.if_not_exists, f"CREATE EXTENSION {stmt.extname}: add IF NOT EXISTS")
    elif isinstance(stmt, ast.CreateStatsStmt):
        need(stmt.if_not_exists, f"CREATE STATISTICS {_dotted(stmt.defnames)}: add IF NOT EXISTS")
    elif isinstance(stmt, ast.CreateTableAsStmt):
        into = stmt.into.rel if stmt.into is not None else None
        need(stmt.if_not_exists, f"CREATE ... AS {_qualified(into)}: add IF NOT EXISTS")
    elif isinstance(stmt, ast.DefineStmt):
        kind = stmt.kind
        if kind == enums.ObjectType.OBJECT_COLLATION:
            need(
                stmt.if_not_exists,
                f"CREATE COLLATION {_dotted(stmt.defnames)}: add IF NOT EXISTS",
            )
        elif kind == enums.ObjectType.OBJECT_TYPE:
            need(
                False,
                f"CREATE TYPE {_dotted(stmt.defnames)} {where}: "
                + _guard_hint("pg_type", in_do=ctx.in_do),
            )
        elif kind == enums.ObjectType.OBJECT_AGGREGATE:
            need(stmt.replace, f"CREATE AGGREGATE {_dotted(stmt.defnames)}: use CREATE OR REPLACE")
    elif isinstance(stmt, _CREATE_TYPE):
        name = _dotted(getattr(stmt, "typeName", None) or getattr(stmt, "domainname", None))
        if isinstance(stmt, ast.CompositeTypeStmt):
            name = _qualified(stmt.typevar)
        word = "CREATE DOMAIN" if isinstance(stmt, ast.CreateDomainStmt) else "CREATE TYPE"
        need(False, f"{word} {name} {where}: " + _guard_hint("pg_type", in_do=ctx.in_do))
    elif isinstance(stmt, ast.AlterEnumStmt):
        if stmt.newVal is not None and stmt.oldVal is None:
            need(
                stmt.skipIfNewValExists,
                f"ALTER TYPE {_dotted(stmt.typeName)} ADD VALUE {stmt.newVal!r}: add IF NOT EXISTS",
            )
    elif isinstance(stmt, ast.AlterTableStmt):
        _check_idempotent_alter(source, stmt, ctx)
    elif isinstance(stmt, ast.CreateFunctionStmt):
        word = "PROCEDURE" if stmt.is_procedure else "FUNCTION"
        need(stmt.replace, f"CREATE {word} {_dotted(stmt.funcname)}: use CREATE OR REPLACE")
    elif isinstance(stmt, ast.CreateTrigStmt):
        if stmt.isconstraint:
            need(
                False,
                f"CREATE CONSTRAINT TRIGGER {stmt.trigname} cannot be OR REPLACE: "
                + _guard_hint("pg_trigger", in_do=ctx.in_do),
            )
        else:
            need(stmt.replace, f"CREATE TRIGGER {stmt.trigname}: use CREATE OR REPLACE TRIGGER")
    elif isinstance(stmt, ast.ViewStmt):
        need(stmt.replace, f"CREATE VIEW {_qualified(stmt.view)}: use CREATE OR REPLACE VIEW")
    elif isinstance(stmt, ast.RuleStmt):
        need(stmt.replace, f"CREATE RULE {stmt.rulename}: use CREATE OR REPLACE RULE")
    elif isinstance(stmt, ast.CreatePolicyStmt):
        need(
            False,
            f"CREATE POLICY {stmt.policy_name} {where} (it has no IF NOT EXISTS): "
            + _guard_hint("pg_policies", in_do=ctx.in_do),
        )
    elif isinstance(stmt, ast.CreateRoleStmt):
        need(
            False,
            f"CREATE ROLE {stmt.role} {where} (it has no IF NOT EXISTS): "
            + _guard_hint("pg_roles", in_do=ctx.in_do),
        )
    elif isinstance(stmt, ast.DropStmt):
        word = _OBJECT_WORDS.get(stmt.removeType, "object")
        need(stmt.missing_ok, f"DROP {word}: add IF EXISTS")


def _check_idempotent_alter(source: _Source, stmt: ast.AlterTableStmt, ctx: _Context) -> None:
    table = _qualified(stmt.relation)
    for cmd in stmt.cmds or ():
        if not isinstance(cmd, ast.AlterTableCmd):
            continue
        subtype = cmd.subtype
        if subtype == enums.AlterTableType.AT_AddColumn and not cmd.missing_ok:
            column = getattr(cmd.def_, "colname", "?")
            source.hit(
                ctx.start,
                "idempotent",
                f"ALTER TABLE {table} ADD COLUMN {column}: add IF NOT EXISTS",
                ctx.stmt,
            )
        elif subtype in {
            enums.AlterTableType.AT_AddConstraint,
            enums.AlterTableType.AT_AddIndexConstraint,
        }:
            name = getattr(cmd.def_, "conname", None) or "(unnamed)"
            source.hit(
                ctx.at(cmd.def_),
                "idempotent",
                f"ALTER TABLE {table} ADD CONSTRAINT {name} "
                + ("unguarded in a DO block" if ctx.in_do else "has no IF NOT EXISTS")
                + ": "
                + _guard_hint("pg_constraint WHERE conname = ... AND conrelid", in_do=ctx.in_do),
                ctx.stmt,
            )
        elif subtype == enums.AlterTableType.AT_DropConstraint and not cmd.missing_ok:
            source.hit(
                ctx.start,
                "idempotent",
                f"ALTER TABLE {table} DROP CONSTRAINT {cmd.name}: add IF EXISTS",
                ctx.stmt,
            )


def _is_tracking_candidate(stmt: ast.Node) -> bool:
    """Whether ``stmt`` is an INSERT INTO schema_migrations (checked by ``tracking-insert``)."""
    relation = getattr(stmt, "relation", None)
    return (
        isinstance(stmt, ast.InsertStmt)
        and relation is not None
        and relation.relname == TRACKING_TABLE
        and relation.schemaname in {None, "public"}
    )


def _check_no_data(source: _Source, stmt: ast.Node, ctx: _Context) -> None:
    for node in _walk_data(stmt):
        if isinstance(node, _DML):
            relation = getattr(node, "relation", None)
            word = _DML_WORDS[type(node).__name__]
            target = f" {_qualified(relation)}" if relation is not None else ""
            where = " (in a WITH clause)" if node is not stmt else ""
            source.hit(
                ctx.start if node is stmt else ctx.at(node),
                "no-data",
                f"{word}{target}{where}: migrations hold DDL only; move data changes to the "
                "application or a one-off script",
                ctx.stmt,
            )
        elif isinstance(node, ast.SelectStmt) and node.intoClause is not None:
            source.hit(
                ctx.start,
                "no-data",
                f"SELECT INTO {_qualified(node.intoClause.rel)} copies data: use CREATE TABLE "
                "IF NOT EXISTS with explicit columns",
                ctx.stmt,
            )
        elif (
            isinstance(node, ast.CreateTableAsStmt)
            and node.objtype == enums.ObjectType.OBJECT_TABLE
            and not (node.into is not None and node.into.skipData)
        ):
            rel = node.into.rel if node.into is not None else None
            source.hit(
                ctx.start,
                "no-data",
                f"CREATE TABLE {_qualified(rel)} AS copies data: use CREATE TABLE IF NOT "
                "EXISTS with explicit columns",
                ctx.stmt,
            )


def _check_non_destructive(  # noqa: PLR0912
    source: _Source, stmt: ast.Node, ctx: _Context
) -> None:
    def hit(message: str) -> None:
        source.hit(ctx.start, "non-destructive", message, ctx.stmt)

    if isinstance(stmt, ast.DropStmt):
        word = _OBJECT_WORDS.get(stmt.removeType, "object")
        if stmt.removeType in _DESTRUCTIVE_DROPS:
            hit(
                f"DROP {word} loses data and breaks running code; never drop in a "
                "migration: stop using it in the application and leave it in place"
            )
        elif stmt.behavior == enums.DropBehavior.DROP_CASCADE:
            hit(
                f"DROP {word} ... CASCADE can drop dependent tables and columns; drop "
                "exactly what you mean without CASCADE"
            )
    elif isinstance(stmt, ast.TruncateStmt):
        hit("TRUNCATE deletes every row; migrations never remove data")
    elif isinstance(stmt, ast.DropdbStmt):
        hit("DROP DATABASE in a migration; remove it")
    elif isinstance(stmt, ast.AlterTableStmt):
        table = _qualified(stmt.relation)
        for cmd in stmt.cmds or ():
            if not isinstance(cmd, ast.AlterTableCmd):
                continue
            if cmd.subtype == enums.AlterTableType.AT_DropColumn:
                hit(
                    f"ALTER TABLE {table} DROP COLUMN {cmd.name} loses data and breaks "
                    "running code; stop using the column and leave it in place"
                )
            elif cmd.subtype == enums.AlterTableType.AT_AlterColumnType:
                hit(
                    f"ALTER TABLE {table} ALTER COLUMN {cmd.name} TYPE rewrites the table "
                    "and can break running code; add a new column and backfill it instead"
                )
    elif isinstance(stmt, ast.RenameStmt) and stmt.renameType in _BREAKING_RENAMES:
        word = _OBJECT_WORDS.get(stmt.renameType, "object")
        if stmt.subname:
            old = f"{_qualified(stmt.relation)}.{stmt.subname}" if stmt.relation else stmt.subname
        elif stmt.relation is not None:
            old = _qualified(stmt.relation)
        else:
            old = _dotted(stmt.object) if isinstance(stmt.object, tuple) else "?"
        hit(
            f"RENAME {word} {old} TO {stmt.newname} breaks running code that uses the "
            "old name; add the new object and migrate the code first"
        )
    elif isinstance(stmt, ast.AlterObjectSchemaStmt) and stmt.objectType in _BREAKING_RENAMES:
        word = _OBJECT_WORDS.get(stmt.objectType, "object")
        hit(f"ALTER {word} ... SET SCHEMA moves it away from running code; leave it in place")
    elif isinstance(stmt, ast.AlterEnumStmt) and stmt.oldVal is not None:
        hit(
            f"ALTER TYPE {_dotted(stmt.typeName)} RENAME VALUE {stmt.oldVal!r} breaks running "
            "code and stored references; add a new value instead"
        )


def _check_name(
    source: _Source, ctx: _Context, where: int, *, kind: str, name: str | None, prefix: str
) -> None:
    if not name:
        source.hit(
            where,
            "explicit-names",
            f"unnamed {kind}; name it explicitly ({prefix}<table>_<columns>)",
            ctx.stmt,
        )
        return
    if not name.startswith(prefix):
        source.hit(
            where, "explicit-names", f"{kind} {name}: its name must start with {prefix}", ctx.stmt
        )


def _check_constraint(source: _Source, ctx: _Context, node: Any, default_at: int) -> None:
    if not isinstance(node, ast.Constraint):
        return
    known = _CONSTRAINT_PREFIX.get(node.contype)
    if known is None:
        return  # NOT NULL, NULL, DEFAULT, GENERATED, IDENTITY: not named constraints
    prefix, word = known
    where = ctx.at(node) if node.location is not None and node.location >= 0 else default_at
    if not node.conname:
        source.hit(
            where,
            "explicit-names",
            f"unnamed {word} constraint; write CONSTRAINT {prefix}<table>_<columns> {word} ...",
            ctx.stmt,
        )
        return
    _check_name(source, ctx, where, kind=f"{word} constraint", name=node.conname, prefix=prefix)


def _check_names(source: _Source, stmt: ast.Node, ctx: _Context) -> None:  # noqa: PLR0912
    if isinstance(stmt, ast.CreateStmt):
        for element in stmt.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                for constraint in element.constraints or ():
                    _check_constraint(source, ctx, constraint, ctx.at(element))
            else:
                _check_constraint(source, ctx, element, ctx.start)
    elif isinstance(stmt, ast.AlterTableStmt):
        for cmd in stmt.cmds or ():
            if not isinstance(cmd, ast.AlterTableCmd):
                continue
            if cmd.subtype == enums.AlterTableType.AT_AddColumn and isinstance(
                cmd.def_, ast.ColumnDef
            ):
                for constraint in cmd.def_.constraints or ():
                    _check_constraint(source, ctx, constraint, ctx.start)
            elif cmd.subtype in {
                enums.AlterTableType.AT_AddConstraint,
                enums.AlterTableType.AT_AddIndexConstraint,
            }:
                _check_constraint(source, ctx, cmd.def_, ctx.start)
    elif isinstance(stmt, ast.IndexStmt):
        prefix = "uq_" if stmt.unique else "idx_"
        kind = "unique index" if stmt.unique else "index"
        _check_name(source, ctx, ctx.start, kind=kind, name=stmt.idxname, prefix=prefix)
    elif isinstance(stmt, ast.CreateTrigStmt):
        _check_name(source, ctx, ctx.start, kind="trigger", name=stmt.trigname, prefix="trg_")


def _check_non_transactional(source: _Source, stmt: ast.Node, ctx: _Context) -> None:
    what: str | None = None
    if isinstance(stmt, ast.IndexStmt) and stmt.concurrent:
        what = "CREATE INDEX CONCURRENTLY"
    elif isinstance(stmt, ast.DropStmt) and stmt.concurrent:
        what = "DROP INDEX CONCURRENTLY"
    elif isinstance(stmt, ast.ReindexStmt) and any(
        getattr(p, "defname", None) == "concurrently" for p in stmt.params or ()
    ):
        what = "REINDEX CONCURRENTLY"
    elif isinstance(stmt, ast.VacuumStmt):
        what = "VACUUM" if stmt.is_vacuumcmd else "ANALYZE"
        if not stmt.is_vacuumcmd:
            return  # ANALYZE runs inside a transaction
    elif isinstance(stmt, ast.CreatedbStmt | ast.AlterSystemStmt):
        what = "CREATE DATABASE" if isinstance(stmt, ast.CreatedbStmt) else "ALTER SYSTEM"
    elif isinstance(stmt, ast.AlterTableStmt):
        for cmd in stmt.cmds or ():
            if (
                isinstance(cmd, ast.AlterTableCmd)
                and cmd.subtype == enums.AlterTableType.AT_DetachPartition
                and getattr(cmd.def_, "concurrent", False)
            ):
                what = "DETACH PARTITION CONCURRENTLY"
    if what is None:
        return
    if ctx.in_do:
        source.hit(
            ctx.start,
            "transaction-control",
            f"{what} cannot run inside a DO block (it is one transaction); run it as a "
            "top-level statement of a `-- alumdb:no-transaction` file",
            ctx.stmt,
        )
    elif source.transactional:
        source.hit(
            ctx.start,
            "transaction-control",
            f"{what} cannot run inside a transaction; put it in its own file whose first "
            f"line is `{NO_TRANSACTION_DIRECTIVE}`",
            ctx.stmt,
        )


# --- DO blocks -----------------------------------------------------------------------


def _check_do(
    source: _Source, stmt: ast.DoStmt, ctx: _Context, tokens: list[Token], end: int
) -> None:
    body: str | None = None
    language = "plpgsql"
    for arg in stmt.args or ():
        if getattr(arg, "defname", None) == "as":
            body = getattr(arg.arg, "sval", None)
        elif getattr(arg, "defname", None) == "language":
            language = str(getattr(arg.arg, "sval", language)).lower()
    if body is None or language != "plpgsql":
        return
    body_offset = _body_offset(source.text, tokens, ctx.start, end, body)
    tag = "$alumdb_do$"
    while tag in body:
        tag = tag[:-1] + "_$"
    try:
        tree = pglast.parse_plpgsql(f"DO {tag}{body}{tag}")
    except ParseError as exc:
        source.hit(
            ctx.start,
            "syntax",
            f"the DO block's PL/pgSQL does not parse ({exc.args[0]}); fix it",
            None,
        )
        return
    body_lines = [0] + [i + 1 for i, ch in enumerate(body) if ch == "\n"]
    walker = _DoWalker(source, ctx, body, body_offset, body_lines)
    walker.walk(tree, guarded=False)


def _body_offset(text: str, tokens: list[Token], start: int, end: int, body: str) -> int:
    """The absolute offset of a DO body's first character (inside its quotes)."""
    for token in tokens:
        if token.start < start or token.start >= end or token.name != "SCONST":
            continue
        literal = text[token.start : token.end + 1]
        tag = _DOLLAR_TAG.match(literal)
        if tag and literal[len(tag.group()) : len(literal) - len(tag.group())] == body:
            return token.start + len(tag.group())
        if not tag:
            return token.start + 1
    return start


class _DoWalker:
    """Walks the PL/pgSQL tree of one DO block, tracking whether each statement is guarded."""

    def __init__(
        self, source: _Source, ctx: _Context, body: str, offset: int, lines: list[int]
    ) -> None:
        self.source = source
        self.ctx = ctx
        self.body = body
        self.offset = offset
        self.lines = lines

    def walk(self, node: Any, *, guarded: bool) -> None:
        if isinstance(node, list):
            for item in node:
                self.walk(item, guarded=guarded)
            return
        if not isinstance(node, dict):
            return
        if len(node) == 1:
            ((kind, value),) = node.items()
            if isinstance(value, dict) and kind.startswith("PLpgSQL_"):
                self.visit(kind, value, guarded=guarded)
                return
        for value in node.values():
            self.walk(value, guarded=guarded)

    def visit(self, kind: str, value: dict[str, Any], *, guarded: bool) -> None:
        if kind == "PLpgSQL_stmt_block":
            handled = _handles_duplicates(value.get("exceptions"))
            self.walk(value.get("body"), guarded=guarded or handled)
            self.walk(value.get("exceptions"), guarded=guarded)
        elif kind == "PLpgSQL_stmt_if":
            branch = guarded or _is_guard(value.get("cond"))
            self.walk(value.get("then_body"), guarded=branch)
            for elsif in value.get("elsif_list") or ():
                inner = elsif.get("PLpgSQL_if_elsif", {}) if isinstance(elsif, dict) else {}
                self.walk(inner.get("stmts"), guarded=branch or _is_guard(inner.get("cond")))
            self.walk(value.get("else_body"), guarded=branch)
        elif kind == "PLpgSQL_stmt_execsql":
            self.statement(value, guarded=guarded)
        elif kind in {"PLpgSQL_stmt_commit", "PLpgSQL_stmt_rollback"}:
            word = "COMMIT" if kind.endswith("commit") else "ROLLBACK"
            self.source.hit(
                self.locate(value, None),
                "transaction-control",
                f"{word} inside a DO block; remove it (each file runs in its own transaction)",
                self.ctx.stmt,
            )
        else:
            for item in value.values():
                self.walk(item, guarded=guarded)

    def locate(self, value: dict[str, Any], query: str | None) -> int:
        lineno = value.get("lineno")
        if not isinstance(lineno, int) or not 1 <= lineno <= len(self.lines):
            return self.ctx.start
        line_start = self.lines[lineno - 1]
        if query:
            found = self.body.find(query, line_start)
            if found >= 0:
                return self.offset + found
        line_text = self.body[line_start:].split("\n", 1)[0]
        return self.offset + line_start + (len(line_text) - len(line_text.lstrip()))

    def statement(self, value: dict[str, Any], *, guarded: bool) -> None:
        query = value.get("sqlstmt", {}).get("PLpgSQL_expr", {}).get("query")
        if not isinstance(query, str):
            return
        try:
            raws = parse_sql(query)
        except ParseError:
            return  # PL/pgSQL rewrites some statements (INTO ...); the server checks them
        origin = self.locate(value, query)
        for raw in raws:
            start = origin + (raw.stmt_location or 0)
            inner = _Context(
                stmt=self.ctx.stmt, start=start, origin=origin, in_do=True, guarded=guarded
            )
            if isinstance(raw.stmt, ast.TransactionStmt):
                self.source.hit(
                    start,
                    "transaction-control",
                    f"{_transaction_word(raw.stmt)} inside a DO block; remove it",
                    self.ctx.stmt,
                )
                continue
            if raw.stmt is not None:
                _check_statement(self.source, raw.stmt, inner)


def _is_guard(cond: Any) -> bool:
    """Whether an IF condition tests existence (``NOT EXISTS (...)``, ``... IS NULL``)."""
    query = cond.get("PLpgSQL_expr", {}).get("query") if isinstance(cond, dict) else None
    if not isinstance(query, str):
        return False
    try:
        raws = parse_sql(f"SELECT ({query})")
    except ParseError:
        return False
    for node in _walk(raws):
        if isinstance(node, ast.NullTest):
            return True
        if isinstance(node, ast.SubLink) and node.subLinkType == enums.SubLinkType.EXISTS_SUBLINK:
            return True
    return False


def _handles_duplicates(exceptions: Any) -> bool:
    if not isinstance(exceptions, dict):
        return False
    names: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            condition = node.get("PLpgSQL_condition")
            if isinstance(condition, dict) and isinstance(condition.get("condname"), str):
                names.add(condition["condname"].lower())
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(exceptions)
    return any(n.startswith("duplicate_") or n in _GUARD_CONDITIONS for n in names)


# --- tracking insert -----------------------------------------------------------------


def _check_tracking(
    source: _Source,
    raws: Sequence[ast.RawStmt],
    starts: list[int],
    version_name: tuple[int, str] | None,
) -> None:
    version = f"{version_name[0]:03d}" if version_name else "<NNN>"
    name = version_name[1] if version_name else "<name>"
    wanted = (
        f"INSERT INTO {TRACKING_TABLE} (version, name) VALUES ('{version}', '{name}') "
        "ON CONFLICT (version) DO NOTHING;"
    )
    found = [
        i for i, raw in enumerate(raws) if raw.stmt is not None and _is_tracking_candidate(raw.stmt)
    ]
    if not found:
        source.hit(
            len(source.text.rstrip()),
            "tracking-insert",
            f"no tracking insert; end the file with `{wanted}`",
            None,
        )
        return
    for extra in found[1:]:
        source.hit(
            starts[extra],
            "tracking-insert",
            "a second INSERT INTO schema_migrations; keep exactly one, as the last statement",
            extra,
        )
    index = found[0]
    if index != len(raws) - 1 and len(found) == 1:
        source.hit(
            starts[index],
            "tracking-insert",
            "the tracking insert is not the last statement; move it to the end of the file",
            index,
        )
    stmt = raws[index].stmt
    if not isinstance(stmt, ast.InsertStmt):  # pragma: no cover - found says it is
        return
    problem = _tracking_problem(stmt, version_name)
    if problem is not None:
        source.hit(starts[index], "tracking-insert", f"{problem}; write `{wanted}`", index)


def _tracking_problem(  # noqa: PLR0911
    stmt: ast.InsertStmt, version_name: tuple[int, str] | None
) -> str | None:
    columns = [getattr(c, "name", None) for c in stmt.cols or ()]
    if columns != ["version", "name"]:
        return "the tracking insert must list exactly the columns (version, name)"
    if stmt.withClause is not None or stmt.returningClause is not None:
        return "the tracking insert has a WITH or RETURNING clause"
    select = stmt.selectStmt
    rows = getattr(select, "valuesLists", None) if isinstance(select, ast.SelectStmt) else None
    if not rows or len(rows) != 1 or len(rows[0]) != 2:
        return "the tracking insert must be a single VALUES row"
    values = [getattr(getattr(v, "val", None), "sval", None) for v in rows[0]]
    if not all(isinstance(v, str) for v in values):
        return "the tracking insert's values must be string literals"
    if version_name is not None:
        version, name = f"{version_name[0]:03d}", version_name[1]
        if values[0] != version:
            return f"the tracking insert records version {values[0]!r}, not {version!r}"
        if values[1] != name:
            return f"the tracking insert records name {values[1]!r}, not {name!r}"
    conflict = stmt.onConflictClause
    elems = (
        [getattr(e, "name", None) for e in conflict.infer.indexElems or ()]
        if conflict is not None and conflict.infer is not None
        else []
    )
    if (
        conflict is None
        or conflict.action != enums.OnConflictAction.ONCONFLICT_NOTHING
        or elems != ["version"]
    ):
        return "the tracking insert must end with ON CONFLICT (version) DO NOTHING"
    return None


# --- tenancy -------------------------------------------------------------------------


def _check_tenancy(source: _Source) -> None:
    for table in source.tables:
        stmt = table.node
        if stmt.relation is not None and stmt.relation.relpersistence == "t":
            continue  # temporary
        if stmt.partbound is not None or stmt.inhRelations:
            continue  # a partition or child inherits its parent's columns and triggers
        columns = {str(e.colname): e for e in stmt.tableElts or () if isinstance(e, ast.ColumnDef)}
        missing: list[str] = []
        is_tenants = table.name == TENANTS_TABLE
        if not is_tenants:
            missing.extend(_tenant_problems(stmt, columns))
        missing.extend(
            f"add column {column} TIMESTAMPTZ NOT NULL DEFAULT now()"
            for column in ("created_at", "updated_at")
            if column not in columns
        )
        if not any(_is_updated_at_trigger(t, table) for t in source.triggers):
            missing.append(
                f"add `CREATE OR REPLACE TRIGGER trg_{table.name}_updated_at BEFORE UPDATE ON "
                f"{table.name} FOR EACH ROW EXECUTE FUNCTION {UPDATED_AT_FUNCTION}()` to this "
                "file"
            )
        if missing:
            source.hit(
                table.offset,
                "tenant-scoped",
                f"table {table.name}: "
                + "; ".join(missing)
                + " (or, if it is not tenant data, put `-- alumdb: allow tenant-scoped because "
                "<reason>` above it)",
                table.stmt,
            )


def _tenant_problems(stmt: ast.CreateStmt, columns: dict[str, ast.ColumnDef]) -> list[str]:
    tenant = columns.get("tenant_id")
    if tenant is None:
        return [
            "add column tenant_id UUID NOT NULL with CONSTRAINT fk_<table>_tenant FOREIGN "
            "KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE"
        ]
    problems: list[str] = []
    constraints = [c for c in stmt.tableElts or () if isinstance(c, ast.Constraint)]
    column_constraints = [c for c in tenant.constraints or () if isinstance(c, ast.Constraint)]
    has_fk = any(
        c.contype == enums.ConstrType.CONSTR_FOREIGN
        and c.pktable is not None
        and c.pktable.relname == TENANTS_TABLE
        for c in column_constraints
    ) or any(
        c.contype == enums.ConstrType.CONSTR_FOREIGN
        and c.pktable is not None
        and c.pktable.relname == TENANTS_TABLE
        and "tenant_id" in [getattr(a, "sval", None) for a in c.fk_attrs or ()]
        for c in constraints
    )
    if not has_fk:
        problems.append(
            "add CONSTRAINT fk_<table>_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)"
        )
    not_null = bool(tenant.is_not_null) or any(
        c.contype in {enums.ConstrType.CONSTR_NOTNULL, enums.ConstrType.CONSTR_PRIMARY}
        for c in column_constraints
    )
    in_primary_key = any(
        c.contype == enums.ConstrType.CONSTR_PRIMARY
        and "tenant_id" in [getattr(k, "sval", None) for k in c.keys or ()]
        for c in constraints
    )
    if not (not_null or in_primary_key):
        problems.append("make tenant_id NOT NULL")
    return problems


def _is_updated_at_trigger(trigger: _Trigger, table: _Table) -> bool:
    node = trigger.node
    same_table = trigger.table == table.name and (
        trigger.schema is None or table.schema is None or trigger.schema == table.schema
    )
    timing = node.timing or 0
    events = node.events or 0
    function = [str(getattr(n, "sval", n)) for n in node.funcname or ()]
    return (
        same_table
        and bool(node.row)
        and bool(timing & enums.TRIGGER_TYPE_BEFORE)
        and bool(events & enums.TRIGGER_TYPE_UPDATE)
        and bool(function)
        and function[-1] == UPDATED_AT_FUNCTION
    )


# --- waivers -------------------------------------------------------------------------


def _collect_waivers(source: _Source, tokens: list[Token], starts: list[int]) -> None:
    """Attach each waiver comment to its statement; report the ones that are not valid."""
    text = source.text
    comment_only: dict[int, Token] = {}
    first_on_line: set[int] = set()
    for token in tokens:
        line = source.line_of(token.start)
        if line in first_on_line:
            continue
        first_on_line.add(line)
        if token.name == "SQL_COMMENT":
            comment_only[line] = token
    attached: dict[int, int] = {}  # comment line -> statement index
    for index, start in enumerate(starts):
        line = source.line_of(start) - 1
        while line in comment_only:
            attached[line] = index
            line -= 1
    for token in tokens:
        if token.name != "SQL_COMMENT":
            continue
        comment = text[token.start : token.end + 1].rstrip()
        line = source.line_of(token.start)
        if _DIRECTIVE_LIKE.match(comment):
            if line != 1 or comment != NO_TRANSACTION_DIRECTIVE:
                source.hits.append(
                    _Hit(
                        token.start,
                        "transaction-control",
                        f"the no-transaction directive only counts as line 1, written exactly "
                        f"`{NO_TRANSACTION_DIRECTIVE}`; this file runs in a transaction",
                        None,
                    )
                )
            continue
        if not _ALUMDB_COMMENT.match(comment):
            continue
        waiver = _parse_waiver(comment)
        if isinstance(waiver, str):
            source.hits.append(_Hit(token.start, "waiver", waiver, None))
            continue
        statement = attached.get(line) if line in comment_only else None
        if statement is None:
            source.hits.append(
                _Hit(
                    token.start,
                    "waiver",
                    "waiver is not directly above a statement (only comment lines may come "
                    "between); move it onto the line above the statement it excuses",
                    None,
                )
            )
            continue
        source.waived.setdefault(statement, set()).update(waiver)


def _parse_waiver(comment: str) -> frozenset[str] | str:  # noqa: PLR0911
    """The rules a waiver comment silences, or why it is not a valid waiver."""
    match = _WAIVER.match(comment)
    usage = "write `-- alumdb: allow <rule>[, <rule>] because <reason>`"
    if match is None:
        return f"unrecognised alumdb comment; {usage}"
    body = _WAIVER_BODY.match(match["body"])
    if body is None:  # pragma: no cover - the pattern matches any text
        return f"unrecognised alumdb comment; {usage}"
    rules = [r.strip() for r in body["rules"].split(",") if r.strip()]
    reason = (body["reason"] or "").strip()
    if not rules:
        return f"waiver names no rule; {usage}"
    for rule in rules:
        if rule in UNWAIVABLE:
            return f"rule {rule!r} cannot be waived; fix the problem instead"
        if rule not in RULES:
            known = ", ".join(r for r in RULES if r not in UNWAIVABLE)
            return f"waiver names unknown rule {rule!r}; use one of: {known}"
    if body["reason"] is None:
        return f"waiver has no reason; {usage}"
    if not reason:
        return f"waiver's reason is empty; {usage}"
    return frozenset(rules)


def _apply_waivers(source: _Source) -> list[Finding]:
    findings: list[Finding] = []
    for hit in source.hits:
        if (
            hit.stmt is not None
            and hit.rule not in UNWAIVABLE
            and hit.rule in source.waived.get(hit.stmt, set())
        ):
            continue
        line, column = source.position(hit.offset)
        findings.append(Finding(source.path, line, column, hit.rule, hit.message))
    return findings


__all__ = [
    "RULES",
    "UNWAIVABLE",
    "Finding",
    "lint_directory",
    "lint_file",
    "run_squawk",
    "squawk_binary",
]
