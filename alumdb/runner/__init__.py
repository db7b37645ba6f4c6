"""Applies pending migrations to a database: plan, lock, one transaction per file, record.

Laid out by job, like Alembic's command / context / version table:

* :mod:`.plan`: what to apply and every check that needs no write (also ``--dry-run``);
* :mod:`alumdb.tracking`: the one owner of ``schema_migrations`` and its audit table;
* :mod:`.locking`: the migration lock; :mod:`.lock_retry`: what to do after a lock timeout;
* :mod:`.message`: the text of the messages that carry files (pure);
* :mod:`.apply`: the apply loop and its state; :mod:`.no_transaction`: the other path;
* :mod:`.locate`: which file, line and column an error belongs to.

Guarantees (each has a test; see the README's "Guarantees"):

* The whole folder is validated and compared with ``schema_migrations`` before
  anything runs: a changed or missing applied file, or a pending file numbered
  below the highest applied one, stops the run with the database untouched.
* One run at a time, and never two runs inside one file: each file's transaction
  first takes the transaction-scoped advisory lock, then re-checks whether the file
  was applied meanwhile. Transaction-scoped locks work through a pooler in
  transaction mode (session locks do not).
* A file is all or nothing: it runs in its own transaction together with its
  ``schema_migrations`` row and checksum, so a failure leaves nothing of it.
* Each file runs with a short ``lock_timeout`` (the longest the application can stall
  behind one of its statements); a file that does not get its lock is rolled back and
  retried with backoff and full jitter until its budget is spent, each retry naming
  the session that holds the lock (:mod:`.lock_retry`). Waiting for another run's
  migration lock is bounded too.
* Every connection and every file shows in ``pg_stat_activity``: the task layer
  connects as :data:`APPLICATION_NAME`, and each file's transaction sets
  ``application_name`` to ``alumdb migrate NNN_name.sql`` while it runs.
* Every transaction but the run's last commits with ``synchronous_commit = off``
  (the last one flushes the WAL of all before it): a crash can lose only whole
  files, never part of one, and the next run re-applies them.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from alumdb import retry
from alumdb import status as status_mod
from alumdb import tracking as tracking_mod
from alumdb.catalog import Catalog
from alumdb.errors import UsageError
from alumdb.runner import accept, message, no_transaction
from alumdb.runner.apply import Run
from alumdb.runner.events import Event, EventKind, EventSink, Report, ignore
from alumdb.runner.lock_retry import DEFAULT_WAIT_FOR_LOCK, LockRetry
from alumdb.runner.locking import (
    ADVISORY_LOCK_KEY,
    end_transaction,
    locked,
    may_create_temporary,
)
from alumdb.runner.message import APPLICATION_NAME, BATCH_FILES
from alumdb.runner.plan import (
    DEFAULT_LOCK_BUDGET,
    DEFAULT_LOCK_TIMEOUT,
    Options,
    Plan,
    check_options,
    make_plan,
    require_migrations,
    target_number,
)

__all__ = [
    "ADVISORY_LOCK_KEY",
    "APPLICATION_NAME",
    "BATCH_FILES",
    "DEFAULT_LOCK_BUDGET",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_WAIT_FOR_LOCK",
    "Event",
    "EventKind",
    "EventSink",
    "Options",
    "Plan",
    "Report",
    "accept_checksum",
    "check_options",
    "make_plan",
    "migrate",
    "read_status",
    "target_number",
]


def read_status(conn: psycopg.Connection[Any], catalog: Catalog) -> list[status_mod.Entry]:
    return status_mod.compare(catalog, tracking_mod.read_applied(conn))


def _require_autocommit(conn: psycopg.Connection[Any]) -> None:
    """The runner opens and ends each transaction itself (``BEGIN`` ... ``COMMIT``)."""
    if not conn.autocommit:
        raise UsageError(
            "the runner needs an autocommit connection (it opens each file's transaction "
            "itself): connect with autocommit=True, as alumdb.database.connect does"
        )


def migrate(
    conn: psycopg.Connection[Any],
    catalog: Catalog,
    options: Options | None = None,
    on_event: EventSink = ignore,
) -> Report:
    """Apply the pending migrations of ``catalog`` (up to ``options.target``)."""
    _require_autocommit(conn)
    require_migrations(catalog)
    options = options or Options()
    check_options(options)
    started = time.monotonic()
    tracking = tracking_mod.locate(conn)
    columns = tracking.columns(conn)
    entries = status_mod.compare(catalog, tracking.read(conn, columns))
    plan = make_plan(catalog, entries, options)
    report = Report(
        dry_run=options.dry_run, planned=list(plan.pending), held_back=list(plan.held_back)
    )
    report.already_applied = plan.already_applied
    if options.dry_run:
        report.adopted = list(plan.adopt)
        report.seconds = time.monotonic() - started
        return report
    _prepare_tracking(
        conn,
        tracking=tracking,
        columns=columns,
        plan=plan,
        on_event=on_event,
        report=report,
        bound=options.wait_for_lock,
    )
    if plan.pending:
        run = Run(
            conn=conn,
            tracking=tracking,
            framing=message.Framing(tracking, options.lock_timeout, may_create_temporary(conn)),
            retry=LockRetry(
                retry.Policy(lock_timeout=options.lock_timeout, budget=options.lock_budget),
                wait_for_lock=options.wait_for_lock,
            ),
            report=report,
            on_event=on_event,
            final=plan.pending[-1],
        )
        try:
            _apply_all(run, plan)
        except KeyboardInterrupt:  # between files: backing off, or waiting for the lock
            end_transaction(conn)
            raise run.interrupted() from None
    report.seconds = time.monotonic() - started
    return report


def _prepare_tracking(
    conn: psycopg.Connection[Any],
    *,
    tracking: tracking_mod.Tracking,
    columns: set[str],
    plan: Plan,
    on_event: EventSink,
    report: Report,
    bound: float,
) -> None:
    """Upgrade an older tracking table, and adopt rows the compose loop wrote."""
    if columns and not columns >= tracking_mod.NEEDED_COLUMNS:
        with locked(conn, on_event, bound=bound) as waited:
            report.waited += waited
            tracking.upgrade(conn)
        added = ", ".join(sorted(tracking_mod.NEEDED_COLUMNS - columns))
        on_event(Event("upgraded", detail=f"added {added}"))
    if plan.adopt:
        with locked(conn, on_event, bound=bound) as waited:
            report.waited += waited
            report.adopted = tracking.adopt(conn, plan.adopt)
        if report.adopted:
            on_event(Event("adopted", detail=f"{len(report.adopted)} applied without a checksum"))


def _apply_all(run: Run, plan: Plan) -> None:
    """The loop: batches of ordinary files, and no-transaction files one by one."""
    position = 0
    while position < len(plan.pending):
        migration = plan.pending[position]
        if migration.transactional:
            position += run.apply_batch(message.batch(plan.pending, position, plan.alone))
            continue
        run.on_event(Event("applying", migration))
        seconds = no_transaction.apply(run, migration)
        if seconds is not None:
            run.report.applied.append((migration, seconds))
            run.on_event(Event("applied", migration, seconds))
        position += 1


def accept_checksum(
    conn: psycopg.Connection[Any], catalog: Catalog, version: str, reason: str
) -> tuple[str | None, str]:
    """See :func:`alumdb.runner.accept.accept_checksum`."""
    _require_autocommit(conn)
    return accept.accept_checksum(conn, catalog, version, reason)
