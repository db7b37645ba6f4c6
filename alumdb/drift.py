"""Compare two schema snapshots object by object: what the migrations make, what is there.

Pure: it takes two :class:`~alumdb.introspect.Snapshot` values and returns the
differences, so it is tested without a database. An object is ``+`` extra (in the
database, not made by the migrations), ``-`` missing (made by the migrations, not in
the database) or ``~`` changed (both, with different definitions). What belongs to an
extra or missing object (the columns of a missing table, say) is not listed again.
A different column order is a note, not drift: a table rebuilt by hand with the same
columns in another order behaves the same for every query that names its columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from alumdb.introspect import KINDS, DbObject, Key, Snapshot

Sign = Literal["+", "-", "~"]
MEANING = {"+": "extra", "-": "missing", "~": "changed"}


def one_line(text: str | None) -> str:
    """A definition on one line (whitespace runs collapsed): ``nothing`` for ``None``."""
    return "nothing" if text is None else " ".join(text.split())


@dataclass(frozen=True)
class Difference:
    """One object that is not as the migrations make it."""

    sign: Sign
    kind: str
    name: str
    expected: str | None  # the definition the migrations give it (None: no such object)
    actual: str | None  # its definition in the database (None: not there)

    def line(self) -> str:
        expected, actual = one_line(self.expected), one_line(self.actual)
        whitespace = " (they differ in whitespace only)" if expected == actual else ""
        return (
            f"{self.sign} {self.kind} {self.name}: expected {expected}; found {actual}{whitespace}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "change": MEANING[self.sign],
            "sign": self.sign,
            "kind": self.kind,
            "name": self.name,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass(frozen=True)
class Comparison:
    """Everything that differs, and notes that are not drift."""

    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.differences)


def _order(difference: Difference) -> tuple[int, str]:
    rank = KINDS.index(difference.kind) if difference.kind in KINDS else len(KINDS)
    return rank, difference.name


def _inside(obj: DbObject, gone: set[Key], objects: dict[Key, DbObject]) -> bool:
    """Whether ``obj`` belongs (directly or further up) to an object in ``gone``."""
    seen: set[Key] = set()
    parent = obj.parent
    while parent is not None and parent not in seen:
        if parent in gone:
            return True
        seen.add(parent)
        above = objects.get(parent)
        parent = above.parent if above is not None else None
    return False


def compare(expected: Snapshot, actual: Snapshot) -> Comparison:
    """The differences that make ``actual`` drift from ``expected``, in a stable order."""
    missing = set(expected.objects) - set(actual.objects)
    extra = set(actual.objects) - set(expected.objects)
    differences = [
        Difference("-", obj.kind, obj.name, obj.definition, None)
        for key in missing
        if not _inside(obj := expected.objects[key], missing, expected.objects)
    ]
    differences += [
        Difference("+", obj.kind, obj.name, None, obj.definition)
        for key in extra
        if not _inside(obj := actual.objects[key], extra, actual.objects)
    ]
    differences += [
        Difference("~", key[0], key[1], want.definition, have.definition)
        for key, want in expected.objects.items()
        if (have := actual.objects.get(key)) is not None and have.definition != want.definition
    ]
    differences.sort(key=_order)
    return Comparison(differences, column_order_notes(expected, actual))


def column_order_notes(expected: Snapshot, actual: Snapshot) -> list[str]:
    """One note per table whose shared columns come in another order."""
    notes = []
    for table, want in sorted(expected.column_order.items()):
        have = actual.column_order.get(table)
        if have is None:
            continue
        common = set(want) & set(have)
        want_common = [c for c in want if c in common]
        have_common = [c for c in have if c in common]
        if want_common != have_common:
            notes.append(
                f"note: the columns of {table} are in another order (not drift): expected "
                f"({', '.join(want_common)}); found ({', '.join(have_common)})"
            )
    return notes
