"""``invoke seed``: realistic, deterministic data for dev databases, bulk-loaded with COPY.

``plan`` (sizes, options) -> ``people``/``outreach``/``inbox``/``automation`` (rows per
tenant, from ``gen``'s seeded random source and Faker pools) -> ``load`` (guard, COPY).
"""

from alumdb.seed.load import TABLES, Progress, Report, generate, guard, seed
from alumdb.seed.plan import PRESETS, Options, Sizes, options, sizes_for

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
