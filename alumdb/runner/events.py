"""What a run reports: live events for the task layer, and the report at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from alumdb.catalog import Migration

EventKind = Literal[
    "waiting",
    "applying",
    "applied",
    "skipped",
    "adopted",
    "retrying",
    "upgraded",
    "server",
    "running",  # still waiting for the server's answer: what it is doing (runner.watch)
]


@dataclass(frozen=True)
class Event:
    """Progress the task layer renders as it happens."""

    kind: EventKind
    migration: Migration | None = None
    seconds: float = 0.0
    detail: str = ""


EventSink = Callable[[Event], None]


def ignore(_: Event) -> None:
    return None


@dataclass
class Report:
    """What a run did (or, with ``dry_run``, would do)."""

    dry_run: bool
    planned: list[Migration] = field(default_factory=list)
    applied: list[tuple[Migration, float]] = field(default_factory=list)
    skipped: list[Migration] = field(default_factory=list)
    adopted: list[Migration] = field(default_factory=list)
    held_back: list[Migration] = field(default_factory=list)  # pending after --target
    already_applied: int = 0
    waited: float = 0.0
    seconds: float = 0.0
