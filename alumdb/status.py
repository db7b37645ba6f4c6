"""Disk against database: which migrations are applied, pending, changed or missing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from alumdb.catalog import Catalog, Migration, format_version
from alumdb.tracking import AppliedRow

State = Literal["applied", "pending", "changed", "missing"]
STATES: tuple[State, ...] = ("applied", "pending", "changed", "missing")


@dataclass(frozen=True)
class Entry:
    """One version as seen on disk and in ``schema_migrations``."""

    version: str
    name: str
    state: State
    filename: str | None
    executed_at: datetime | None = None
    duration_ms: int | None = None
    checksum: str | None = None  # of the file on disk
    recorded_checksum: str | None = None  # in the database (None: not yet recorded)
    detail: str = ""

    @property
    def number(self) -> int:
        return int(self.version)

    @property
    def unverified(self) -> bool:
        """Applied by a tool that records no checksum (the compose loop): to be adopted."""
        return self.state == "applied" and self.recorded_checksum is None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["executed_at"] = self.executed_at.isoformat() if self.executed_at else None
        return data


def compare(catalog: Catalog, applied: list[AppliedRow]) -> list[Entry]:
    """Every version on disk or in the database, in numeric order, with its state."""
    rows = {row.number: row for row in applied if row.number is not None}
    on_disk = {m.number: m for m in catalog}
    return [
        _entry(on_disk.get(number), rows.get(number), number)
        for number in sorted(set(rows) | set(on_disk))
    ]


def _entry(migration: Migration | None, row: AppliedRow | None, number: int) -> Entry:
    version = format_version(number)
    if migration is None:
        assert row is not None  # noqa: S101 - one side is always present
        return Entry(
            version=version,
            name=row.name,
            state="missing",
            filename=None,
            executed_at=row.executed_at,
            duration_ms=row.duration_ms,
            recorded_checksum=row.checksum,
            detail="applied, but no file on disk has this version",
        )
    if row is None:
        return Entry(
            version, migration.name, "pending", migration.filename, checksum=migration.checksum
        )
    state: State = "applied"
    detail = ""
    if row.checksum is not None and row.checksum != migration.checksum:
        state, detail = "changed", "the file's content changed since it was applied"
    elif row.name != migration.name:
        state = "changed"
        detail = f"applied as {row.name!r}, the file is now named {migration.filename}"
    elif row.checksum is None:
        detail = "applied without a checksum (the compose loop); the next migrate records it"
    return Entry(
        version=version,
        name=migration.name,
        state=state,
        filename=migration.filename,
        executed_at=row.executed_at,
        duration_ms=row.duration_ms,
        checksum=migration.checksum,
        recorded_checksum=row.checksum,
        detail=detail,
    )


def problems(entries: list[Entry]) -> list[Entry]:
    """The entries that make ``status`` exit non-zero: changed or missing."""
    return [e for e in entries if e.state in {"changed", "missing"}]


def counts(entries: list[Entry]) -> dict[State, int]:
    """How many entries are in each state, every state listed (in :data:`STATES` order)."""
    return {state: sum(1 for e in entries if e.state == state) for state in STATES}


def not_applied(entries: list[Entry]) -> list[Entry]:
    """The entries that keep the database from matching the folder: all but ``applied``."""
    return [e for e in entries if e.state != "applied"]
