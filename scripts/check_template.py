#!/usr/bin/env python3
"""Check that `invoke new-migration` still writes a file the linter accepts.

The template (migrations/_template.sql.tmpl) and the linter's rules change apart; a
pre-commit hook runs this when either does. Exits 1 with the findings, else 0.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from alumdb import lint, scaffold
from alumdb.errors import AlumdbError

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="alumdb-template-") as scratch:
        folder = Path(scratch) / "migrations"
        shutil.copytree(ROOT / "migrations", folder)
        try:
            created = scaffold.new_migration(folder, "template_check", "Checks the template")
            findings = lint.lint_file(created.path)
        except AlumdbError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
    for finding in findings:
        print(f"{scaffold.TEMPLATE_NAME}: {finding.line}:{finding.column} {finding.rule} "
              f"{finding.message}")  # fmt: skip
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
