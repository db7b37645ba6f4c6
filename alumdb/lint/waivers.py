"""Waivers: read from the file's comments, and applied to the findings in one place.

``-- alumdb: allow <rule>[, <rule>] because <reason>`` on the line above a statement
(only comment lines may come between) excuses that statement of those rules. Rules
never look at waivers: :func:`apply` drops what a valid waiver excuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from alumdb.lint.model import DIRECTIVE_LIKE, Hit, Source, Waivers

_WAIVER = re.compile(r"^--\s*alumdb\s*:\s*allow\b\s*(?P<body>.*?)\s*$", re.IGNORECASE)
_WAIVER_BODY = re.compile(r"^(?P<rules>.*?)(?:(?:^|\s)because\b\s*(?P<reason>.*))?$", re.DOTALL)
_ALUMDB_COMMENT = re.compile(r"^--\s*alumdb\s*:", re.IGNORECASE)
USAGE = "write `-- alumdb: allow <rule>[, <rule>] because <reason>`"


def read(source: Source, waivable: Mapping[str, bool]) -> Waivers:
    """The waivers of ``source``; ``waivable`` maps every known rule id to whether it may be
    waived."""
    result = Waivers()
    comment_lines: dict[int, int] = {}  # line -> offset of a comment alone on its line
    seen_lines: set[int] = set()
    for token in source.tokens:
        line = source.line_of(token.start)
        if line not in seen_lines:
            seen_lines.add(line)
            if token.name == "SQL_COMMENT":
                comment_lines[line] = token.start
    attached: dict[int, int] = {}  # comment line -> statement index
    for index, start in enumerate(source.starts):
        line = source.line_of(start) - 1
        while line in comment_lines:
            attached[line] = index
            line -= 1
    for token in source.tokens:
        if token.name != "SQL_COMMENT":
            continue
        comment = source.text[token.start : token.end + 1].rstrip()
        if DIRECTIVE_LIKE.match(comment) or not _ALUMDB_COMMENT.match(comment):
            continue
        rules = parse(comment, waivable)
        line = source.line_of(token.start)
        if isinstance(rules, str):
            result.problems.append(Hit(token.start, rules))
        elif line not in attached or comment_lines.get(line) != token.start:
            result.problems.append(
                Hit(
                    token.start,
                    "waiver is not directly above a statement (only comment lines may come "
                    "between); move it onto the line above the statement it excuses",
                )
            )
        else:
            result.waived.setdefault(attached[line], set()).update(rules)
    return result


def parse(comment: str, waivable: Mapping[str, bool]) -> frozenset[str] | str:
    """The rules a waiver comment silences, or why it is not a valid waiver."""
    match = _WAIVER.match(comment)
    body = _WAIVER_BODY.match(match["body"]) if match is not None else None
    if body is None:
        return f"unrecognised alumdb comment; {USAGE}"
    rules = [r.strip() for r in body["rules"].split(",") if r.strip()]
    problem = _rules_problem(rules, waivable)
    if problem is not None:
        return problem
    if body["reason"] is None:
        return f"waiver has no reason; {USAGE}"
    if not body["reason"].strip():
        return f"waiver's reason is empty; {USAGE}"
    return frozenset(rules)


def _rules_problem(rules: list[str], waivable: Mapping[str, bool]) -> str | None:
    if not rules:
        return f"waiver names no rule; {USAGE}"
    for rule in rules:
        if rule not in waivable:
            known = ", ".join(r for r, ok in waivable.items() if ok)
            return f"waiver names unknown rule {rule!r}; use one of: {known}"
        if not waivable[rule]:
            return f"rule {rule!r} cannot be waived; fix the problem instead"
    return None


def apply(
    source: Source, hits: Iterable[tuple[str, Hit]], waivable: Mapping[str, bool]
) -> list[tuple[str, Hit]]:
    """The ``(rule, hit)`` pairs no valid waiver excuses."""
    kept: list[tuple[str, Hit]] = []
    for rule, hit in hits:
        waived = source.waivers.waived.get(hit.stmt, set()) if hit.stmt is not None else set()
        if not (waivable.get(rule, False) and rule in waived):
            kept.append((rule, hit))
    return kept
