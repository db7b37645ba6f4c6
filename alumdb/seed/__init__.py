"""``invoke seed``: realistic, deterministic data for dev databases, bulk-loaded with COPY.

``plan`` (sizes, options) -> ``people``/``outreach``/``inbox``/``automation`` (rows per
tenant, from ``gen``'s seeded random source and Faker pools, into the tables that
``tables`` declares) -> ``load`` (guard, COPY).

Importing the package is cheap: ``plan`` only. The generator and the loader (Faker,
psycopg's COPY) load on the first use of a name of ``load`` (PEP 562), so a task
that only shows the presets in its help does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from alumdb.seed.plan import PRESETS, Options, Sizes, options, sizes_for

if TYPE_CHECKING:
    from alumdb.seed.load import TABLES, Progress, Report, generate, guard, seed

_FROM_LOAD = frozenset({"TABLES", "Progress", "Report", "generate", "guard", "seed"})

__all__ = [
    "PRESETS",
    "TABLES",
    "Options",
    "Progress",
    "Report",
    "Sizes",
    "generate",
    "guard",
    "options",
    "seed",
    "sizes_for",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_LOAD:
        return getattr(importlib.import_module("alumdb.seed.load"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
