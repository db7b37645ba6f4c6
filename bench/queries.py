"""``.venv/bin/python -m bench.queries``: the hot-query catalogue on a seeded database.

Brings up its own compose project (like the rest of bench/), migrates, seeds
``--tenants`` x ``--contacts`` with ``invoke seed``'s engine, then runs every query
of bench/queries.sql with ``EXPLAIN (ANALYZE, BUFFERS)`` and reports its plan shape
(which index, or a sequential scan) and time. With ``--baseline VERSION`` the
catalogue runs twice: on the schema up to VERSION, then after the remaining
migrations, so a migration that adds an index shows its effect side by side.
Writes bench/results/queries.json and queries.md. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from alumdb import catalog, runner
from alumdb import seed as seed_engine
from bench.server import ROOT, BenchError, BenchServer

CATALOGUE = ROOT / "bench" / "queries.sql"
RESULTS = ROOT / "bench" / "results"
DBNAME = "hotqueries"
STATE = Path(tempfile.gettempdir()) / f"alumdb-bench-queries-{os.getuid()}.json"
AS_CRM = "as the CRM (alumoutreach_app, app.tenant_id set; the dequeue as alumoutreach_worker)"
BLOCK = re.compile(
    r"^-- name: (?P<name>\w+)\n-- expects: (?P<expects>\w+)\n(?:-- role: (?P<role>\w+)\n)?",
    re.MULTILINE,
)
# How the CRM runs a query since 012 (README.md, "Tenant isolation: the application's
# contract"): as a login role granted alumoutreach_app with app.tenant_id set for the
# transaction, or, for the job dequeue only, granted alumoutreach_worker with no tenant.
ROLES = {"app": "alumoutreach_app", "worker": "alumoutreach_worker"}


@dataclass(frozen=True)
class Query:
    name: str
    expects: str
    comment: str
    sql: str
    role: str = "app"  # a key of ROLES


def load_catalogue(path: Path = CATALOGUE) -> list[Query]:
    """The queries of the catalogue, in file order."""
    text = path.read_text(encoding="utf-8")
    starts = list(BLOCK.finditer(text))
    queries = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        body = text[match.end() : end].strip()
        comments = [line[3:] for line in body.splitlines() if line.startswith("-- ")]
        statement = "\n".join(line for line in body.splitlines() if not line.startswith("--"))
        role = match["role"] or "app"
        if role not in ROLES:
            raise BenchError(f"{path}: query {match['name']}: unknown role {role!r}")
        queries.append(Query(match["name"], match["expects"], " ".join(comments),
                             statement.strip().rstrip(";"), role))  # fmt: skip
    return queries


def sample(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Parameters drawn from the seeded data: a mid-sized tenant and its busiest rows."""

    def one(query: str, *args: Any) -> Any:
        row = conn.execute(query, args).fetchone()
        if row is None:
            raise BenchError(f"the seeded database has no row for: {query}")
        return row[0]

    tenant = one("SELECT id FROM tenants ORDER BY slug OFFSET (SELECT count(*) / 2 FROM tenants)"
                 " LIMIT 1")  # fmt: skip
    return {
        "tenant_id": tenant,
        "queue": "email",
        "email": one("SELECT upper(email::text) FROM contacts WHERE tenant_id = %s AND email"
                     " IS NOT NULL AND phone IS NOT NULL ORDER BY id LIMIT 1", tenant),
        "phone": one("SELECT phone FROM contacts WHERE tenant_id = %s AND phone IS NOT NULL"
                     " ORDER BY id LIMIT 1", tenant),
        "contact_id": one("SELECT contact_id FROM contact_timeline_events WHERE tenant_id = %s"
                          " GROUP BY contact_id ORDER BY count(*) DESC, contact_id LIMIT 1",
                          tenant),
        "thread_id": one("SELECT thread_id FROM inbox_messages WHERE tenant_id = %s"
                         " GROUP BY thread_id ORDER BY count(*) DESC, thread_id LIMIT 1", tenant),
        "segment_id": one("SELECT id FROM segments WHERE tenant_id = %s"
                          " ORDER BY member_count DESC LIMIT 1", tenant),
        "campaign_id": one("SELECT campaign_id FROM campaign_messages WHERE tenant_id = %s"
                           " GROUP BY campaign_id ORDER BY count(*) DESC LIMIT 1", tenant),
    }  # fmt: skip


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


def shape(plan: dict[str, Any]) -> str:
    """``Limit > Index Scan using idx_x on t > ...``: the plan's nodes, outermost first."""
    parts = []
    for node in _nodes(plan):
        part = node["Node Type"]
        if node.get("Index Name"):
            part += f" using {node['Index Name']}"
        if node.get("Relation Name"):
            part += f" on {node['Relation Name']}"
        parts.append(part)
    return " > ".join(parts)


def explain(conn: psycopg.Connection[Any], query: Query, params: dict[str, Any],
            repeats: int, as_app: bool = False) -> dict[str, Any]:  # fmt: skip
    """Run ``EXPLAIN (ANALYZE, BUFFERS)`` ``repeats`` times (rolled back); the median time.

    With ``as_app`` each run is a transaction as the CRM's: ``SET LOCAL ROLE`` to the
    query's role (its policies and privileges apply) and, for alumoutreach_app,
    ``app.tenant_id`` set to the sampled tenant; otherwise as the connection's role.
    """
    times, plan = [], {}
    for _ in range(repeats):
        with conn.transaction(force_rollback=True):
            if as_app:
                conn.execute(f"SET LOCAL ROLE {ROLES[query.role]}")
                if query.role == "app":
                    conn.execute(
                        "SELECT set_config('app.tenant_id', %s, true)", (str(params["tenant_id"]),)
                    )
            row = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query.sql, params
            ).fetchone()
        assert row is not None  # EXPLAIN always answers
        document = row[0][0]
        times.append(float(document["Execution Time"]))
        plan = document["Plan"]
    nodes = _nodes(plan)
    indexes = sorted({n["Index Name"] for n in nodes if n.get("Index Name")})
    seq = sorted({n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"})
    verdict = "seq scan" if seq else "index" if query.expects in indexes else "other index"
    return {
        "name": query.name,
        "expects": query.expects,
        "comment": query.comment,
        "role": ROLES[query.role] if as_app else "owner",
        "verdict": verdict,
        "indexes": indexes,
        "seq_scans": seq,
        "index_conditions": sorted({n["Index Cond"] for n in nodes if n.get("Index Cond")}),
        "filters": sorted({n["Filter"] for n in nodes if n.get("Filter")}),
        "rows_removed_by_filter": sum(int(n.get("Rows Removed by Filter", 0)) for n in nodes),
        "shape": shape(plan),
        "median_ms": round(statistics.median(times), 3),
        "runs_ms": [round(t, 3) for t in times],
        "rows": plan.get("Actual Rows"),
        "shared_hit": plan.get("Shared Hit Blocks"),
        "shared_read": plan.get("Shared Read Blocks"),
    }


def run_catalogue(url: str, repeats: int, as_app: bool = False) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        params = sample(conn)
        conn.rollback()
        return [explain(conn, q, params, repeats, as_app) for q in load_catalogue()]


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| query | as | expects | plan | median ms | rows | rows filtered out | shape |",
             "|---|---|---|---|---:|---:|---:|---|"]  # fmt: skip
    for r in results:
        lines.append(f"| {r['name']} | {r.get('role', 'owner')} | {r['expects']}"
                     f" | {r['verdict']} | {r['median_ms']:.3f} | {r['rows']}"
                     f" | {r.get('rows_removed_by_filter', '')} | {r['shape']} |")  # fmt: skip
    return "\n".join(lines)


def seed_parallel(
    url: str, options: seed_engine.Options, progress: Any, jobs: int
) -> seed_engine.Report:
    """Seed with ``jobs`` connections, each its own share of the tenants; rows added up."""
    from concurrent.futures import ThreadPoolExecutor

    def one(k: int) -> seed_engine.Report:
        share = list(range(k + 1, options.tenants + 1, jobs))
        with psycopg.connect(url, autocommit=True) as conn:
            return seed_engine.seed(conn, options, progress, only=share)

    started = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        reports = list(pool.map(one, range(jobs)))
    total = seed_engine.Report(rows=dict.fromkeys(reports[0].rows, 0))
    for r in reports:
        for table, n in r.rows.items():
            total.rows[table] += n
        total.seeded += r.seeded
    total.seconds = time.perf_counter() - started
    return total


def lean(sizes: seed_engine.Sizes, detail: float) -> seed_engine.Sizes:
    """Every contact with its addresses; the rest thinner, so a million contacts load in
    about half an hour on two busy cores (the catalogue needs big tables, not rich ones)."""
    return dataclasses.replace(
        sizes,
        detail=detail,
        messages_per_contact=0.5,
        threads_per_contact=0.1,
        workflow_runs_per_contact=0.02,
        sequence_runs_per_contact=0.05,
        jobs_per_contact=0.05,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.queries", description=__doc__)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--contacts", type=int, default=10_000, help="per tenant")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=4, help="connections seeding at once")
    parser.add_argument(
        "--detail", type=float, default=0.1, help="share of contacts with attributes, history"
    )
    parser.add_argument("--repeats", type=int, default=5, help="EXPLAIN ANALYZE runs per query")
    parser.add_argument("--baseline", help="run the catalogue at this version first, e.g. 011")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the seeded server running for --reuse (see --state)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure on the server a --keep run left (no start, no seeding)",
    )
    parser.add_argument(
        "--down", action="store_true", help="remove the server a --keep run left, and nothing else"
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=STATE,
        help=f"where --keep records the server (mode 0600; default {STATE})",
    )
    return parser.parse_args(argv)  # fmt: skip


def _start_and_seed(server: BenchServer, folder: catalog.Catalog,
                    args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """A new server, migrated up to ``--baseline`` and seeded; what the seeding did."""
    started = time.perf_counter()
    say(f"starting PostgreSQL (compose project {server.tag}, port {server.port})")
    server.start(lock_table=False)
    server.create_database(DBNAME)
    url = server.url(DBNAME)
    with psycopg.connect(url, autocommit=True) as conn:
        runner.migrate(conn, folder, runner.Options(target=args.baseline))
        options = seed_engine.options(args.tenants, "large", args.contacts, args.seed)
        options = dataclasses.replace(options, sizes=lean(options.sizes, args.detail))
        say(f"seeding {args.tenants} tenants x {args.contacts:,} contacts")
        last = [0.0]

        def progress(p: seed_engine.Progress) -> None:
            if p.table == seed_engine.TABLES[-1] and time.perf_counter() - last[0] > 10:
                last[0] = time.perf_counter()
                say(f"  tenant {p.tenant}/{p.tenants}: {p.rows:,} rows, "
                    f"{time.perf_counter() - started:.0f}s")  # fmt: skip

        report = seed_parallel(url, options, progress, args.jobs)
        conn.execute("ANALYZE")
    say(f"seeded {sum(report.rows.values()):,} rows in {report.seconds:.0f}s")
    return {
        "rows": report.rows,
        "seconds": round(report.seconds, 1),
        "tenants": args.tenants,
        "contacts_per_tenant": args.contacts,
        "sizes": dataclasses.asdict(options.sizes),
        "loadavg_after": loadavg(),
    }


def _kept(state: Path) -> tuple[BenchServer, dict[str, Any]]:
    """The server (and its seeding) a ``--keep`` run recorded in ``state``."""
    try:
        kept = json.loads(state.read_text(encoding="utf-8"))
        server = BenchServer(tag=kept["tag"], port=int(kept["port"]), password=kept["password"])
    except (OSError, ValueError, KeyError) as exc:
        raise BenchError(f"{state}: no server kept by --keep ({exc})") from None
    os.environ.update(server.environ())  # compose addresses the project through these
    return server, dict(kept.get("seed") or {})


def _keep(state: Path, server: BenchServer, seed: dict[str, Any]) -> None:
    record = {"tag": server.tag, "port": server.port, "password": server.password, "seed": seed}
    fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(record, out, indent=2, default=str)
    say(f"kept compose project {server.tag} (recorded in {state}): measure again with "
        f"--reuse, remove it with --down")  # fmt: skip


def catalogues(url: str, folder: catalog.Catalog, args: argparse.Namespace) -> dict[str, Any]:
    """The catalogue at ``--baseline`` (if the database is there), then on the whole folder
    as the owner and as the CRM's roles."""
    runs = {}
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        version = row[0] if row else None
        if args.baseline and version == args.baseline:
            label = f"at {args.baseline}, as the owner"
            say(f"catalogue {label}")
            runs[label] = run_catalogue(url, args.repeats)
            say(table(runs[label]))
        elif args.baseline:
            say(f"the database is at {version}, not {args.baseline}: no baseline run")
        applied = runner.migrate(conn, folder)
        if applied.applied:
            say(f"applied {', '.join(m.filename for m, _ in applied.applied)}")
            conn.execute("ANALYZE")
    final = f"all migrations ({folder.migrations[-1].filename})"
    for label, as_app in ((f"{final}, as the owner", False), (f"{final}, {AS_CRM}", True)):
        say(f"catalogue {label} (load average {loadavg()})")
        runs[label] = run_catalogue(url, args.repeats, as_app)
        say(table(runs[label]))
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    folder = catalog.load(ROOT / "migrations")
    document: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    document["repeats"] = args.repeats
    server: BenchServer | None = None
    keep = args.keep
    try:
        if args.reuse or args.down:
            server, document["seed"] = _kept(args.state)
            keep = keep or (args.reuse and not args.down)
            if args.down:
                return 0
            say(f"reusing compose project {server.tag} (seeded before: no seeding)")
        else:
            server = BenchServer.create()
            document["seed"] = _start_and_seed(server, folder, args)
        document["load_before"] = loadavg()
        document["runs"] = catalogues(server.url(DBNAME), folder, args)
        document["load_after"] = loadavg()
        document["database_size"] = server.scalar(
            f"SELECT pg_size_pretty(pg_database_size('{DBNAME}'))"
        )
    except BenchError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        if server is not None and keep:
            _keep(args.state, server, document.get("seed", {}))
        elif server is not None:
            say(f"removing compose project {server.tag}")
            server.down()
            args.state.unlink(missing_ok=True)
    document["seconds"] = round(time.perf_counter() - started, 1)
    return _write(args.output, document, say)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def say(line: str) -> None:
    print(line, flush=True)


def _write(folder: Path, document: dict[str, Any], say: Callable[[str], None]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "queries.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    seed = document["seed"]
    parts = [f"# Hot queries on {seed['tenants']} tenants x {seed['contacts_per_tenant']:,}"
             f" contacts ({document['date']})", "",
             f"Database size {document['database_size']}; seeded in {seed['seconds']}s."
             f" Times: median of {document['repeats']} EXPLAIN (ANALYZE, BUFFERS) runs, each"
             f" rolled back. Load average (1, 5, 15 min) on {os.cpu_count()} CPUs:"
             f" {document['load_before']} before the catalogue, {document['load_after']} after.",
             "", "`as`: the role whose privileges and row-level security policies apply"
             " (`owner`: the migrations' role, a superuser here, under no policy; the CRM's"
             " roles through `SET LOCAL ROLE`, alumoutreach_app with `app.tenant_id` set to the"
             " sampled tenant). `rows filtered out`: rows an index or scan read and a filter"
             " then dropped (per loop).", ""]  # fmt: skip
    for label, results in document["runs"].items():
        slowest = max(results, key=lambda r: r["median_ms"])
        off = [r["name"] for r in results if r["verdict"] != "index"]
        parts += [f"## Schema: {label}", "", table(results), "",
                  f"Slowest: {slowest['name']}, {slowest['median_ms']:.3f} ms. Not on the"
                  f" expected index: {', '.join(off) or 'none'}.", ""]  # fmt: skip
    (folder / "queries.md").write_text("\n".join(parts))
    say(f"wrote {folder / 'queries.json'} and {folder / 'queries.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
