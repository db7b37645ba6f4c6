"""``.venv/bin/python -m bench.fixture``: a test's fresh database, cloned vs migrated.

Side by side on one server, interleaved: what the pytest plugin's ``alumdb_url``
costs a test, ``CREATE DATABASE ... TEMPLATE`` (PostgreSQL 15's default strategy,
and ``FILE_COPY``), against what a test would pay without it (a new database and a
full ``migrate`` of the same folder, in-process and through ``invoke migrate``).
The one-time template build and the drop after each test are reported too.
Target: ``alumdb_url`` at least 10 times faster than the in-process migrate.
Writes the ``fixture`` section of bench/results/latest.json (keeping the rest of
the document), or of ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from alumdb import catalog, database, runner, testdb
from bench.server import ROOT, BenchServer

TARGET = 10.0
RESULTS = ROOT / "bench" / "results" / "latest.json"


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(server: BenchServer, folder: Path, repeats: int, invoke_repeats: int) -> dict[str, Any]:
    """Medians (seconds) of each way to hand a test a migrated database; ratios to the fixture."""
    cat = catalog.load(folder)
    params = server.params()
    template = testdb.ensure_template(params, cat)
    rebuilt = _rebuild(params, cat, template.name)
    runs: dict[str, list[float]] = {k: [] for k in CONTENDERS}
    drops: list[float] = []
    with testdb.admin_connection(params) as admin:
        for i in range(repeats):
            for n, (key, contender) in enumerate(CONTENDERS.items()):
                if key == "invoke migrate" and i >= invoke_repeats:
                    continue
                name = f"bench_fixture_{i}_{n}"
                runs[key].append(contender(server, admin, cat, template.name, name))
                drops.append(_timed(lambda n=name: testdb.drop(admin, n)))  # type: ignore[misc]
    medians = {k: statistics.median(v) for k, v in runs.items() if v}
    fixture = medians["fixture (clone, default strategy)"]
    migrate = medians["migrate (engine, in-process)"]
    return {
        "folder": str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder),
        "migrations": len(cat),
        "repeats": repeats,
        "template_build_seconds": round(rebuilt, 4),
        "drop_median_seconds": round(statistics.median(drops), 4),
        "contenders": {
            k: {
                "median": round(m, 4),
                "runs": [round(r, 4) for r in runs[k]],
                "ratio_to_fixture": round(m / fixture, 2),
            }
            for k, m in medians.items()
        },
        "target": {
            "what": "alumdb_url (a clone of the template) at least 10x faster than a new "
            "database plus an in-process migrate",
            "ratio": round(migrate / fixture, 1),
            "with_drop_ratio": round(migrate / (fixture + statistics.median(drops)), 1),
            "pass": migrate / fixture >= TARGET,
        },
    }


def _rebuild(params: database.Conninfo, cat: catalog.Catalog, name: str) -> float:
    """The one-time cost: drop the template and build it again."""
    with testdb.admin_connection(params) as admin:
        testdb.drop(admin, name)
    return _timed(lambda: testdb.ensure_template(params, cat))


def _clone(strategy: str | None) -> Any:
    def run(server: BenchServer, admin: Any, cat: Any, template: str, name: str) -> float:
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
        if strategy:
            statement += sql.SQL(" STRATEGY {}").format(sql.SQL(strategy))
        return _timed(lambda: admin.execute(statement))

    return run


def _engine(server: BenchServer, admin: Any, cat: Any, template: str, name: str) -> float:
    def run() -> None:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(**server.params(name), autocommit=True) as conn:
            runner.migrate(conn, cat)

    return _timed(run)


def _invoke(server: BenchServer, admin: Any, cat: Any, template: str, name: str) -> float:
    def run() -> None:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        subprocess.run(
            [sys.executable, "-m", "invoke", "migrate", "--database-url",
             server.url(name, password=False), "--migrations", str(cat.directory)],
            cwd=ROOT, env=server.child_env(PGPASSWORD=server.password),
            capture_output=True, check=True,
        )  # fmt: skip

    return _timed(run)


CONTENDERS: dict[str, Callable[..., float]] = {
    "fixture (clone, default strategy)": _clone(None),
    "fixture (clone, FILE_COPY)": _clone("FILE_COPY"),
    "migrate (engine, in-process)": _engine,
    "invoke migrate": _invoke,
}


def lines(result: dict[str, Any]) -> list[str]:
    out = [f"{'way to get a fresh migrated database':<38} {'median':>9} {'x clone':>10}"]
    for key, c in result["contenders"].items():
        out.append(f"{key:<38} {c['median'] * 1000:7.1f}ms {c['ratio_to_fixture']:>9.1f}x")
    out.append(f"template build (once per folder state): {result['template_build_seconds']:.2f}s;"
               f" drop after a test: {result['drop_median_seconds'] * 1000:.1f}ms")  # fmt: skip
    t = result["target"]
    out.append(
        f"{'PASS' if t['pass'] else 'FAIL'}: {t['what']}: {t['ratio']}x"
        f" ({t['with_drop_ratio']}x counting the drop after the test)"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fixture", description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--invoke-repeats", type=int, default=5)
    parser.add_argument("--migrations", type=Path, default=ROOT / "migrations")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    server = BenchServer.create()
    try:
        print(f"starting PostgreSQL (compose project {server.tag})", flush=True)
        server.start(lock_table=False)
        result = measure(server, args.migrations.resolve(), args.repeats, args.invoke_repeats)
    finally:
        server.down()
    result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    for line in lines(result):
        print(line, flush=True)
    document = json.loads(args.output.read_text()) if args.output.is_file() else {}
    document["fixture"] = result
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote the fixture section of {args.output}", flush=True)
    return 0 if result["target"]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
