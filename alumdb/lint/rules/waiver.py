"""``waiver``: ``-- alumdb: allow <rule>[, <rule>] because <reason>`` directly above a
statement, naming known rules that may be waived, with a reason.

A malformed waiver silences nothing and is itself a finding. Waivers inside a ``DO``
body are string contents and are not seen. The comments are read, and applied, in
:mod:`alumdb.lint.waivers`; this rule reports the ones that are not valid.
"""

from __future__ import annotations

from collections.abc import Iterator

from alumdb.lint.model import Hit, Severity, Source
from alumdb.lint.registry import Rule


def check(source: Source) -> Iterator[Hit]:
    yield from source.waivers.problems


RULE = Rule(
    id="waiver",
    description="`-- alumdb: allow <rule>[, <rule>] because <reason>` directly above a statement",
    severity=Severity.ERROR,
    waivable=False,
    check=check,
)
