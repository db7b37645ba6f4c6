"""The retry policy: exponential ceilings, full jitter, a total budget (clock injected)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from alumdb import blockers, retry
from alumdb.catalog import Migration
from alumdb.errors import MigrationFailed
from alumdb.runner.lock_retry import LockRetry


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_defaults_keep_one_stall_short_and_land_soon_after_the_blocker() -> None:
    policy = retry.Policy()
    assert policy.lock_timeout <= 0.5  # DESIGN: at most 0.5 s by default
    assert policy.cap + policy.lock_timeout < 1.0  # lands within 1 s of the blocker ending
    assert policy.budget >= 30  # outlives a web request's statement timeout


def test_ceiling_doubles_up_to_the_cap() -> None:
    policy = retry.Policy(base=0.05, cap=0.5)
    assert [policy.ceiling(n) for n in range(1, 7)] == pytest.approx(
        [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    )


def test_full_jitter_scales_the_random_draw_by_the_ceiling() -> None:
    clock = FakeClock()
    draws = iter([0.0, 1.0, 0.5, 0.25])
    budget = retry.Budget(retry.Policy(base=0.1, cap=10), clock=clock, rand=lambda: next(draws))
    assert [budget.next_delay() for _ in range(4)] == pytest.approx([0.0, 0.2, 0.2, 0.2])
    assert budget.attempts == 4


def test_budget_ends_the_retries_and_the_last_pause_stops_at_it() -> None:
    clock = FakeClock()
    budget = retry.Budget(retry.Policy(budget=1.0, cap=0.5), clock=clock, rand=lambda: 1.0)
    clock.now += 0.9
    assert budget.next_delay() == pytest.approx(0.05)  # first ceiling, within what is left
    clock.now += 0.08
    assert budget.next_delay() == pytest.approx(0.02)  # clipped to the budget's end
    clock.now += 0.02
    assert budget.remaining == 0
    assert budget.next_delay() is None
    assert budget.attempts == 3


def test_delays_vary_and_stay_within_their_ceiling() -> None:
    policy = retry.Policy(budget=1e9)
    budget = retry.Budget(policy)  # the real random source
    delays = [budget.next_delay() for _ in range(200)]
    assert all(d is not None and 0 <= d <= policy.cap for d in delays)
    assert len(set(delays)) > 100  # jittered, not in step


def test_zero_budget_gives_no_retry_and_milliseconds_are_never_zero() -> None:
    clock = FakeClock()
    budget = retry.Budget(retry.Policy(budget=0), clock=clock, rand=itertools.repeat(0.5).__next__)
    assert budget.next_delay() is None
    assert retry.milliseconds(0.0001) == 1
    assert retry.milliseconds(0.2) == 200


def _migration(sql: str) -> Migration:
    return Migration(12, "index", Path("012_index.sql"), sql, "0" * 64, transactional=False)


def test_lock_retry_pauses_within_the_budget_then_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(blockers, "holding", lambda conn, relations, mode: [])
    clock = FakeClock()
    retrying = LockRetry(retry.Policy(lock_timeout=0.2, budget=1), clock=clock, rand=lambda: 1.0)
    migration = _migration("ALTER TABLE contacts ADD COLUMN c int;")
    step = retrying.after_timeout(None, migration, migration.sql)  # type: ignore[arg-type]
    assert step.delay == pytest.approx(0.05)
    assert "lock on contacts not granted within 0.2s (attempt 1)" in step.detail
    clock.now += 2
    with pytest.raises(MigrationFailed) as caught:
        retrying.after_timeout(None, migration, migration.sql, where=":3:1")  # type: ignore[arg-type]
    assert "012_index.sql:3:1: gave up after 2 attempts in 2.0s (--lock-budget 1)" in str(
        caught.value
    )


def test_a_statement_that_waited_the_whole_budget_gives_up_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(blockers, "holding", lambda conn, relations, mode: [])
    retrying = LockRetry(retry.Policy(budget=30), clock=FakeClock())
    migration = _migration("CREATE INDEX CONCURRENTLY i ON contacts (a);")
    with pytest.raises(MigrationFailed) as caught:
        retrying.after_timeout(None, migration, migration.sql, transactional=False, final=True)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "gave up after 1 attempts in 30.0s" in message
    assert "statements before this one stay applied" in message
