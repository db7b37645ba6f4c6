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
BLOCK = re.compile(r"^-- name: (?P<name>\w+)\n-- expects: (?P<expects>\w+)\n", re.MULTILINE)


@dataclass(frozen=True)
class Query:
    name: str
    expects: str
    comment: str
    sql: str


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
        queries.append(Query(match["name"], match["expects"], " ".join(comments),
                             statement.strip().rstrip(";")))  # fmt: skip
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
            repeats: int) -> dict[str, Any]:  # fmt: skip
    """Run ``EXPLAIN (ANALYZE, BUFFERS)`` ``repeats`` times (rolled back); the median time."""
    times, plan = [], {}
    for _ in range(repeats):
        with conn.transaction(force_rollback=True):
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
        "verdict": verdict,
        "indexes": indexes,
        "seq_scans": seq,
        "shape": shape(plan),
        "median_ms": round(statistics.median(times), 3),
        "runs_ms": [round(t, 3) for t in times],
        "rows": plan.get("Actual Rows"),
        "shared_hit": plan.get("Shared Hit Blocks"),
        "shared_read": plan.get("Shared Read Blocks"),
    }


def run_catalogue(url: str, repeats: int) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        params = sample(conn)
        conn.rollback()
        return [explain(conn, q, params, repeats) for q in load_catalogue()]


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| query | expects | plan | median ms | shape |", "|---|---|---|---:|---|"]
    for r in results:
        lines.append(f"| {r['name']} | {r['expects']} | {r['verdict']} | {r['median_ms']:.3f}"
                     f" | {r['shape']} |")  # fmt: skip
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    server = BenchServer.create()
    folder = catalog.load(ROOT / "migrations")
    document: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    try:
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
            document["seed"] = {
                "rows": report.rows,
                "seconds": round(report.seconds, 1),
                "tenants": args.tenants,
                "contacts_per_tenant": args.contacts,
                "sizes": dataclasses.asdict(options.sizes),
            }
            say(f"seeded {sum(report.rows.values()):,} rows in {report.seconds:.0f}s")
            runs = {}
            if args.baseline:
                say(f"catalogue at version {args.baseline}")
                runs[f"at {args.baseline}"] = run_catalogue(url, args.repeats)
                say(table(runs[f"at {args.baseline}"]))
                applied = runner.migrate(conn, folder)
                say(f"applied {', '.join(m.filename for m, _ in applied.applied) or 'nothing'}")
                conn.execute("ANALYZE")
            final = f"all migrations ({folder.migrations[-1].filename})"
            runs[final] = run_catalogue(url, args.repeats)
            say(table(runs[final]))
            document["runs"] = runs
            document["database_size"] = server.scalar(
                f"SELECT pg_size_pretty(pg_database_size('{DBNAME}'))"
            )
    except BenchError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        say(f"removing compose project {server.tag}")
        server.down()
    document["seconds"] = round(time.perf_counter() - started, 1)
    document["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return _write(args.output, document, say)


def say(line: str) -> None:
    print(line, flush=True)


def _write(folder: Path, document: dict[str, Any], say: Callable[[str], None]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "queries.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    parts = [f"# Hot queries on {document['seed']['tenants']} tenants x "
             f"{document['seed']['contacts_per_tenant']:,} contacts ({document['date']})", "",
             f"Database size {document['database_size']}; seeded in "
             f"{document['seed']['seconds']}s. Times: median of EXPLAIN (ANALYZE, BUFFERS) runs.",
             ""]  # fmt: skip
    for label, results in document["runs"].items():
        parts += [f"## Schema: {label}", "", table(results), ""]
    (folder / "queries.md").write_text("\n".join(parts))
    say(f"wrote {folder / 'queries.json'} and {folder / 'queries.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
