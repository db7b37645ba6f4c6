"""The migration linter: the spec's rules on SQL parsed by PostgreSQL 15's own parser,
then squawk's locking rules.

Layout (squawk's: one module per rule and a registry):

``model``       the source model: a file read, decoded, parsed and located once;
                :class:`Finding`, :class:`Severity`, the ``Hit`` a rule reports
``plpgsql``     the walker of ``DO`` blocks: the statements they run, guarded or not
``sqltree``     small helpers over pglast's trees
``registry``    :class:`Rule`: id, description, severity, whether it may be waived, check
``rules/``      one module per rule; ``rules.MODULES`` lists them, ``rules.ALL`` is the
                registry
``waivers``     ``-- alumdb: allow RULE because REASON``: read and applied in one place,
                never inside a rule
``check``       runs the registry over a file or a folder
``squawk``      the squawk adapter (``squawk/...`` findings)

Severities: ``error`` fails ``invoke lint``; ``warning`` is printed and fails only
``invoke lint --strict`` (what CI runs).

Adding a rule is one module plus one registry line:

1. ``alumdb/lint/rules/my_rule.py`` with ``def check(source: Source) -> Iterator[Hit]``
   and ``RULE = Rule(id="my-rule", description=..., severity=Severity.ERROR,
   waivable=True, check=check)``. Read ``source.statements`` (top level and inside
   DO blocks, each with its ``ctx``), ``source.raws``/``source.tokens`` or
   ``source.text``; yield ``Hit(offset, message, ctx.stmt)``. Never look at waivers.
2. ``"my_rule",`` in ``alumdb/lint/rules/__init__.py``'s ``MODULES``.
3. ``tests/unit/lint/test_my_rule.py`` with a failing and a passing fixture.
"""

from __future__ import annotations

from alumdb.lint.check import lint_directory, lint_file
from alumdb.lint.model import Finding, Severity
from alumdb.lint.registry import Rule
from alumdb.lint.rules import ALL
from alumdb.lint.squawk import binary as squawk_binary
from alumdb.lint.squawk import run as run_squawk

RULES: dict[str, str] = {rule.id: rule.description for rule in ALL}
UNWAIVABLE = frozenset(rule.id for rule in ALL if not rule.waivable)


def failing(findings: list[Finding], *, strict: bool) -> list[Finding]:
    """The findings that fail a run: errors, and warnings too when ``strict``."""
    return [f for f in findings if strict or f.severity is Severity.ERROR]


__all__ = [
    "ALL",
    "RULES",
    "UNWAIVABLE",
    "Finding",
    "Rule",
    "Severity",
    "failing",
    "lint_directory",
    "lint_file",
    "run_squawk",
    "squawk_binary",
]
