"""The apply loop: pending files in order, several per message, each its own transaction.

:class:`Run` holds the state of one run (connection, framing, report, retries);
ordinary files go through :meth:`Run.apply_batch`, ``-- alumdb:no-transaction``
files through :mod:`alumdb.runner.no_transaction`.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import generators, pq
from psycopg.pq.abc import PGresult

from alumdb.catalog import Migration
from alumdb.errors import DriftError, Interrupted, MigrationFailed
from alumdb.runner import message as msg
from alumdb.runner.events import Event, EventSink, Report
from alumdb.runner.locate import failure, line_col, statement_start, statements
from alumdb.runner.lock_retry import LockRetry
from alumdb.runner.locking import begin_locked, end_transaction
from alumdb.runner.watch import watching
from alumdb.tracking import Tracking

SKIPPED = "applied meanwhile by another run"


@dataclass
class Run:
    """The state of one run of the apply loop."""

    conn: psycopg.Connection[Any]
    tracking: Tracking
    framing: msg.Framing
    retry: LockRetry
    report: Report
    on_event: EventSink
    final: Migration  # the run's last file
    current: Migration | None = None  # the file in progress, if any

    def skip(self, migration: Migration, recorded: str | None) -> None:
        """``migration`` was applied meanwhile by another run, whose record says
        ``recorded`` (its checksum): the same file, or :class:`DriftError`."""
        if recorded and recorded != migration.checksum:
            raise DriftError(
                f"{migration.filename}: applied meanwhile by another run, but from "
                f"different content (recorded checksum {recorded[:12]}..., this file "
                f"{migration.checksum[:12]}...): two different files share version "
                f"{migration.version}; deploy one migrations/ folder everywhere and check "
                "`invoke status`"
            )
        self.report.skipped.append(migration)
        self.on_event(Event("skipped", migration, detail=SKIPPED))

    def server_said(self, diag: psycopg.errors.Diagnostic) -> None:
        """A file's own NOTICE or WARNING (RAISE, or the server's): an event."""
        severity = diag.severity_nonlocalized or diag.severity or "NOTICE"
        text = diag.message_primary or ""
        if diag.context:
            context = " / ".join(x.strip() for x in diag.context.splitlines() if x.strip())
            text += f" (CONTEXT: {context})"
        self.on_event(Event("server", self.current, detail=f"{severity}: {text}"))

    def interrupted(self) -> Interrupted:
        """The error for Ctrl-C (after the file's transaction was rolled back)."""
        done = len(self.report.applied)
        where = (
            f"while applying {self.current.filename}: its transaction was rolled back, "
            "nothing of it was applied"
            if self.current is not None
            else "between files: no file was in progress"
        )
        return Interrupted(
            f"interrupted {where}; the {done} file(s) applied before it stay applied; "
            "run migrate again to continue"
        )

    def apply_batch(self, files: list[Migration]) -> int:
        """Apply ``files``, one transaction per file, several per message; return how many
        are settled (applied, or applied meanwhile by another run).

        Every file before the one a message stops at has committed. Fewer than
        ``len(files)`` settled means: retry from the first unsettled file (after a lock
        timeout, with backoff). A failing file raises :class:`MigrationFailed`.
        """
        settled = 0
        opened = False
        while settled < len(files):
            todo = files[settled:]
            message = msg.build(todo, self.framing, self.final, opened=opened)
            progress = _Progress(todo, self)
            error, completed = self._send(message, progress)
            if error is None:
                progress.finish(time.monotonic())
                self.current = None
                return len(files)
            end_transaction(self.conn)
            index = progress.current
            if index is None and len(todo) > 1:
                # Nothing ran: the server refused the whole message (it parses it all
                # before running any of it). Apply the files before the one the error
                # points at (or the first alone), and the culprit in a message of its own.
                return settled + self.apply_batch(todo[: _culprit(message, error) or 1])
            index = index or 0
            settled += index
            statement = message.statement_of(index, completed)
            step = self._settle(
                todo[index], error, offset=message.starts[index], statement=statement
            )
            if step is None:
                return settled  # retried from this file by the caller
            settled += step
            opened = step == 0
            if opened:  # after a wait: skip what the run it waited for has applied
                settled += self._skip_after_wait(files, settled)
        return settled

    def _send(self, message: msg.Message, progress: _Progress) -> tuple[psycopg.Error | None, int]:
        """Run ``message``; its error (if any) and how many statements completed first."""
        self.conn.add_notice_handler(progress.notice)
        try:
            with watching(self.conn, lambda: self.current or progress.files[0], self.on_event):
                results = send(self.conn, message.text)
        except psycopg.Error as exc:
            return exc, 0
        except KeyboardInterrupt:  # psycopg has cancelled the statement
            end_transaction(self.conn)
            raise self.interrupted() from None
        except BaseException:
            end_transaction(self.conn)
            raise
        finally:
            self.conn.remove_notice_handler(progress.notice)
        completed = sum(1 for r in results if r.status != pq.ExecStatus.FATAL_ERROR)
        failed = next((r for r in results if r.status == pq.ExecStatus.FATAL_ERROR), None)
        if failed is None:
            return None, completed
        return pg_errors.error_from_result(failed, encoding=self.conn.info.encoding), completed

    def _skip_after_wait(self, files: list[Migration], settled: int) -> int:
        try:
            count = self._skip_applied(files[settled:])
            if settled + count == len(files):
                self.conn.execute("ROLLBACK")
        except psycopg.Error as exc:
            end_transaction(self.conn)
            raise failure(self.conn, files[min(settled, len(files) - 1)], exc) from None
        return count

    def _skip_applied(self, todo: list[Migration]) -> int:
        """How many files at the head of ``todo`` are applied by now; each reported skipped.

        Runs in the transaction that holds the lock after a wait, so a run that waited
        behind another goes straight to the first file still pending, instead of meeting
        each applied one (and the lock) again.
        """
        applied = self.tracking.applied_among(self.conn, [m.version for m in todo])
        count = 0
        for migration in todo:
            if migration.version not in applied:
                break
            self.skip(migration, applied[migration.version])
            count += 1
        return count

    def _settle(
        self, migration: Migration, error: psycopg.Error, *, offset: int, statement: int | None
    ) -> int | None:
        """What to do about the file a message stopped at, after the rollback.

        1: it was applied meanwhile by another run (skipped). 0: another run held the
        lock; this waited for it in a new transaction, open now, where the file goes on.
        ``None``: a lock timeout; retry the file after the backoff. Otherwise raises.
        """
        if error.sqlstate == msg.APPLIED_SQLSTATE:
            self.skip(migration, error.diag.message_detail)
            return 1
        if error.sqlstate == msg.LOCK_BUSY_SQLSTATE:
            # Wait for the lock holding no table lock, and without the file's lock_timeout.
            try:
                self.report.waited += begin_locked(
                    self.conn, self.on_event, self.retry.wait_for_lock
                )
            except psycopg.Error as exc:
                end_transaction(self.conn)
                raise failure(self.conn, migration, exc) from None
            except KeyboardInterrupt:
                end_transaction(self.conn)
                raise self.interrupted() from None
            except BaseException:
                end_transaction(self.conn)
                raise
            return 0
        if isinstance(error, pg_errors.LockNotAvailable):
            # Rolled back: the session waits for nothing, so it can ask who blocked it.
            text, where = _statement(migration, statement)
            step = self.retry.after_timeout(self.conn, migration, text, where=where)
            self.on_event(Event("retrying", migration, detail=step.detail))
            time.sleep(step.delay)
            return None
        if error.sqlstate == msg.STRAY_SQLSTATE:
            raise MigrationFailed(
                f"{migration.filename}: the tracking insert records version "
                f"{error.diag.message_detail!r}, name {error.diag.message_hint!r}, not "
                f"{migration.version!r}, {migration.name!r}; make the INSERT INTO "
                "schema_migrations at its end match the file name (rolled back: nothing of "
                "this file was applied)"
            )
        raise failure(self.conn, migration, error, offset=offset, statement=statement)


def send(conn: psycopg.Connection[Any], text: str) -> list[PGresult]:
    """Send ``text`` (simple protocol, several statements) and return every result.

    Unlike ``conn.execute``, which raises at the first error and drops the results
    before it, this keeps them: the statements that completed before an error tell
    which statement failed, without running anything again.
    """
    with conn.lock:
        conn.pgconn.send_query(text.encode())
        return conn.wait(generators.execute(conn.pgconn))


def _statement(migration: Migration, statement: int | None) -> tuple[str | None, str]:
    """The text of statement ``statement`` of the file and its ``:line:col`` (``None``
    and ``""`` when it cannot be told: the error came from around the file)."""
    pieces = statements(migration.sql) if statement is not None else []
    if statement is None or not 0 <= statement < len(pieces):
        return None, ""
    start = statement_start(migration.sql, pieces[statement])
    line, col = line_col(migration.sql, start)
    return migration.sql[start : pieces[statement].stop], f":{line}:{col}"


def _culprit(message: msg.Message, error: psycopg.Error) -> int:
    """The index of the file of ``message`` that ``error``'s position points into (or 0)."""
    position = error.diag.statement_position
    if not position:
        return 0
    return max(0, bisect.bisect_right(message.starts, int(position) - 1) - 1)


class _Progress:
    """Turns the start notices of a message into live ``applied`` events."""

    def __init__(self, files: list[Migration], run: Run) -> None:
        self.files = files
        self.run = run
        self.on_event = run.on_event
        self.report = run.report
        self.started: list[float] = []  # monotonic time each file started
        self.reported = 0  # files reported applied

    def notice(self, diag: psycopg.errors.Diagnostic) -> None:
        message = diag.message_primary or ""
        if not message.startswith(msg.START_NOTICE):
            self.run.server_said(diag)
            return
        if len(self.started) == len(self.files):
            return
        if message[len(msg.START_NOTICE) :] != self.files[len(self.started)].version:
            return
        now = time.monotonic()
        if self.started:  # the file before this one has committed
            self.applied(len(self.started) - 1, now)
        self.started.append(now)
        self.run.current = self.files[len(self.started) - 1]
        self.on_event(Event("applying", self.run.current))

    def applied(self, index: int, now: float) -> None:
        migration = self.files[index]
        seconds = now - self.started[index]
        self.reported = index + 1
        self.report.applied.append((migration, seconds))
        self.on_event(Event("applied", migration, seconds))

    def finish(self, now: float) -> None:
        """The message ran to its end: every file of it has committed."""
        if len(self.started) < len(self.files):  # notices lost on the way: no timings
            self.started += [now] * (len(self.files) - len(self.started))
        for index in range(self.reported, len(self.files)):
            self.applied(index, now)

    @property
    def current(self) -> int | None:
        """The file the message was running (the last announced), if any."""
        return len(self.started) - 1 if self.started else None
