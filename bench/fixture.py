"""``.venv/bin/python -m bench.fixture``: a test's fresh database, through the fixture vs migrated.

Side by side on one server, interleaved round by round, the time a test waits to
get a fresh database with every migration of the folder applied:

* through the pytest plugin itself: real pytest sessions (subprocesses, the plugin
  loaded through its entry point, as in the CRM's repository) whose tests ask for
  ``alumdb_url``; pytest's own setup and teardown durations of each test are
  recorded. Once with the clone pool (``--alumdb-spares 2``, the default), once
  cloning and dropping synchronously (``--alumdb-spares 0``). The tests do what a
  CRM test does (connect, create a tenant and 20 contacts, look one up); their own
  duration is reported, since the pool hides a clone behind the previous test;
* ``CREATE DATABASE ... TEMPLATE`` alone, with each strategy (``WAL_LOG``, the
  default, and ``FILE_COPY``), on one connection;
* without the plugin: a new database plus a full ``migrate`` of the folder,
  in-process (``alumdb.runner``) and through ``invoke migrate``.

The first test of a session (which also finds the template and starts the pool) and
the last teardown (which drops what is left) are reported apart, as session costs.
Target: the fixture hands a test its database at least 10 times faster than the
in-process migrate. Writes the ``fixture`` section of bench/results/latest.json
(keeping the rest of the document), or of ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from alumdb import catalog, database, environment, runner, testdb
from bench.server import ADMIN_DB, ROOT, USER, BenchServer, free_port
from tools import provision

TARGET = 10.0
RESULTS = ROOT / "bench" / "results" / "latest.json"
TESTS_PER_SESSION = 10
POOL = "alumdb_url (clone pool, 2 spares)"
SYNC = "alumdb_url (--alumdb-spares 0)"
VOLUME = "volume"  # docker-compose.dev.yml's named volume: the machine's own disk
TMPFS = "tmpfs"
PGDATA = "/var/lib/postgresql/data"
MIGRATE = "migrate (engine, in-process)"
INVOKE = "invoke migrate"

# The inner session: tests as the CRM writes them, and a hook recording pytest's durations.
CONFTEST = """
import json, os

def pytest_runtest_logreport(report):
    with open(os.environ["ALUMDB_BENCH_OUT"], "a") as out:
        out.write(json.dumps({"test": report.nodeid, "when": report.when,
                              "seconds": report.duration, "outcome": report.outcome}) + "\\n")
"""
TESTS = """
import os, uuid
import psycopg
import pytest

@pytest.mark.parametrize("n", range(int(os.environ["ALUMDB_BENCH_TESTS"])))
def test_signup(alumdb_url, n):
    tenant = uuid.uuid4()
    with psycopg.connect(alumdb_url) as conn:
        conn.execute("INSERT INTO tenants (id, slug, name) VALUES (%s, 'acme', 'Acme')", (tenant,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO contacts (tenant_id, first_name, email) VALUES (%s, %s, %s)",
                [(tenant, f"c{i}", f"c{i}@example.org") for i in range(20)],
            )
        row = conn.execute(
            "SELECT count(*) FROM contacts WHERE tenant_id = %s AND email = 'c7@example.org'",
            (tenant,),
        ).fetchone()
    assert row == (1,)
"""


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def pytest_session(server: BenchServer, folder: Path, spares: int, tests: int) -> dict[str, Any]:
    """One real pytest session of ``tests`` tests using ``alumdb_url``; pytest's durations."""
    with tempfile.TemporaryDirectory(prefix="alumdb-bench-fixture-") as tmp:
        work = Path(tmp)
        (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (work / "conftest.py").write_text(CONFTEST, encoding="utf-8")
        (work / "test_crm.py").write_text(TESTS, encoding="utf-8")
        out = work / "durations.jsonl"
        env = {k: v for k, v in server.child_env().items() if not k.startswith("ALUMDB_")}
        env.update(ALUMDB_BENCH_OUT=str(out), ALUMDB_BENCH_TESTS=str(tests))
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
             "--alumdb-server", server.url("alumoutreach"), "--alumdb-migrations", str(folder),
             "--alumdb-spares", str(spares)],
            cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"inner pytest session failed: {result.stdout[-2000:]}")
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    setup = [r["seconds"] for r in records if r["when"] == "setup"]
    call = [r["seconds"] for r in records if r["when"] == "call"]
    teardown = [r["seconds"] for r in records if r["when"] == "teardown"]
    return {
        "session_start": setup[0],  # finds the template, starts the pool, waits for a clone
        "setup": setup[1:],
        "call": call,
        "teardown": teardown[:-1],
        "session_end": teardown[-1],  # drops what is left
    }


def _clone(strategy: str) -> Callable[..., float]:
    def run(server: BenchServer, admin: Any, cat: Any, template: str, name: str) -> float:
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY {}").format(
            sql.Identifier(name), sql.Identifier(template), sql.SQL(strategy)
        )
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


STATEMENTS: dict[str, Callable[..., float]] = {
    "CREATE DATABASE TEMPLATE (WAL_LOG)": _clone("WAL_LOG"),
    "CREATE DATABASE TEMPLATE (FILE_COPY)": _clone("FILE_COPY"),
    MIGRATE: _engine,
    INVOKE: _invoke,
}


@dataclass(frozen=True)
class TmpfsServer(BenchServer):
    """The same image and user, its data directory on tmpfs: ``docker run --tmpfs``, as a
    disposable test server is often run. Removed (memory freed) by :meth:`down`."""

    @classmethod
    def create(cls) -> TmpfsServer:
        tag = f"alumdbbenchtmpfs{os.getpid()}"
        return cls(tag=tag, port=free_port(), password=f"pw-{secrets.token_hex(8)}")

    def start(self, lock_table: bool = True) -> None:
        provision.ensure_image(environment.docker_client())
        self.down()
        subprocess.run(
            ["docker", "run", "-d", "--name", self.container, "--tmpfs", f"{PGDATA}:rw,size=2g",
             "-e", f"POSTGRES_USER={USER}", "-e", f"POSTGRES_DB={ADMIN_DB}",
             "-e", f"POSTGRES_PASSWORD={self.password}",
             "-p", f"127.0.0.1:{self.port}:5432", provision.configured_image()],
            capture_output=True, check=True, timeout=120,
        )  # fmt: skip
        self.wait_connect()

    def down(self) -> None:
        subprocess.run(["docker", "rm", "-f", "-v", self.container], capture_output=True,
                       check=False, timeout=120)  # fmt: skip


@dataclass
class Rounds:
    """What the rounds share, and every duration they found (contender -> part -> seconds)."""

    server: BenchServer
    cat: catalog.Catalog
    template: str
    tests: int
    found: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, key: str, part: str, values: list[float]) -> None:
        self.found.setdefault(key, {}).setdefault(part, []).extend(values)

    def session(self, key: str, spares: int) -> None:
        found = pytest_session(self.server, self.cat.directory, spares, self.tests)
        for part, values in found.items():
            self.add(key, part, values if isinstance(values, list) else [values])

    def statement(self, key: str, name: str) -> None:
        with testdb.admin_connection(self.server.params()) as admin:
            self.add(key, "setup", [STATEMENTS[key](self.server, admin, self.cat, self.template,
                                                    name)])  # fmt: skip
            self.add(key, "teardown", [_timed(lambda: testdb.drop(admin, name))])

    def round(self, i: int, invoke: bool) -> None:
        """Each contender once, in an order that turns with the round."""
        steps: list[Callable[[], None]] = [
            lambda: self.session(POOL, 2),
            lambda: self.session(SYNC, 0),
        ]
        for n, key in enumerate(STATEMENTS):
            if key != INVOKE or invoke:
                steps.append(lambda k=key, n=n: self.statement(k, f"bench_fixture_{i}_{n}"))  # type: ignore[misc]
        turn = i % len(steps)
        for step in steps[turn:] + steps[:turn]:
            step()


def measure(
    server: BenchServer, folder: Path, repeats: int, invoke_repeats: int,
    tests: int = TESTS_PER_SESSION,
) -> dict[str, Any]:  # fmt: skip
    """``repeats`` interleaved rounds on one server; medians; ratios to the fixture."""
    return measure_many({VOLUME: server}, folder, repeats, invoke_repeats, tests)[VOLUME]


def measure_many(
    servers: dict[str, BenchServer], folder: Path, repeats: int, invoke_repeats: int,
    tests: int = TESTS_PER_SESSION,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The same rounds on each server, the servers taking turns round by round."""
    cat = catalog.load(folder)
    rounds, rebuilt = {}, {}
    for label, server in servers.items():
        template = testdb.ensure_template(server.params(), cat)
        rebuilt[label] = _rebuild(server.params(), cat, template.name)
        rounds[label] = Rounds(server, cat, template.name, tests)
    for i in range(repeats):
        for each in rounds.values():
            each.round(i, invoke=i < invoke_repeats)
    folder_name = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
    return {
        label: {
            "folder": str(folder_name),
            "migrations": len(cat),
            "rounds": repeats,
            "tests_per_session": tests,
            "template_build_seconds": round(rebuilt[label], 4),
            **summarise(each.found),
        }
        for label, each in rounds.items()
    }


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4) if values else 0.0


def summarise(found: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """Medians per contender and part (setup: what a test waits); the target's ratios."""
    medians = {key: {part: _median(v) for part, v in parts.items()} for key, parts in found.items()}
    fixture = medians[POOL]["setup"]
    migrate = medians[MIGRATE]["setup"]
    contenders = {
        key: {
            "median": m["setup"],
            "teardown_median": m.get("teardown", 0.0),
            **{f"{part}_median": v for part, v in m.items() if part not in ("setup", "teardown")},
            "runs": len(found[key]["setup"]),
            "setup_max": round(max(found[key]["setup"]), 4),
            "ratio_to_fixture": round(m["setup"] / fixture, 1),
        }
        for key, m in medians.items()
    }
    return {
        "contenders": contenders,
        "target": {
            "what": "alumdb_url hands a test a fresh, fully migrated database at least 10x "
            "faster than a new database plus an in-process migrate",
            "ratio": round(migrate / fixture, 1),
            "with_teardown_ratio": round(migrate / (fixture + medians[POOL]["teardown"]), 1),
            "invoke_ratio": round(medians[INVOKE]["setup"] / fixture, 1),
            "synchronous_ratio": round(migrate / medians[SYNC]["setup"], 1),
            "pass": migrate / fixture >= TARGET,
        },
    }


def _rebuild(params: database.Conninfo, cat: catalog.Catalog, name: str) -> float:
    """The one-time cost: drop the template and build it again."""
    with testdb.admin_connection(params) as admin:
        testdb.drop(admin, name)
    return _timed(lambda: testdb.ensure_template(params, cat))


def lines(result: dict[str, Any]) -> list[str]:
    out = [f"{'a test gets a fresh migrated database':<40} {'waits':>8} {'x fixture':>10}"
           f" {'then':>8}  runs"]  # fmt: skip
    for key, c in result["contenders"].items():
        out.append(f"{key:<40} {c['median'] * 1000:6.1f}ms {c['ratio_to_fixture']:>9.1f}x"
                   f" {c['teardown_median'] * 1000:6.1f}ms  {c['runs']}")  # fmt: skip
    pool, sync = result["contenders"][POOL], result["contenders"][SYNC]
    out.append(f"('then': teardown, or the DROP after a statement.) The tests' own run:"
               f" {pool['call_median'] * 1000:.0f} ms; a session's first test:"
               f" {pool['session_start_median'] * 1000:.0f} ms with the pool,"
               f" {sync['session_start_median'] * 1000:.0f} ms without; its end:"
               f" {pool['session_end_median'] * 1000:.0f} ms /"
               f" {sync['session_end_median'] * 1000:.0f} ms")  # fmt: skip
    out.append(f"template build (once per folder state): {result['template_build_seconds']:.2f}s")
    t = result["target"]
    out.append(
        f"{'PASS' if t['pass'] else 'FAIL'}: {t['what']}: {t['ratio']}x"
        f" ({t['with_teardown_ratio']}x counting the teardown; {t['invoke_ratio']}x against"
        f" invoke migrate; without the pool {t['synchronous_ratio']}x)"
    )
    return out


def section(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``fixture`` section of latest.json: one result per server storage."""
    return {"servers": results, "loadavg": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fixture", description=__doc__)
    parser.add_argument("--repeats", type=int, default=12, help="interleaved rounds")
    parser.add_argument("--invoke-repeats", type=int, default=5)
    parser.add_argument("--tests", type=int, default=TESTS_PER_SESSION,
                        help="tests per pytest session")  # fmt: skip
    parser.add_argument(
        "--no-tmpfs", action="store_true", help="only the compose project's server (a volume)"
    )
    parser.add_argument("--migrations", type=Path, default=ROOT / "migrations")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    servers: dict[str, BenchServer] = {VOLUME: BenchServer.create()}
    if not args.no_tmpfs:
        servers[TMPFS] = TmpfsServer.create()
    load_start = [round(x, 2) for x in os.getloadavg()]
    try:
        for label, server in servers.items():
            print(f"starting PostgreSQL ({label}: {server.tag})", flush=True)
            server.start(lock_table=False)
        found = measure_many(
            servers, args.migrations.resolve(), args.repeats, args.invoke_repeats, args.tests
        )
    finally:
        for server in servers.values():
            server.down()
    result = section(found)
    result["loadavg"] = {"start": load_start, "end": result["loadavg"]}
    for label, each in found.items():
        print(f"\n{label}:", flush=True)
        for line in lines(each):
            print(line, flush=True)
    document = json.loads(args.output.read_text()) if args.output.is_file() else {}
    document["fixture"] = result
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote the fixture section of {args.output}", flush=True)
    return 0 if all(each["target"]["pass"] for each in found.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
