#!/usr/bin/env python3
"""Make the Docker side ready: the PostgreSQL 15 image, the tests' PgBouncer, compose v2.

Idempotent: a second run finds both in place and says so. Run by scripts/setup,
.ci/run and the test fixtures; run it by hand after pruning images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tools/ is the checkout's, not an installed package
    sys.path.insert(0, str(ROOT))

from alumdb import environment  # noqa: E402
from alumdb.errors import AlumdbError  # noqa: E402
from tools import provision  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--image",
        default=None,
        help="image to make available (default: $POSTGRES_IMAGE or postgres:15-alpine)",
    )
    args = parser.parse_args(argv)
    try:
        client = environment.docker_client()
        print(provision.ensure_image(client, args.image).describe())
        try:
            print(provision.ensure_pooler_image(client).describe())
        except AlumdbError as exc:  # only the tests through a pooler need it
            print(f"note: the tests' PgBouncer image was not built: {exc}", file=sys.stderr)
        print(provision.ensure_compose_plugin().describe())
    except AlumdbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
