"""The rules, one module each, in the order their ids are listed.

Adding a rule: write ``rules/my_rule.py`` with its checks and a module-level
``RULE = Rule(...)`` (see :class:`alumdb.lint.registry.Rule`), add its module name on
one line of ``MODULES`` below, and its tests in ``tests/unit/lint/test_my_rule.py``.
"""

from __future__ import annotations

import importlib

from alumdb.lint.registry import Rule

MODULES = (
    "naming",
    "header",
    "tracking_insert",
    "idempotent",
    "no_data",
    "non_destructive",
    "explicit_names",
    "tenant_scoped",
    "tenant_isolation",
    "transaction_control",
    "syntax",
    "waiver",
)


def _load(module: str) -> Rule:
    rule = importlib.import_module(f"{__name__}.{module}").RULE
    if not isinstance(rule, Rule):  # pragma: no cover - a rule module's contract
        raise TypeError(f"{__name__}.{module}.RULE is not a Rule")
    return rule


ALL: tuple[Rule, ...] = tuple(_load(m) for m in MODULES)
