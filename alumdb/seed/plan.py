"""What a seed run makes: size presets, explicit counts, the options of a run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from alumdb.errors import UsageError


@dataclass(frozen=True)
class Sizes:
    """Row counts per tenant; everything else (channels, events, members) scales with them."""

    contacts: int
    users: int
    segments: int
    templates: int
    campaigns: int
    workflows: int
    sequences: int
    # Fractions of the contacts: inbox threads, workflow runs, sequence runs, jobs.
    threads_per_contact: float = 0.2
    workflow_runs_per_contact: float = 0.05
    sequence_runs_per_contact: float = 0.1
    jobs_per_contact: float = 0.05
    # Campaign messages across all runs of a tenant, per contact.
    messages_per_contact: float = 1.0
    # The share of contacts with attributes, consents, a history and tags (and of the
    # segments' usual size): below 1 for big, lean data sets such as the query bench.
    detail: float = 1.0


PRESETS: dict[str, Sizes] = {
    "small": Sizes(contacts=200, users=5, segments=6, templates=6, campaigns=8, workflows=4,
                   sequences=3),
    "medium": Sizes(contacts=5_000, users=15, segments=8, templates=8, campaigns=10,
                    workflows=5, sequences=4),
    "large": Sizes(contacts=10_000, users=25, segments=8, templates=10, campaigns=12,
                   workflows=6, sequences=4),
}  # fmt: skip
DEFAULT_PRESET = "small"
DEFAULT_TENANTS = 3
MAX_CONTACTS = 5_000_000  # per tenant: phone numbers are +1555 and seven digits


@dataclass(frozen=True)
class Options:
    """One seed run: how many tenants, how big, which seed, times relative to ``anchor``."""

    tenants: int
    sizes: Sizes
    seed: int
    anchor: dt.datetime


def sizes_for(preset: str | None, contacts: int | None = None) -> Sizes:
    """The preset's sizes, with ``contacts`` (per tenant) overriding its contact count."""
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise UsageError(f"--size {name!r}: unknown preset; choose one of {', '.join(PRESETS)}")
    sizes = PRESETS[name]
    if contacts is not None:
        if not 1 <= contacts <= MAX_CONTACTS:
            raise UsageError(f"--contacts {contacts}: give a number from 1 to {MAX_CONTACTS:,}")
        sizes = replace(sizes, contacts=contacts)
    return sizes


def options(
    tenants: int,
    preset: str | None = None,
    contacts: int | None = None,
    seed: int = 1,
    anchor: dt.datetime | None = None,
) -> Options:
    """Validated options; ``anchor`` defaults to the start of the current UTC day.

    The same seed and anchor give the same rows (ids, names, times) on any machine.
    """
    if not 1 <= tenants <= 999:
        raise UsageError(f"--tenants {tenants}: give a number from 1 to 999")
    if seed < 0:
        raise UsageError(f"--seed {seed}: give a number >= 0")
    if anchor is None:
        now = dt.datetime.now(dt.UTC)
        anchor = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return Options(tenants=tenants, sizes=sizes_for(preset, contacts), seed=seed, anchor=anchor)
