"""The migration sets the contenders apply: the real migrations/ and generated ones.

A workload is a folder laid out as a user's checkout is: ``migrations/`` beside a
copy of docker-compose.dev.yml (so the compose ``migrations`` service mounts it as
``./migrations``), plus the same DDL in dbmate's file format and all files
concatenated in numeric order for the one-session floor.

Generated files follow the spec's template and rules: the header, idempotent DDL
(``CREATE TABLE IF NOT EXISTS`` with a named composite primary key on
``tenant_id``, ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``, ``CREATE INDEX IF NOT
EXISTS``, a named CHECK constraint guarded in a ``DO`` block) and the tracking
insert. File 001 is the real 001_init.sql (it creates schema_migrations and its
audit table, as every real set starts). Files are grouped by ten: the first
of a group creates a table, the others add a column and an index to it, so no file
depends on one outside its group and the order of versions within a digit count
is all that matters (dbmate compares versions as text).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from alumdb import catalog
from bench.server import COMPOSE_FILE, ROOT

REAL_MIGRATIONS = ROOT / "migrations"

HEADER = """\
-- ============================================================
-- Migration: {filename}
-- Purpose: {purpose}
-- ============================================================

"""

RECORD = """
-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('{version}', '{name}')
ON CONFLICT (version) DO NOTHING;
"""

CREATE_TABLE = """\
CREATE TABLE IF NOT EXISTS {table} (
    tenant_id  UUID NOT NULL,
    id         BIGINT GENERATED ALWAYS AS IDENTITY,
    name       VARCHAR(255) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_{table} PRIMARY KEY (tenant_id, id)
);

CREATE INDEX IF NOT EXISTS idx_{table}_created_at ON {table} (tenant_id, created_at);

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'ck_{table}_name' AND conrelid = '{table}'::regclass
    ) THEN
        ALTER TABLE {table} ADD CONSTRAINT ck_{table}_name CHECK (name <> '');
    END IF;
END $$;
"""

ADD_COLUMN = """\
ALTER TABLE {table}
ADD COLUMN IF NOT EXISTS {column} VARCHAR(255);

CREATE INDEX IF NOT EXISTS idx_{table}_{column}
ON {table}(tenant_id, {column});
"""


@dataclass(frozen=True)
class Workload:
    """One migration set, laid out for every contender."""

    name: str  # "real" or "gen-1000"
    files: int
    root: Path  # holds migrations/ and the compose file
    compose_file: Path
    dbmate_dir: Path
    combined: bytes  # every file in numeric order, for the one-session floor
    per_file: bytes  # the same, each file in its own transaction (BEGIN ... COMMIT)
    generated: bool

    @property
    def migrations(self) -> Path:
        return self.root / "migrations"


def _table(number: int) -> str:
    return f"bench_t{max(2, number // 10 * 10):05d}"


def generated_file(number: int) -> tuple[str, str]:
    """``(file name, text)`` of generated migration ``number`` (2 or more)."""
    table = _table(number)
    creates = table == f"bench_t{number:05d}"
    column = f"c{number:05d}"
    name = table if creates else f"{table}_{column}"
    filename = catalog.file_name(number, name)
    purpose = f"create {table}" if creates else f"add {column} to {table}"
    body = (CREATE_TABLE if creates else ADD_COLUMN).format(table=table, column=column)
    text = (
        HEADER.format(filename=filename, purpose=purpose)
        + body
        + RECORD.format(version=catalog.format_version(number), name=name)
    )
    return filename, text


def _finish(name: str, root: Path, source: Path, generated: bool) -> Workload:
    """Validate ``source`` with the engine's catalog, then lay out the other formats."""
    loaded = catalog.load(source)
    dbmate_dir = root / "dbmate"
    dbmate_dir.mkdir(parents=True, exist_ok=True)
    parts: list[str] = []
    per_file: list[str] = []
    for m in loaded:
        (dbmate_dir / m.filename).write_text(
            f"-- migrate:up\n{m.sql}\n-- migrate:down\n", encoding="utf-8"
        )
        text = m.sql if m.sql.endswith("\n") else m.sql + "\n"
        parts.append(text)
        # As the runner commits: synchronous_commit off but for the last file.
        if m.transactional:
            sync = "on" if m is loaded.migrations[-1] else "off"
            text = f"BEGIN;\nSET LOCAL synchronous_commit = {sync};\n{text};\nCOMMIT;\n"
        per_file.append(text)
    return Workload(
        name=name,
        files=len(loaded),
        root=root,
        compose_file=root / COMPOSE_FILE.name,
        dbmate_dir=dbmate_dir,
        combined="".join(parts).encode("utf-8"),
        per_file="".join(per_file).encode("utf-8"),
        generated=generated,
    )


def generate(count: int, base: Path) -> Workload:
    """A generated set of ``count`` files in ``base/gen-COUNT/``."""
    if count < 1:
        raise ValueError("a generated set has at least one file")
    root = base / f"gen-{count}"
    folder = root / "migrations"
    folder.mkdir(parents=True)
    shutil.copyfile(COMPOSE_FILE, root / COMPOSE_FILE.name)
    shutil.copyfile(REAL_MIGRATIONS / "001_init.sql", folder / "001_init.sql")
    for number in range(2, count + 1):
        filename, text = generated_file(number)
        (folder / filename).write_text(text, encoding="utf-8")
    return _finish(f"gen-{count}", root, folder, generated=True)


def real(base: Path) -> Workload | None:
    """A snapshot of the project's migrations/ as it is now (``None``: no migration yet).

    Copied beside a copy of the compose file, like a generated set, so files a
    colleague adds while the bench runs change nothing in the middle of a run.
    """
    sources = sorted(REAL_MIGRATIONS.glob("*.sql"))
    if not sources:
        return None
    root = base / "real"
    folder = root / "migrations"
    folder.mkdir(parents=True)
    shutil.copyfile(COMPOSE_FILE, root / COMPOSE_FILE.name)
    for source in sources:
        shutil.copyfile(source, folder / source.name)
    return _finish("real", root, folder, generated=False)
