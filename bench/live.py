"""Live traffic: how long the application stalls behind a migration that meets a blocker.

The scenario of issue 12, on a database migrated with the real ``migrations/`` and
seeded with one tenant and :data:`CONTACTS` contacts:

1. the application: :data:`THREADS` threads, each on its own connection, reading or
   updating one random contact (half each) every :data:`PAUSE` seconds, every
   query's latency recorded;
2. after :data:`LEAD` seconds, a blocker (``application_name`` ``bench report``) opens
   a transaction that reads ``contacts`` and holds it (a report, a slow request);
3. :data:`MIGRATE_AFTER` seconds into the blocker, the contender applies one pending
   file, ``ALTER TABLE contacts ADD COLUMN IF NOT EXISTS nickname TEXT``; the blocker
   ends ``hold`` seconds after the contender first asks for its lock on ``contacts``
   (seen in ``pg_locks``), so every contender meets the same wait however long it
   takes to start (a container for the spec loop, an interpreter for invoke);
4. a watcher polls the catalog (no lock taken) for the new column, so "landed" is the
   moment the column became visible, measured from the blocker's COMMIT.

Per contender: the application's worst and 99th-percentile latency over the queries
that overlapped the migration (from its start to its end), the baseline p99 before
the blocker, how long after the blocker ended the migration landed, the retries it
printed and its outcome. Contenders run one after the other, each on a database of
its own, in one process against one server, and the order rotates each repeat.
"""

from __future__ import annotations

import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from alumdb import catalog, database, runner
from bench.contenders import dbmate_binary
from bench.server import COMPOSE_FILE, ROOT, BenchServer, tail
from bench.workloads import REAL_MIGRATIONS

THREADS = 4
PAUSE = 0.01
CONTACTS = 1000
LEAD = 1.0
MIGRATE_AFTER = 0.5
TAIL = 1.0
FULL_HOLD = 8.0
QUICK_HOLD = 3.0
DEADLINE = 180.0  # a contender still running this long after it started is stopped
CONTENDERS = ("invoke", "spec", "dbmate")
LABELS = {
    "invoke": "invoke migrate (defaults)",
    "spec": "spec loop (psql per file)",
    "dbmate": "dbmate",
}
NAME = "add_contact_nickname"
DDL = "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS nickname TEXT;"
BLOCKER_NAME = "bench report"
# invoke migrate with another --lock-timeout: what the default trades off (full runs).
LOCK_TIMEOUT_PREFIX = "invoke --lock-timeout "
FULL_LOCK_TIMEOUTS = (0.05, 0.5)


def lock_timeout_contender(seconds: float) -> str:
    return f"{LOCK_TIMEOUT_PREFIX}{seconds:g}"


def label(key: str) -> str:
    return LABELS.get(key, key)


@dataclass
class Run:
    """One contender's migration under live traffic."""

    contender: str
    outcome: str = "not run"
    exit_code: int | None = None
    max_stall: float | None = None  # seconds: the slowest application query in the window
    p99: float | None = None
    baseline_p99: float | None = None  # before the blocker began
    baseline_max: float | None = None
    queries: int = 0  # application queries that overlapped the migration
    landed_after_blocker: float | None = None  # seconds from the blocker's COMMIT
    migration_seconds: float | None = None  # the contender's wall-clock time
    retries: int = 0  # "retrying" lines the contender printed
    blocker_seconds: float | None = None  # how long the blocker held contacts in all
    output: str = ""

    def to_json(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return round(value, 4) if value is not None else None

        return {
            "contender": self.contender,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "max_stall": r(self.max_stall),
            "p99": r(self.p99),
            "baseline_p99": r(self.baseline_p99),
            "baseline_max": r(self.baseline_max),
            "queries": self.queries,
            "landed_after_blocker": r(self.landed_after_blocker),
            "migration_seconds": r(self.migration_seconds),
            "retries": self.retries,
            "blocker_seconds": r(self.blocker_seconds),
        }


@dataclass
class Layout:
    """The pending file in each contender's format, beside the applied real ones."""

    root: Path  # migrations/ (real files + the new one) and the compose file
    dbmate_dir: Path  # the new file alone, in dbmate's format
    filename: str

    @property
    def migrations(self) -> Path:
        return self.root / "migrations"


def layout(base: Path) -> Layout:
    """Copy ``migrations/`` and add the next numbered file: the ``nickname`` column."""
    root = base / "live"
    folder = root / "migrations"
    folder.mkdir(parents=True)
    shutil.copyfile(COMPOSE_FILE, root / COMPOSE_FILE.name)
    for source in sorted(REAL_MIGRATIONS.glob("*.sql")):
        shutil.copyfile(source, folder / source.name)
    number = catalog.load(folder).highest + 1
    filename = catalog.file_name(number, NAME)
    version = catalog.format_version(number)
    text = (
        "-- ============================================================\n"
        f"-- Migration: {filename}\n"
        "-- Purpose: A nickname for contacts (bench: live-traffic scenario)\n"
        "-- ============================================================\n\n"
        f"{DDL}\n\n-- Record this migration\n"
        f"INSERT INTO schema_migrations (version, name)\nVALUES ('{version}', '{NAME}')\n"
        "ON CONFLICT (version) DO NOTHING;\n"
    )
    (folder / filename).write_text(text, encoding="utf-8")
    dbmate_dir = root / "dbmate"
    dbmate_dir.mkdir()
    (dbmate_dir / filename).write_text(f"-- migrate:up\n{text}\n-- migrate:down\n", "utf-8")
    catalog.load(folder)  # the folder is valid for the runner
    return Layout(root=root, dbmate_dir=dbmate_dir, filename=filename)


def prepare(server: BenchServer, dbname: str) -> tuple[str, list[str]]:
    """A database migrated with the real files and seeded; its tenant id and contact ids."""
    server.create_database(dbname)
    with database.connect(server.params(dbname)) as conn:
        runner.migrate(conn, catalog.load(REAL_MIGRATIONS))
        row = conn.execute(
            "INSERT INTO tenants (slug, name) VALUES ('bench', 'Bench') RETURNING id::text"
        ).fetchone()
        assert row is not None
        tenant = str(row[0])
        ids = [
            str(r[0])
            for r in conn.execute(
                "INSERT INTO contacts (tenant_id, first_name, email)"
                " SELECT %s, 'c' || g, 'c' || g || '@example.org'"
                " FROM generate_series(1, %s) AS g RETURNING id::text",
                (tenant, CONTACTS),
            )
        ]
        conn.execute("ANALYZE contacts")
    return tenant, ids


@dataclass
class Traffic:
    """The application: threads reading and updating contacts, every latency recorded."""

    server: BenchServer
    dbname: str
    tenant: str
    ids: list[str]
    samples: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for index in range(THREADS):
            thread = threading.Thread(target=self._loop, args=(index,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _loop(self, index: int) -> None:
        rng = random.Random(index)  # noqa: S311 - which contact, not a secret
        params = {**self.server.params(self.dbname), "application_name": f"bench app {index}"}
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                while not self.stop.is_set():
                    contact = rng.choice(self.ids)
                    started = time.perf_counter()
                    if rng.random() < 0.5:
                        conn.execute(
                            "SELECT first_name, email FROM contacts"
                            " WHERE tenant_id = %s AND id = %s",
                            (self.tenant, contact),
                        ).fetchall()
                    else:
                        conn.execute(
                            "UPDATE contacts SET last_activity_at = now()"
                            " WHERE tenant_id = %s AND id = %s",
                            (self.tenant, contact),
                        )
                    with self.lock:
                        self.samples.append((started, time.perf_counter() - started))
                    time.sleep(PAUSE)
        except psycopg.Error as exc:
            self.errors.append(str(exc).splitlines()[0])

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=DEADLINE)

    def window(self, start: float, end: float) -> list[float]:
        """Latencies of the queries that overlapped ``[start, end]``."""
        with self.lock:
            return [s for t, s in self.samples if t <= end and t + s >= start]

    def before(self, moment: float) -> list[float]:
        with self.lock:
            return [s for t, s in self.samples if t + s < moment]


def _p99(values: list[float]) -> float | None:
    if len(values) < 2:
        return max(values) if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def _watch_column(
    server: BenchServer, dbname: str, stop: threading.Event, seen: list[float]
) -> None:
    """Record when ``contacts.nickname`` becomes visible (polled every 5 ms, no lock)."""
    query = (
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid ="
        " 'contacts'::regclass AND attname = 'nickname' AND NOT attisdropped)"
    )
    with psycopg.connect(**server.params(dbname), autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute(query).fetchone()
            if row and row[0]:
                seen.append(time.perf_counter())
                return
            time.sleep(0.005)


# Whether a session other than the bench's own waits for a lock on contacts because of
# the blocker (%s: its pid), now. Not any wait: the spec loop's earlier files wait
# briefly behind the application's writes (CREATE INDEX IF NOT EXISTS takes SHARE).
_FIRST_ASK = """
SELECT EXISTS (
  SELECT FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
   WHERE l.locktype = 'relation' AND l.relation = 'contacts'::regclass AND NOT l.granted
     AND a.application_name NOT LIKE 'bench %%' AND %s = ANY (pg_blocking_pids(l.pid)))
"""


def _wait_for_ask(
    server: BenchServer, dbname: str, proc: subprocess.Popen[str], blocker: int
) -> bool:
    """Poll (every 5 ms) until the contender waits for its lock on contacts behind the
    blocker; False when it ended (or :data:`DEADLINE` passed) without asking."""
    deadline = time.perf_counter() + DEADLINE
    with psycopg.connect(**server.params(dbname), autocommit=True) as conn:
        while proc.poll() is None and time.perf_counter() < deadline:
            row = conn.execute(_FIRST_ASK, (blocker,)).fetchone()
            if row and row[0]:
                return True
            time.sleep(0.005)
    return False


def command(key: str, server: BenchServer, where: Layout, dbname: str) -> list[str]:
    """The contender's command line (its environment comes from :func:`environ`)."""
    if key.startswith("invoke"):
        extra = ["--lock-timeout", key.removeprefix(LOCK_TIMEOUT_PREFIX)] if key != "invoke" else []
        return [
            sys.executable, "-m", "invoke", "migrate",
            "--database-url", server.url(dbname, password=False),
            "--migrations", str(where.migrations), *extra,
        ]  # fmt: skip
    if key == "spec":
        from alumdb import environment

        return [
            *environment.compose_command(), "-f", str(where.root / COMPOSE_FILE.name),
            "run", "--rm", "-e", f"PGDATABASE={dbname}", "migrations",
        ]  # fmt: skip
    return [
        dbmate_binary(), "--migrations-dir", str(where.dbmate_dir),
        "--migrations-table", "dbmate_migrations", "--no-dump-schema", "migrate",
    ]  # fmt: skip


def environ(key: str, server: BenchServer, dbname: str) -> dict[str, str]:
    if key.startswith("invoke"):
        return server.child_env(PGPASSWORD=server.password)
    if key == "dbmate":
        url = server.url(dbname, scheme="postgres") + "?sslmode=disable"
        return server.child_env(DATABASE_URL=url)
    return server.child_env()


def run_one(server: BenchServer, key: str, where: Layout, hold: float, dbname: str) -> Run:
    """The scenario for one contender, on a new database ``dbname``."""
    result = Run(key)
    tenant, ids = prepare(server, dbname)
    traffic = Traffic(server, dbname, tenant, ids)
    stop_watch = threading.Event()
    seen: list[float] = []
    watcher = threading.Thread(target=_watch_column, args=(server, dbname, stop_watch, seen))
    blocker = psycopg.connect(**server.params(dbname), application_name=BLOCKER_NAME)
    proc: subprocess.Popen[str] | None = None
    try:
        traffic.start()
        watcher.start()
        time.sleep(LEAD)
        blocked_at = time.perf_counter()
        blocker.execute("SELECT count(*) FROM contacts").fetchall()  # holds ACCESS SHARE
        time.sleep(MIGRATE_AFTER)
        migration_start = time.perf_counter()
        proc = subprocess.Popen(
            command(key, server, where, dbname),
            cwd=ROOT if key.startswith("invoke") else where.root,
            env=environ(key, server, dbname),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if _wait_for_ask(server, dbname, proc, blocker.info.backend_pid):
            time.sleep(hold)
        blocker.commit()
        blocker_end = time.perf_counter()
        output, _ = proc.communicate(timeout=DEADLINE)
        migration_end = time.perf_counter()
        time.sleep(TAIL)
    except subprocess.TimeoutExpired:
        assert proc is not None
        proc.kill()
        output, _ = proc.communicate()
        result.outcome = f"stopped after {DEADLINE:.0f}s"
        return result
    finally:
        traffic.finish()
        stop_watch.set()
        watcher.join(timeout=10)
        blocker.close()
        server.drop_database(dbname)
    moments = {"blocked": blocked_at, "blocker_end": blocker_end}
    moments.update(start=migration_start, end=migration_end)
    return _score(
        result, traffic, returncode=proc.returncode, output=output, moments=moments, seen=seen
    )


def _score(
    result: Run,
    traffic: Traffic,
    *,
    returncode: int,
    output: str,
    moments: dict[str, float],
    seen: list[float],
) -> Run:
    """Fill ``result`` from the latencies and the moments of one scenario."""
    window = traffic.window(moments["start"], moments["end"])
    baseline = traffic.before(moments["blocked"])
    result.exit_code = returncode
    result.output = output
    result.retries = sum(1 for line in output.splitlines() if "retrying" in line)
    result.max_stall = max(window) if window else None
    result.p99 = _p99(window)
    result.baseline_p99 = _p99(baseline)
    result.baseline_max = max(baseline) if baseline else None
    result.queries = len(window)
    result.migration_seconds = moments["end"] - moments["start"]
    result.blocker_seconds = moments["blocker_end"] - moments["blocked"]
    if seen:
        result.landed_after_blocker = seen[0] - moments["blocker_end"]
    if returncode == 0 and seen:
        result.outcome = "applied"
    else:
        result.outcome = f"failed (exit {returncode}): {tail(output, 2)}"[:300]
    if traffic.errors:
        result.outcome += f"; application errors: {traffic.errors[0]}"[:200]
    return result


def measure(
    server: BenchServer,
    base: Path,
    *,
    hold: float,
    repeats: int,
    contenders: tuple[str, ...] = CONTENDERS,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every contender ``repeats`` times (order rotating); the summary for the JSON."""
    where = layout(base)
    runs: list[Run] = []
    for rep in range(repeats):
        order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]
        for key in order:
            dbname = f"bench_live_{key.replace(' ', '_').replace('-', '').replace('.', '_')}_{rep}"
            done = run_one(server, key, where, hold, dbname)
            runs.append(done)
            say(
                f"  live {rep + 1}/{repeats} {key:<7} {done.outcome[:60]}:"
                f" max stall {_s(done.max_stall)} s, p99 {_s(done.p99)} s, landed"
                f" {_s(done.landed_after_blocker)} s after the blocker, {done.retries} retries"
            )
    return summarise(runs, where.filename, hold, contenders)


def _s(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def summarise(
    runs: list[Run], filename: str, hold: float, contenders: tuple[str, ...]
) -> dict[str, Any]:
    """Per contender: the worst max stall, the worst p99 and the slowest landing."""
    summary: dict[str, Any] = {}
    for key in contenders:
        mine = [r for r in runs if r.contender == key]
        stalls = [r.max_stall for r in mine if r.max_stall is not None]
        p99s = [r.p99 for r in mine if r.p99 is not None]
        landed = [r.landed_after_blocker for r in mine if r.landed_after_blocker is not None]
        quiet = [r.baseline_max for r in mine if r.baseline_max is not None]
        summary[key] = {
            "label": label(key),
            "max_stall": round(max(stalls), 4) if stalls else None,
            "p99": round(max(p99s), 4) if p99s else None,
            "landed_after_blocker": round(max(landed), 4) if landed else None,
            # The application's worst latency before the blocker: the machine's noise.
            "baseline_max": round(max(quiet), 4) if quiet else None,
            "outcomes": sorted({r.outcome for r in mine}),
            "all_applied": all(r.outcome == "applied" for r in mine),
        }
    return {
        "scenario": {
            "threads": THREADS,
            "pause_seconds": PAUSE,
            "contacts": CONTACTS,
            "blocker_after_ask_seconds": hold,
            "migration_starts_after_blocker_seconds": MIGRATE_AFTER,
            "file": filename,
            "ddl": DDL,
        },
        "summary": summary,
        "runs": [r.to_json() for r in runs],
    }


def table(live: dict[str, Any]) -> str:
    """The contenders side by side."""
    scenario = live["scenario"]
    lines = [
        f"live traffic: {scenario['threads']} threads on contacts every "
        f"{scenario['pause_seconds'] * 1000:.0f} ms; a blocker holds contacts until "
        f"{scenario['blocker_after_ask_seconds']:g} s after the migration "
        f"({scenario['ddl']}) first asks for it",
        f"{'contender':<28} {'max stall s':>11} {'p99 s':>8} {'landed after blocker s':>23}"
        f" {'max before blocker s':>21}  outcome",
    ]
    for data in live["summary"].values():
        outcomes = "; ".join(data["outcomes"])
        lines.append(
            f"{data['label']:<28} {_s(data['max_stall']):>11} {_s(data['p99']):>8}"
            f" {_s(data['landed_after_blocker']):>23} {_s(data.get('baseline_max')):>21}"
            f"  {outcomes}"
        )
    return "\n".join(lines)
