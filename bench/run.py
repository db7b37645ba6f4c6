"""Entry point: ``python bench/run.py [--quick]`` (see bench/README.md).

Runs under the project's virtualenv (.venv) even when started with another
interpreter, and makes the ``bench`` package importable from the checkout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def _main() -> int:
    if VENV_PYTHON.is_file() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), *sys.argv])  # noqa: S606 - our own venv
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
