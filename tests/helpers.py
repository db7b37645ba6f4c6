"""Helpers the tests share: migration folders, and snapshots that prove nothing changed."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"


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


def migration_sql(version: str, name: str, ddl: str) -> str:
    """A migration in the template's shape: header, ``ddl``, tracking insert."""
    rule = "-- " + "=" * 60
    return (
        f"{rule}\n-- Migration: {version}_{name}.sql\n-- Purpose: test fixture\n{rule}\n\n"
        f"{ddl.strip()}\n\n-- Record this migration\n"
        f"INSERT INTO schema_migrations (version, name)\nVALUES ('{version}', '{name}')\n"
        "ON CONFLICT (version) DO NOTHING;\n"
    )


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
