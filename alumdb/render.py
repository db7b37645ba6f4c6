"""What the tasks print: the engine's reports turned into lines of text.

Pure functions: each takes what an engine function returned and gives back the lines
(or the JSON document) a task prints; nothing here prints, connects or exits, so
every line is tested without a database (``tests/unit/test_render.py``). The task
layer decides where a line goes and which exit code follows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from alumdb.errors import ExitCode
from alumdb.seed import tables as seed_tables

if TYPE_CHECKING:  # the engine's report types; importing them here would load the engine
    import psycopg

    from alumdb.environment import UpResult
    from alumdb.lint import Finding
    from alumdb.replay import Result as DriftResult
    from alumdb.runner import Event, Report
    from alumdb.seed import Progress
    from alumdb.seed import Report as SeedReport
    from alumdb.status import Entry, State
    from alumdb.target import Connected, Target

INTERRUPTED_NOTE = "no file was in progress, nothing was left half done"
BAR_WIDTH = 30  # characters of the seed's progress bar


def database_error(exc: psycopg.Error) -> tuple[str, ExitCode]:
    """A database error the engine did not expect: its first line, and the exit code
    (a lost connection is "unreachable", anything else a failed migration)."""
    import psycopg  # loaded already: ``exc`` is one of its errors

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lost = isinstance(exc, psycopg.OperationalError)
    return (
        f"error: database error: {text}",
        ExitCode.UNREACHABLE if lost else ExitCode.MIGRATION_FAILED,
    )


def up(up: UpResult, where: str) -> str:
    """``invoke up``: whether it started, and where the database listens."""
    state = f"started, ready in {up.waited:.1f}s" if up.started else "running"
    return f"postgres {state}: container {up.endpoint.container}, listening on {where}"


# --- migrate ------------------------------------------------------------------------


def migrate_start(resolved: Target, connected: Connected) -> list[str]:
    """The first lines of ``invoke migrate``: whether it started the database, and which."""
    lines = []
    if connected.up is not None and connected.up.started:
        lines.append(f"postgres started, ready in {connected.up.waited:.1f}s")
    if resolved.env is None:
        return [*lines, f"migrating {connected.where}"]
    return [*lines, f"migrating {resolved.describe()} at {connected.where}"]


def event(event: Event) -> str | None:
    """One line of ``invoke migrate``'s progress (``None``: an event it does not show)."""
    m = event.migration
    if event.kind == "applied" and m is not None:
        return f"  applied   {m.filename:<40} {event.seconds * 1000:8.0f} ms"
    if event.kind == "skipped" and m is not None:
        return f"  skipped   {m.filename:<40} ({event.detail})"
    if event.kind == "server":
        return f"  {m.filename if m is not None else 'server'}: {event.detail}"
    if event.kind in {"waiting", "retrying", "adopted", "upgraded", "running"}:
        name = f" {m.filename}:" if m is not None else ""
        return f"  {event.kind}{name} {event.detail}"
    return None


def migrate_summary(report: Report, target: str | None) -> list[str]:
    """The summary of ``invoke migrate``: what was applied, or would be with --dry-run."""
    if report.held_back and not report.planned:
        first = report.held_back[0].filename
        return [
            f"nothing to apply up to --target {target}: {report.already_applied} applied;"
            f" {len(report.held_back)} pending after the target ({first} first)"
        ]
    if report.dry_run:
        lines = [] if report.planned else ["dry run: nothing to apply, the database is up to date"]
        lines += [f"  would apply {m.filename}" for m in report.planned]
        lines += [
            f"  would record the checksum of {m.filename} (applied without one)"
            for m in report.adopted
        ]
        if report.planned:
            lines.append(f"dry run: {len(report.planned)} to apply; nothing was changed")
        return lines
    if not report.applied and not report.skipped:
        return [f"nothing to do: {report.already_applied} applied, the database is up to date"]
    waited = f", waited {report.waited:.1f}s for another run" if report.waited >= 0.05 else ""
    skipped = f", {len(report.skipped)} applied by another run" if report.skipped else ""
    return [
        f"done: {len(report.applied)} applied in {report.seconds:.2f}s"
        f" ({report.already_applied} already applied{skipped}{waited})"
    ]


# --- status -------------------------------------------------------------------------


def status_table(where: str, entries: Sequence[Entry], counts: Mapping[State, int]) -> list[str]:
    """``invoke status``: the database, one row per version, then the count per state."""
    lines = [
        where,
        f"{'VERSION':<8} {'NAME':<32} {'STATE':<9} {'EXECUTED AT':<25} {'DURATION':>9}",
    ]
    for e in entries:
        when = e.executed_at.strftime("%Y-%m-%d %H:%M:%S%z") if e.executed_at else "-"
        took = f"{e.duration_ms} ms" if e.duration_ms is not None else "-"
        note = f"  {e.detail}" if e.detail else ""
        lines.append(f"{e.version:<8} {e.name:<32} {e.state:<9} {when:<25} {took:>9}{note}")
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return lines


def status_json(where: str, entries: Sequence[Entry], counts: Mapping[State, int], ok: bool) -> str:
    """``invoke status --json``: the same, as one document for scripts."""
    document = {
        "database": where,
        "migrations": [e.to_json() for e in entries],
        "summary": dict(counts),
        "ok": ok,
    }
    return json.dumps(document, indent=2)


# --- lint ---------------------------------------------------------------------------


def lint(findings: Sequence[Finding], files: int, *, strict: bool, failing: bool) -> list[str]:
    """``invoke lint``: one line per finding in file order, then the summary (last line)."""
    from alumdb.lint import Severity  # loaded already: the findings are the linter's

    lines = [str(finding) for finding in sorted(findings)]
    if not findings:
        return [*lines, f"{files} files checked: no findings"]
    warnings = sum(1 for f in findings if f.severity is Severity.WARNING)
    summary = f"{files} files checked: {len(findings) - warnings} error(s), {warnings} warning(s)"
    if failing and strict and warnings:
        summary += " (--strict)"
    return [*lines, summary]


# --- drift --------------------------------------------------------------------------


def drift_lines(result: DriftResult) -> list[str]:
    """``invoke drift``: its notes, then one line per difference."""
    return [*result.notes, *(d.line() for d in result.comparison.differences)]


def drift_json(result: DriftResult, where: str) -> str:
    """``invoke drift --json``."""
    differences = result.comparison.differences
    document = {
        "database": where,
        "shadow": result.shadow,
        "replayed": [m.version for m in result.replayed],
        "identical": not differences,
        "differences": [d.to_json() for d in differences],
        "notes": result.notes,
    }
    return json.dumps(document, indent=2)


def drift_verdict(result: DriftResult) -> str:
    """The last line of ``invoke drift``: drifted (the error's text) or not."""
    replayed = len(result.replayed)
    if result.comparison.differences:
        return (
            f"drift: {len(result.comparison.differences)} difference(s) from the "
            f"{replayed} recorded migrations"
        )
    return (
        f"no drift: the schema is what the {replayed} recorded migrations make "
        f"({result.seconds:.1f}s)"
    )


# --- seed ---------------------------------------------------------------------------


def seed_progress(p: Progress) -> str:
    """The seed's progress bar: the share of all tenants' tables written so far."""
    names = seed_tables.NAMES
    done = p.tenant - 1 + (names.index(p.table) + 1) / len(names)
    filled = int(BAR_WIDTH * done / p.tenants)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"[{bar}] tenant {p.tenant}/{p.tenants} {p.rows:>12,} rows  {p.table:<24}"


def seed_summary(report: SeedReport) -> list[str]:
    """``invoke seed``: rows per table, then the total."""
    width = max(len(t) for t in report.rows)
    lines = [f"  {table:<{width}} {count:>12,}" for table, count in report.rows.items()]
    skipped = f"; skipped already seeded: {', '.join(report.skipped)}" if report.skipped else ""
    lines.append(
        f"done: {sum(report.rows.values()):,} rows for {len(report.seeded)} tenant(s)"
        f" in {report.seconds:.1f}s{skipped}"
    )
    return lines
