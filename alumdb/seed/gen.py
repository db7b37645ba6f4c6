"""The raw material of a seed: a deterministic random source per tenant, word pools, tables.

Faker makes the pools (names, companies, cities, job titles, sentences) once per run,
seeded, so the same ``--seed`` gives the same words; rows then draw from the pools with
a ``random.Random`` per tenant, which is what keeps a million contacts fast.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from alumdb.seed.tables import TableSpec

T = TypeVar("T")
NAMESPACE = uuid.UUID("6f2b51f4-8e0a-4f7e-9d0c-5a1d3c2b7e10")
MARKER = "alumdb seed"  # tenants.settings->>'seeded_by': what makes a tenant ours
DOMAINS = ("example.com", "example.org", "example.net", "alumni.example.edu")
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Pools:
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    companies: tuple[str, ...]
    cities: tuple[str, ...]
    jobs: tuple[str, ...]
    sentences: tuple[str, ...]


def make_pools(seed: int, size: int = 400) -> Pools:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)

    def distinct(make: Any, count: int) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for _ in range(count * 4):
            seen.setdefault(str(make()).strip(), None)
            if len(seen) >= count:
                break
        return tuple(seen)

    return Pools(
        first_names=distinct(fake.first_name, size),
        last_names=distinct(fake.last_name, size),
        companies=distinct(fake.company, size // 2),
        cities=distinct(fake.city, size // 2),
        jobs=distinct(fake.job, size // 2),
        sentences=distinct(fake.sentence, size),
    )


def ascii_slug(text: str) -> str:
    """``"O'Connor-Smith"`` -> ``"oconnorsmith"``: the local part of a seeded address."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.lower()) or "x"


def tenant_id(seed: int, index: int) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"tenant:{seed}:{index}")


def tenant_slug(seed: int, index: int) -> str:
    return f"seed{seed}-t{index:03d}"


@dataclass
class Table:
    """Rows for one table, in ``columns`` order."""

    columns: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)


@dataclass
class Ctx:
    """Everything a generator needs for one tenant."""

    rng: random.Random
    tenant: uuid.UUID
    anchor: dt.datetime
    pools: Pools
    tables: dict[str, Table] = field(default_factory=dict)
    # What later generators refer to: "contacts" -> [(id, email, phone)], "users" -> [id]...
    refs: dict[str, list[Any]] = field(default_factory=dict)

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def pick(self, items: Sequence[T]) -> T:
        return items[self.rng.randrange(len(items))]

    def weighted(self, items: Sequence[T], weights: Sequence[float]) -> T:
        return self.rng.choices(items, weights)[0]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def ago(self, max_days: float, min_days: float = 0.0) -> dt.datetime:
        """A moment between ``max_days`` and ``min_days`` before the anchor."""
        seconds = self.rng.uniform(min_days * 86400, max_days * 86400)
        return self.anchor - dt.timedelta(seconds=int(seconds))

    def later(self, start: dt.datetime, max_days: float, min_days: float = 0.0) -> dt.datetime:
        seconds = self.rng.uniform(min_days * 86400, max_days * 86400)
        return start + dt.timedelta(seconds=int(seconds))

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.datetime:
        """A moment from ``start`` to ``end`` (``start`` when ``end`` is earlier)."""
        span = max(0, int((end - start).total_seconds()))
        return start + dt.timedelta(seconds=self.rng.randint(0, span))

    def sentence(self) -> str:
        return self.pick(self.pools.sentences)

    def table(self, spec: TableSpec) -> list[Row]:
        """The rows of ``spec``'s table (``tenant_id`` first, filled by :meth:`add`)."""
        found = self.tables.get(spec.name)
        if found is None:
            found = self.tables[spec.name] = Table(("tenant_id", *spec.columns))
        return found.rows

    def add(self, spec: TableSpec, *values: Any) -> None:
        self.tables[spec.name].rows.append((self.tenant, *values))


def js(value: Any) -> str:
    """A JSON document as COPY text (jsonb input)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
