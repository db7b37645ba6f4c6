"""The squawk adapter: runs the ``squawk`` binary over migration files and turns its JSON
report into findings (rule ids prefixed ``squawk/``).

squawk reports every rule at one level; the severity is ours. A rule is a warning
when the statement is right on a small table and only a lock on a big one hurts, and
there is a safer way to say ( :data:`WARNINGS`, which adds it to the message); every
other squawk rule is an error. Rules are configured (excluded) in ``.squawk.toml``;
one statement is excused with squawk's own ``-- squawk-ignore <rule>`` comment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alumdb import catalog
from alumdb.errors import LintError
from alumdb.lint.model import Finding, Severity

PREFIX = "squawk/"
TIMEOUT = 300.0
WARNINGS: dict[str, str] = {
    "require-concurrent-index-creation": (
        "Fine on a small or new table. On a big one, writes wait for the whole build: "
        "put `CREATE INDEX CONCURRENTLY IF NOT EXISTS ...` in a file of its own whose "
        "first line is `-- alumdb:no-transaction`."
    ),
    "require-enum-value-ordering": (
        "Appending is fine unless the enum's order means something (job_status does, see "
        "DESIGN.md); say where with `ADD VALUE IF NOT EXISTS 'x' BEFORE|AFTER 'y'`."
    ),
}


def binary() -> Path | None:
    """The ``squawk`` executable: next to the running Python first, then on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    if beside.is_file():
        return beside
    found = shutil.which("squawk")
    return Path(found) if found else None


def run(paths: Sequence[Path], config: Path) -> list[Finding]:
    """Run squawk over ``paths`` with ``config``; its findings, sorted.

    Files whose first line is ``-- alumdb:no-transaction`` are checked with
    ``--no-assume-in-transaction`` (the runner does not wrap them); the rest as the
    configuration says. Raises :class:`LintError` when squawk is missing or fails.
    """
    if not paths:
        return []
    executable = binary()
    if executable is None:
        raise LintError(
            "squawk is not installed (looked next to Python and on PATH); "
            "install the dev extras: pip install -e '.[dev]'"
        )
    if not config.is_file():
        raise LintError(f"{config}: squawk configuration not found; pass the .squawk.toml path")
    in_transaction = [p for p in paths if not _is_no_transaction(p)]
    outside = [p for p in paths if _is_no_transaction(p)]
    findings: list[Finding] = []
    for group, extra in ((in_transaction, []), (outside, ["--no-assume-in-transaction"])):
        if group:
            findings.extend(_run(executable, group, config, extra))
    return sorted(findings)


def _is_no_transaction(path: Path) -> bool:
    try:
        text = catalog.decode(path.read_bytes())
    except OSError:
        return False
    return isinstance(text, str) and catalog.is_no_transaction(text)


def _run(executable: Path, paths: list[Path], config: Path, extra: list[str]) -> list[Finding]:
    command = [str(executable), "--reporter", "json", "--config", str(config), *extra]
    command += [str(p) for p in paths]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=TIMEOUT
        )
    except OSError as exc:
        raise LintError(f"squawk could not be started ({executable}: {exc.strerror})") from None
    except subprocess.TimeoutExpired:
        raise LintError(f"squawk did not finish within {TIMEOUT:.0f} s") from None
    try:
        records = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        records = None
    if not isinstance(records, list):
        detail = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
        raise LintError(f"squawk failed (exit {result.returncode}): {detail[0]}")
    given = {str(p): p for p in paths}
    return [_finding(r, given) for r in records if isinstance(r, dict)]


def _finding(record: dict[str, Any], given: dict[str, Path]) -> Finding:
    file = str(record.get("file", ""))
    rule = str(record.get("rule_name", "unknown"))
    parts = [str(record.get("message", "")).strip(), str(record.get("help") or "").strip()]
    safer = WARNINGS.get(rule)
    if safer is not None:
        parts.append(safer)
    return Finding(
        given.get(file, Path(file)),
        int(record.get("line", 0)) + 1,
        int(record.get("column", 0)) + 1,
        PREFIX + rule,
        " ".join(p for p in parts if p),
        Severity.WARNING if safer is not None else Severity.ERROR,
    )
