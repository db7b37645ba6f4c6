"""What to do after a statement met its ``lock_timeout`` (SQLSTATE 55P03), and how long
to wait for another run's migration lock.

The one decision point for lock-timeout retries: after the file's transaction (or, in
a ``-- alumdb:no-transaction`` file, the statement) rolled back, the apply loop asks
:meth:`LockRetry.after_timeout`, which reads who holds the lock (on the same
connection, which waits for nothing any more: :mod:`alumdb.blockers`) and either
returns the pause before the next attempt with the line that says so, or raises the
:class:`MigrationFailed` (exit 7) that names the blocker and the SQL to end it. The
pauses and the budget are :mod:`alumdb.retry`'s.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from alumdb import blockers, retry
from alumdb.catalog import Migration
from alumdb.errors import MigrationFailed

# How long a run waits for another run's migration lock before giving up (seconds):
# longer than a deploy's migrations normally take, short enough that a run stuck
# behind an abandoned session says so instead of waiting without end.
DEFAULT_WAIT_FOR_LOCK = 300.0


@dataclass(frozen=True)
class Retry:
    """The pause before the next attempt, and the line that reports it."""

    delay: float
    detail: str


@dataclass
class LockRetry:
    """The lock waits of one run: the retry policy of each file, and the bound on
    waiting for another run's migration lock."""

    policy: retry.Policy = field(default_factory=retry.Policy)
    wait_for_lock: float = DEFAULT_WAIT_FOR_LOCK
    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random
    budgets: dict[str, retry.Budget] = field(default_factory=dict)  # by version

    def after_timeout(
        self,
        conn: psycopg.Connection[Any],
        migration: Migration,
        statement: str | None,
        *,
        where: str = "",
        transactional: bool = True,
        final: bool = False,
    ) -> Retry:
        """After the rollback: who holds the lock, and the pause before trying again.

        ``statement``: the text of the statement that timed out, when known (else the
        whole file is searched for the relations it names). ``where``: ``:line:col`` of
        that statement, for the final error. Raises :class:`MigrationFailed` once the
        file's budget is spent, or at once with ``final`` (a statement that already
        waited the whole budget).
        """
        text = statement if statement is not None else migration.sql
        relations = blockers.relations_in(text)
        mode = blockers.lock_mode(text) if statement is not None else "AccessExclusiveLock"
        found = blockers.holding(conn, relations or None, mode)
        budget = self.budgets.get(migration.version)
        if budget is None:
            budget = self.budgets[migration.version] = retry.Budget(
                self.policy, clock=self.clock, rand=self.rand
            )
        if final:  # the statement itself waited the whole budget
            budget.started = min(budget.started, self.clock() - self.policy.budget)
            budget.attempts += 1
        delay = None if final else budget.next_delay()
        waited_for = _relation(found, relations)
        if delay is None:
            raise MigrationFailed(
                self._gave_up(
                    migration,
                    budget=budget,
                    waited_for=waited_for,
                    found=found,
                    where=where,
                    transactional=transactional,
                )
            )
        detail = (
            f"lock on {waited_for} not granted within {self.policy.lock_timeout:g}s "
            f"(attempt {budget.attempts}); {_holders(found)}; retrying in {delay:.2f}s, "
            f"{budget.remaining:.1f}s of the {self.policy.budget:g}s budget left"
        )
        return Retry(delay, detail)

    def _gave_up(
        self,
        migration: Migration,
        *,
        budget: retry.Budget,
        waited_for: str,
        found: list[blockers.Blocker],
        where: str,
        transactional: bool,
    ) -> str:
        kept = (
            "rolled back: nothing of this file was applied"
            if transactional
            else "the file runs without a transaction: the statements before this one stay "
            "applied, the file is not recorded; it must be safe to run again"
        )
        end = (
            f"to end that session run `{blockers.end_session_sql(found[:1])}`, then"
            if found
            else "then"
        )
        return (
            f"{migration.filename}{where}: gave up after {budget.attempts} attempts in "
            f"{budget.elapsed:.1f}s (--lock-budget {self.policy.budget:g}): each waited "
            f"{self.policy.lock_timeout:g}s for a lock on {waited_for}; {_holders(found)} "
            f"({kept}); {end} run migrate again, or raise --lock-budget"
        )


def _relation(found: list[blockers.Blocker], relations: list[str]) -> str:
    """The relation waited for: the one the first blocker holds, else the ones named."""
    if found and found[0].relation:
        return found[0].relation
    if relations:
        return ", ".join(relations[:3]) + (" ..." if len(relations) > 3 else "")
    return "a relation it could not name"


def _holders(found: list[blockers.Blocker]) -> str:
    if not found:
        return "no session holds a conflicting lock any more"
    return "held by " + blockers.summary(found)


def advisory_wait_line(holders: list[blockers.Blocker], bound: float) -> str:
    """The ``waiting`` line of a run that meets another run's migration lock."""
    return (
        f"for the migration lock, which another migration run holds: {_advisory(holders)};"
        f" giving up after {bound:g}s (--wait-for-lock)"
    )


def advisory_gave_up(holders: list[blockers.Blocker], bound: float) -> str:
    """The error of a run that waited ``bound`` seconds for the migration lock."""
    end = (
        f"; if it is stuck, end it with `{blockers.end_session_sql(holders[:1])}`"
        if holders
        else ""
    )
    return (
        f"gave up waiting for the migration lock after {bound:g}s (--wait-for-lock): "
        f"another migration run holds it: {_advisory(holders)}; nothing more was applied "
        f"by this run. Run migrate again once that run is done, or raise --wait-for-lock{end}"
    )


def _advisory(holders: list[blockers.Blocker]) -> str:
    if not holders:
        return "a session that has just released it"
    first = holders[0]
    since = first.since
    when = f", since {since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if since is not None else ""
    return f"{first.describe()}{when}"
