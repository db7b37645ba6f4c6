"""The plan of a run: what to apply and adopt, and every check that needs no write
(:mod:`.preflight` for the files themselves).

Pure (on the catalog and the rows read from the tracking table), so ``--dry-run``
runs exactly the same checks as a real run, before the first write.
"""

from __future__ import annotations

from dataclasses import dataclass

from alumdb import retry
from alumdb import status as status_mod
from alumdb.catalog import Catalog, Migration, format_version
from alumdb.errors import CatalogError, DriftError, UsageError
from alumdb.runner import preflight
from alumdb.runner.lock_retry import DEFAULT_WAIT_FOR_LOCK

DEFAULT_LOCK_TIMEOUT = retry.DEFAULT_LOCK_TIMEOUT
DEFAULT_LOCK_BUDGET = retry.DEFAULT_LOCK_BUDGET


@dataclass(frozen=True)
class Options:
    target: str | None = None
    dry_run: bool = False
    allow_out_of_order: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT  # seconds a statement waits for a lock
    lock_budget: float = DEFAULT_LOCK_BUDGET  # seconds a file may spend retrying for locks
    wait_for_lock: float = DEFAULT_WAIT_FOR_LOCK  # seconds to wait for another run's lock


@dataclass(frozen=True)
class Plan:
    entries: list[status_mod.Entry]
    pending: list[Migration]
    adopt: list[Migration]
    alone: frozenset[str]  # versions of files that do not parse alone: a message each
    held_back: list[Migration]  # pending, but after --target

    @property
    def already_applied(self) -> int:
        return sum(1 for e in self.entries if e.state == "applied")


MIN_LOCK_TIMEOUT = 0.001  # PostgreSQL's unit is the millisecond; 0 would mean no limit


def check_options(options: Options) -> None:
    """:class:`UsageError` for option values that cannot mean what they say."""
    if not options.lock_timeout >= MIN_LOCK_TIMEOUT:  # also NaN
        raise UsageError(
            f"--lock-timeout {options.lock_timeout:g}: must be at least {MIN_LOCK_TIMEOUT:g}s "
            "(PostgreSQL's lock_timeout 0 would let a statement wait for ever); "
            f"the default is {DEFAULT_LOCK_TIMEOUT:g}"
        )
    for option, value, default in (
        ("--lock-budget", options.lock_budget, DEFAULT_LOCK_BUDGET),
        ("--wait-for-lock", options.wait_for_lock, DEFAULT_WAIT_FOR_LOCK),
    ):
        if not 0 <= value < float("inf"):  # also NaN
            raise UsageError(
                f"{option} {value:g}: must be 0 or more seconds, and finite "
                f"(the default is {default:g})"
            )


def target_number(catalog: Catalog, target: str | None) -> int | None:
    """The number ``--target`` names; :class:`UsageError` unless a file has that version."""
    if target is None:
        return None
    found = catalog.find(target.strip())
    if found is None:
        highest = format_version(catalog.highest) if len(catalog) else "none"
        raise UsageError(
            f"--target {target!r}: no migration with that version in {catalog.directory} "
            f"(versions run 001 to {highest}); pass an existing version"
        )
    return found.number


def require_migrations(catalog: Catalog) -> None:
    if not len(catalog):
        raise CatalogError(
            [
                f"{catalog.directory}: no migration files (NNN_name.sql) in this folder; "
                "pass the right --migrations folder or add one with `invoke new-migration NAME`"
            ]
        )


def make_plan(catalog: Catalog, entries: list[status_mod.Entry], options: Options) -> Plan:
    """What to apply and adopt; raises :class:`DriftError` when the disk and database disagree."""
    drift = status_mod.problems(entries)
    if drift:
        lines = [f"{e.filename or e.version + '_' + e.name}: {e.state} ({e.detail})" for e in drift]
        raise DriftError(
            "applied migrations differ from migrations/, nothing was run: "
            + "; ".join(lines)
            + ". Never edit or delete an applied migration: restore it and add a new one "
            "(or, for a harmless edit, `invoke accept-checksum VERSION --reason ...`)"
        )
    limit = target_number(catalog, options.target)
    by_number = {m.number: m for m in catalog}
    highest_applied = max((e.number for e in entries if e.state == "applied"), default=0)
    pending = [
        by_number[e.number]
        for e in entries
        if e.state == "pending" and (limit is None or e.number <= limit)
    ]
    early = [m for m in pending if m.number < highest_applied]
    if early and not options.allow_out_of_order:
        names = ", ".join(m.filename for m in early)
        raise DriftError(
            f"{names}: pending but numbered below the highest applied version "
            f"{format_version(highest_applied)}; renumber it after the latest migration, or "
            "pass --allow-out-of-order to apply it anyway"
        )
    preflight.check(catalog, pending)
    adopt = [by_number[e.number] for e in entries if e.unverified]
    alone = frozenset(
        m.version for m in pending if m.transactional and isinstance(preflight.parse(m), str)
    )
    held_back = [
        by_number[e.number]
        for e in entries
        if e.state == "pending" and limit is not None and e.number > limit
    ]
    return Plan(entries=entries, pending=pending, adopt=adopt, alone=alone, held_back=held_back)
