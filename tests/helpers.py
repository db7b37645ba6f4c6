"""Helpers the tests share: migration folders, and snapshots that prove nothing changed."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"
SQUAWK_CONFIG = ROOT / ".squawk.toml"


def write_folder(directory: Path, files: Mapping[str, str | bytes], base: bool = True) -> Path:
    """A migrations folder: the real 001_init.sql (with ``base``) plus ``files``."""
    directory.mkdir(parents=True, exist_ok=True)
    if base:
        shutil.copy(MIGRATIONS / "001_init.sql", directory / "001_init.sql")
    for name, content in files.items():
        path = directory / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory


HEADER_RULE = "-- " + "=" * 60


def header(filename: str, purpose: str = "test fixture") -> str:
    """The template's header block for ``filename``, and the blank line after it."""
    return f"{HEADER_RULE}\n-- Migration: {filename}\n-- Purpose: {purpose}\n{HEADER_RULE}\n\n"


def tracking(filename: str) -> str:
    """The template's tracking insert for ``filename``, after a blank line."""
    version, name = filename.removesuffix(".sql").split("_", 1)
    return (
        "\n-- Record this migration\n"
        "INSERT INTO schema_migrations (version, name)\n"
        f"VALUES ('{version}', '{name}')\n"
        "ON CONFLICT (version) DO NOTHING;\n"
    )


def migration_sql(version: str, name: str, ddl: str) -> str:
    """A migration in the template's shape: header, ``ddl``, tracking insert."""
    filename = f"{version}_{name}.sql"
    return header(filename) + f"{ddl.strip()}\n" + tracking(filename)


def folder_snapshot(directory: Path) -> dict[str, bytes]:
    """Every file of a folder and its bytes (to prove a command changed nothing)."""
    if not directory.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def db_state(url: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The relations of schema public and the rows of schema_migrations."""
    with psycopg.connect(url, autocommit=True) as conn:
        relations = [
            str(r[0])
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' ORDER BY 1"
            )
        ]
        rows: list[tuple[str, str]] = []
        if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() != (None,):
            rows = [
                (str(v), str(n))
                for v, n in conn.execute(
                    "SELECT version::text, name FROM schema_migrations ORDER BY version::int"
                )
            ]
    return relations, rows
