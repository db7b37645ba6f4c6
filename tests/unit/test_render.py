"""What the tasks print, without a database: alumdb.render's lines for the engine's reports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest

from alumdb import render
from alumdb.catalog import Migration
from alumdb.drift import Comparison, Difference
from alumdb.environment import Endpoint, Environment, UpResult
from alumdb.errors import ExitCode
from alumdb.lint import Finding, Severity
from alumdb.replay import Result
from alumdb.runner import Event, Report
from alumdb.seed import Progress
from alumdb.seed import Report as SeedReport
from alumdb.status import Entry
from alumdb.target import Connected, Target

POINT = Endpoint("127.0.0.1", 5432, "alumoutreach", "secret", "alumoutreach", "pg-dev")
WHERE = "host=127.0.0.1 port=5432 user=alumoutreach dbname=alumoutreach password=***"


def migration(number: int) -> Migration:
    name = f"step{number}"
    return Migration(number, name, Path(f"/m/{number:03d}_{name}.sql"), "", "0" * 64, True)


# --- start-up and errors ------------------------------------------------------------


def test_up_says_whether_it_started_and_where() -> None:
    assert render.up(UpResult(POINT, started=True, waited=3.21), WHERE) == (
        f"postgres started, ready in 3.2s: container pg-dev, listening on {WHERE}"
    )
    assert render.up(UpResult(POINT, started=False, waited=0.0), WHERE) == (
        f"postgres running: container pg-dev, listening on {WHERE}"
    )


def test_migrate_start_names_the_compose_environment_or_the_url() -> None:
    env = Environment("dev", Path("/p"), Path("/p/docker-compose.dev.yml"), "alumoutreach-dev")
    started = Connected(cast(Any, None), WHERE, UpResult(POINT, True, 4.04))
    assert render.migrate_start(Target(env, None), started) == [
        "postgres started, ready in 4.0s",
        f"migrating dev environment (docker-compose.dev.yml) at {WHERE}",
    ]
    by_url = Connected(cast(Any, None), WHERE, None)
    assert render.migrate_start(Target(None, {"host": "db"}), by_url) == [f"migrating {WHERE}"]


def test_an_unexpected_database_error_is_its_first_line_and_an_exit_code() -> None:
    lost = psycopg.OperationalError("server closed the connection\nunexpectedly")
    assert render.database_error(lost) == (
        "error: database error: server closed the connection",
        ExitCode.UNREACHABLE,
    )
    other = psycopg.errors.UniqueViolation("duplicate key value")
    assert render.database_error(other) == (
        "error: database error: duplicate key value",
        ExitCode.MIGRATION_FAILED,
    )
    assert render.database_error(psycopg.Error("")) == ("error: database error: Error", 7)


# --- migrate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (Event("applied", migration(3), 0.0123), f"  applied   {'003_step3.sql':<40}       12 ms"),
        (
            Event("skipped", migration(4), detail="applied by another run"),
            f"  skipped   {'004_step4.sql':<40} (applied by another run)",
        ),
        (Event("server", migration(5), detail="NOTICE: x"), "  005_step5.sql: NOTICE: x"),
        (Event("server", None, detail="WARNING: y"), "  server: WARNING: y"),
        (Event("waiting", None, detail="for the lock"), "  waiting for the lock"),
        (Event("retrying", migration(6), detail="in 0.4s"), "  retrying 006_step6.sql: in 0.4s"),
        (
            Event("running", migration(8), 5.0, "5s so far; the server is working on it"),
            "  running 008_step8.sql: 5s so far; the server is working on it",
        ),
        (Event("applying", migration(7)), None),
    ],
)
def test_each_event_is_one_line_or_none(event: Event, line: str | None) -> None:
    assert render.event(event) == line


def test_migrate_summary_after_a_run() -> None:
    report = Report(False, applied=[(migration(4), 0.1)], already_applied=3, seconds=1.234)
    assert render.migrate_summary(report, None) == ["done: 1 applied in 1.23s (3 already applied)"]
    report.skipped, report.waited = [migration(5)], 2.0
    assert render.migrate_summary(report, None) == [
        "done: 1 applied in 1.23s (3 already applied, 1 applied by another run,"
        " waited 2.0s for another run)"
    ]
    assert render.migrate_summary(Report(False, already_applied=13), None) == [
        "nothing to do: 13 applied, the database is up to date"
    ]


def test_migrate_summary_of_a_dry_run_and_of_a_target() -> None:
    dry = Report(True, planned=[migration(4), migration(5)], adopted=[migration(2)])
    assert render.migrate_summary(dry, None) == [
        "  would apply 004_step4.sql",
        "  would apply 005_step5.sql",
        "  would record the checksum of 002_step2.sql (applied without one)",
        "dry run: 2 to apply; nothing was changed",
    ]
    assert render.migrate_summary(Report(True), None) == [
        "dry run: nothing to apply, the database is up to date"
    ]
    held = Report(False, held_back=[migration(8), migration(9)], already_applied=7)
    assert render.migrate_summary(held, "007") == [
        "nothing to apply up to --target 007: 7 applied; 2 pending after the target"
        " (008_step8.sql first)"
    ]


# --- status -------------------------------------------------------------------------


AT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
ENTRIES = [
    Entry("001", "init", "applied", "001_init.sql", AT, 42),
    Entry("002", "tenants", "changed", "002_tenants.sql", detail="the file's content changed"),
    Entry("003", "contacts", "pending", "003_contacts.sql"),
]  # fmt: skip
COUNTS: Any = {"applied": 1, "pending": 1, "changed": 1, "missing": 0}


def test_status_table() -> None:
    assert render.status_table(WHERE, ENTRIES, COUNTS) == [
        WHERE,
        "VERSION  NAME                             STATE     EXECUTED AT                DURATION",
        "001      init                             applied   2026-01-02 03:04:05+0000      42 ms",
        "002      tenants                          changed   -                                 -"
        "  the file's content changed",
        "003      contacts                         pending   -                                 -",
        "1 applied, 1 pending, 1 changed, 0 missing",
    ]


def test_status_json_is_one_document() -> None:
    document = json.loads(render.status_json(WHERE, ENTRIES, COUNTS, ok=False))
    assert document["database"] == WHERE
    assert document["ok"] is False
    assert document["summary"] == COUNTS
    assert [m["state"] for m in document["migrations"]] == ["applied", "changed", "pending"]
    assert document["migrations"][0]["executed_at"] == "2026-01-02T03:04:05+00:00"


# --- lint ---------------------------------------------------------------------------


def finding(line: int, severity: Severity = Severity.ERROR) -> Finding:
    return Finding(Path("m/002_x.sql"), line, 1, "idempotent", "say IF NOT EXISTS", severity)


def test_lint_sorts_findings_and_ends_with_the_summary() -> None:
    findings = [finding(9, Severity.WARNING), finding(2)]
    assert render.lint(findings, 13, strict=False, failing=True) == [
        "m/002_x.sql:2:1 idempotent say IF NOT EXISTS",
        "m/002_x.sql:9:1 idempotent warning: say IF NOT EXISTS",
        "13 files checked: 1 error(s), 1 warning(s)",
    ]
    assert render.lint([], 13, strict=True, failing=False) == ["13 files checked: no findings"]


def test_lint_says_when_strict_made_warnings_fail() -> None:
    warning = [finding(9, Severity.WARNING)]
    assert render.lint(warning, 3, strict=True, failing=True)[-1] == (
        "3 files checked: 0 error(s), 1 warning(s) (--strict)"
    )
    assert render.lint(warning, 3, strict=False, failing=False)[-1] == (
        "3 files checked: 0 error(s), 1 warning(s)"
    )


# --- drift --------------------------------------------------------------------------


def drift_result(*differences: Difference) -> Result:
    comparison = Comparison(differences=list(differences))
    return Result(comparison, (migration(1), migration(2)), "shadow_x", ["a note"], 1.26)


def test_drift_lines_and_verdicts() -> None:
    extra = Difference("+", "index", "idx_x", None, "CREATE INDEX idx_x ON t (a)")
    drifted = drift_result(extra)
    assert render.drift_lines(drifted) == ["a note", extra.line()]
    assert render.drift_verdict(drifted) == "drift: 1 difference(s) from the 2 recorded migrations"
    assert render.drift_verdict(drift_result()) == (
        "no drift: the schema is what the 2 recorded migrations make (1.3s)"
    )
    document = json.loads(render.drift_json(drifted, WHERE))
    assert document["identical"] is False
    assert document["replayed"] == ["001", "002"]
    assert document["differences"] == [extra.to_json()]
    assert json.loads(render.drift_json(drift_result(), WHERE))["identical"] is True


# --- seed ---------------------------------------------------------------------------


def test_seed_summary_lines_up_the_counts() -> None:
    report = SeedReport(rows={"tenants": 2, "contacts": 12000}, seeded=["a", "b"], seconds=3.14)
    assert render.seed_summary(report) == [
        "  tenants             2",
        "  contacts       12,000",
        "done: 12,002 rows for 2 tenant(s) in 3.1s",
    ]
    report.skipped = ["c"]
    assert render.seed_summary(report)[-1].endswith("; skipped already seeded: c")


def test_seed_progress_bar_fills_with_tenants_and_tables() -> None:
    first = render.seed_progress(Progress(1, 2, 1234, "users"))
    assert first.startswith("[" + "." * render.BAR_WIDTH + "] tenant 1/2        1,234 rows  users")
    last = render.seed_progress(Progress(2, 2, 99, "pipeline_failures"))
    assert last.startswith("[" + "#" * render.BAR_WIDTH + "] tenant 2/2")
