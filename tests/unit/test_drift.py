"""The comparison of two schema snapshots, without a database."""

from __future__ import annotations

from alumdb import drift
from alumdb.introspect import Snapshot


def snapshot(*objects: tuple[str, str, str, tuple[str, str] | None]) -> Snapshot:
    snap = Snapshot()
    for kind, name, definition, parent in objects:
        snap.add(kind, name, definition, parent)
    return snap


TABLE = ("table", "public.notes")
BASE = (
    ("table", "public.notes", "table", None),
    ("column", "public.notes.id", "bigint NOT NULL", TABLE),
    ("column", "public.notes.body", "text", TABLE),
    ("constraint", "public.notes.pk_notes", "PRIMARY KEY (id)", TABLE),
    ("index", "public.idx_notes_body", "CREATE INDEX idx_notes_body ON public.notes (body)", TABLE),
    ("row security", "public.notes", "disabled, not forced", TABLE),
    ("enum", "public.mood", "ENUM ('calm', 'busy')", None),
)


def test_identical_snapshots_have_no_drift() -> None:
    result = drift.compare(snapshot(*BASE), snapshot(*BASE))
    assert not result.drifted
    assert result.differences == [] and result.notes == []


def test_extra_missing_and_changed_with_both_definitions() -> None:
    actual = [o for o in BASE if o[1] != "public.idx_notes_body" and o[0] != "enum"]
    actual += [
        ("enum", "public.mood", "ENUM ('calm', 'busy', 'away')", None),
        ("index", "public.ix_hand", "CREATE INDEX ix_hand ON public.notes (id)", TABLE),
    ]
    result = drift.compare(snapshot(*BASE), snapshot(*actual))
    assert result.drifted
    assert [d.line() for d in result.differences] == [
        "~ enum public.mood: expected ENUM ('calm', 'busy'); found ENUM ('calm', 'busy', 'away')",
        "- index public.idx_notes_body: expected CREATE INDEX idx_notes_body ON public.notes "
        "(body); found nothing",
        "+ index public.ix_hand: expected nothing; found CREATE INDEX ix_hand ON public.notes (id)",
    ]
    assert result.differences[1].to_json() == {
        "change": "missing",
        "sign": "-",
        "kind": "index",
        "name": "public.idx_notes_body",
        "expected": "CREATE INDEX idx_notes_body ON public.notes (body)",
        "actual": None,
    }


def test_what_belongs_to_a_missing_or_extra_table_is_not_repeated() -> None:
    other = ("table", "public.extra")
    actual = [
        ("enum", "public.mood", "ENUM ('calm', 'busy')", None),
        ("table", "public.extra", "table", None),
        ("column", "public.extra.id", "int", other),
        ("privileges", "column public.extra.id", "PUBLIC: SELECT", ("column", "public.extra.id")),
    ]
    result = drift.compare(snapshot(*BASE), snapshot(*actual))
    assert [(d.sign, d.kind, d.name) for d in result.differences] == [
        ("+", "table", "public.extra"),
        ("-", "table", "public.notes"),
    ]


def test_changes_inside_a_table_that_exists_are_listed() -> None:
    actual = [o for o in BASE if o[0] != "row security"]
    actual += [("row security", "public.notes", "enabled, forced", TABLE)]
    actual = [o if o[1] != "public.notes.body" else (*o[:2], "varchar(10)", TABLE) for o in actual]
    lines = [d.line() for d in drift.compare(snapshot(*BASE), snapshot(*actual)).differences]
    assert lines == [
        "~ column public.notes.body: expected text; found varchar(10)",
        "~ row security public.notes: expected disabled, not forced; found enabled, forced",
    ]


def test_column_order_is_a_note_not_drift() -> None:
    expected, actual = snapshot(*BASE), snapshot(*BASE)
    expected.column_order = {"public.notes": ("id", "body", "gone")}
    actual.column_order = {"public.notes": ("body", "id", "new")}
    result = drift.compare(expected, actual)
    assert not result.drifted
    assert result.notes == [
        "note: the columns of public.notes are in another order (not drift): expected "
        "(id, body); found (body, id)"
    ]


def test_multi_line_definitions_fit_one_line_and_whitespace_only_changes_say_so() -> None:
    body = "CREATE FUNCTION f()\n  RETURNS int\nAS $$ SELECT 1 $$"
    expected = snapshot(("function", "public.f()", body, None))
    actual = snapshot(("function", "public.f()", body.replace("\n  ", "\n"), None))
    (difference,) = drift.compare(expected, actual).differences
    assert "\n" not in difference.line()
    assert difference.line().endswith("(they differ in whitespace only)")
    assert difference.expected == body  # JSON keeps the definitions as they are
