"""Running the rules: one file, or a folder with its cross-file checks."""

from __future__ import annotations

from pathlib import Path

from alumdb import catalog
from alumdb.errors import UsageError
from alumdb.lint import model, plpgsql, waivers
from alumdb.lint.model import Finding, Source
from alumdb.lint.rules import ALL

WAIVABLE = {rule.id: rule.waivable for rule in ALL}
_RUNS_ON = {"name": 0, "text": 1, "parse": 2}


def read(path: Path) -> Source:
    """The source model of ``path``: decoded, parsed, DO blocks walked, waivers read."""
    source = model.load(path)
    if source.parsed:
        plpgsql.collect_statements(source)
        source.waivers = waivers.read(source, WAIVABLE)
    return source


def lint_source(source: Source) -> list[Finding]:
    """Every rule on one source, waivers applied, sorted."""
    level = 2 if source.parsed else (1 if source.problem is None else 0)
    hits = [
        (rule.id, hit)
        for rule in ALL
        if _RUNS_ON[rule.needs] <= level
        for hit in rule.check(source)
    ]
    severity = {rule.id: rule.severity for rule in ALL}
    kept = waivers.apply(source, hits, WAIVABLE)
    return sorted(source.finding(hit, rule, severity[rule]) for rule, hit in kept)


def lint_file(path: Path) -> list[Finding]:
    """The findings of one migration file (its name checked too, but not against others;
    rules that compare files see it alone)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such migration file; pass an existing .sql file")
    return lint_source(read(path))


def lint_directory(directory: Path) -> list[Finding]:
    """The findings of every migration of ``directory`` plus the cross-file checks.

    The files are :func:`alumdb.catalog.migration_paths`: what the catalog and the
    compose loop see.
    """
    if not directory.is_dir():
        raise UsageError(f"{directory}: is not a folder; pass the migrations folder")
    paths = catalog.migration_paths(directory)
    findings: list[Finding] = []
    for rule in ALL:
        for path, message in rule.check_folder(paths):
            findings.append(Finding(path, 1, 1, rule.id, message, rule.severity))
    sources = [read(path) for path in paths if path.is_file()]
    for source in sources:
        source.folder = sources
    for source in sources:
        findings.extend(lint_source(source))
    return sorted(findings)
