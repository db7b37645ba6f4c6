"""Loading a seed: the dev-only guard, one transaction per tenant, COPY, the summary.

Each tenant is generated in memory, then written in its own transaction with
``app.tenant_id`` set (``set_config(..., true)``), so row-level security policies
keyed on it accept the rows. ``COPY FROM`` is refused by PostgreSQL on a table whose
policies apply to the current role (a non-owner, or an owner under ``FORCE ROW
LEVEL SECURITY``); for those tables (``row_security_active``) the rows are copied
into a temporary table first and moved with ``INSERT ... SELECT``, which the
policies check. A tenant is all or nothing, and a tenant already present is
skipped: seeding twice with the same ``--seed`` changes nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from alumdb import database
from alumdb.errors import SeedError
from alumdb.seed import automation, gen, inbox, outreach, people, tables
from alumdb.seed.plan import Options

TABLES = tables.NAMES  # parents before children: the order COPY writes them in
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class Progress:
    """Where a run is: the tenant being written, rows so far, the table just written."""

    tenant: int  # 1-based
    tenants: int
    rows: int
    table: str


@dataclass
class Report:
    rows: dict[str, int] = field(default_factory=dict)
    seeded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    via_insert: set[str] = field(default_factory=set)  # tables under row-level security


ProgressSink = Callable[[Progress], None]


def _ignore(_: Progress) -> None:
    return None


def guard(conn: psycopg.Connection[Any], allow_non_dev: bool = False) -> None:
    """Refuse a database that is not migrated, or does not look disposable.

    Disposable: on this machine (a loopback address or a Unix socket), no ``prod`` in
    its name, and no tenant that this tool did not make. ``allow_non_dev`` lifts the
    last three checks (never the migrated one).
    """
    missing = [t for t in ("tenants", "permissions", *TABLES) if not _exists(conn, t)]
    if missing:
        raise SeedError(
            f"database {conn.info.dbname} lacks table(s) {', '.join(missing[:3])}: "
            "run `invoke migrate` on it first"
        )
    if allow_non_dev:
        return
    host, dbname = conn.info.host, conn.info.dbname
    reasons = []
    if host not in LOOPBACK and not host.startswith("/"):
        reasons.append(f"it is on {host}, not this machine")
    if re.search("prod", dbname, re.IGNORECASE):
        reasons.append(f"its name {dbname!r} says prod")
    foreign = conn.execute(
        "SELECT count(*) FROM tenants WHERE settings->>'seeded_by' IS DISTINCT FROM %s",
        (gen.MARKER,),
    ).fetchone()
    if foreign and foreign[0]:
        reasons.append(f"it holds {foreign[0]} tenant(s) that seed did not make")
    if reasons:
        raise SeedError(
            f"refusing to seed {dbname}: it does not look like a disposable dev database "
            f"({'; '.join(reasons)}); pass --allow-non-dev if it is one"
        )


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _permissions(conn: psycopg.Connection[Any]) -> dict[str, object]:
    """The global permission keys seeded roles are granted (upserted, like the app does)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO permissions (key, description) VALUES (%s, %s)"
            " ON CONFLICT (key) DO NOTHING",
            [(key, f"may {key.replace('.', ' ')}") for key in people.PERMISSIONS],
        )
        cur.execute(
            "SELECT key, id FROM permissions WHERE key = ANY(%s)", (list(people.PERMISSIONS),)
        )
        return {str(k): v for k, v in cur.fetchall()}


def generate(options: Options, index: int, pools: gen.Pools, perms: dict[str, object]) -> gen.Ctx:
    """Every row of tenant ``index`` (1-based), the same for the same seed and anchor."""
    import random

    sizes = options.sizes
    ctx = gen.Ctx(
        rng=random.Random(f"alumdb-seed:{options.seed}:{index}"),  # noqa: S311 - test data
        tenant=gen.tenant_id(options.seed, index),
        anchor=options.anchor,
        pools=pools,
    )
    n = sizes.contacts
    people.users(ctx, sizes.users, perms)
    people.contacts(ctx, n, sizes.detail)
    outreach.segments(ctx, sizes.segments, sizes.detail)
    outreach.templates(ctx, sizes.templates)
    outreach.campaigns(ctx, sizes.campaigns, sizes.messages_per_contact)
    inbox.threads(ctx, int(n * sizes.threads_per_contact))
    automation.workflows(ctx, sizes.workflows, int(n * sizes.workflow_runs_per_contact))
    automation.sequences(ctx, sizes.sequences, int(n * sizes.sequence_runs_per_contact))
    automation.jobs(ctx, int(n * sizes.jobs_per_contact))
    return ctx


def seed(
    conn: psycopg.Connection[Any],
    options: Options,
    on_progress: ProgressSink = _ignore,
    allow_non_dev: bool = False,
    only: Sequence[int] | None = None,
) -> Report:
    """Seed ``options.tenants`` tenants; tenants already there are skipped.

    A database error stops the run with :class:`SeedError`; the tenant being written
    is rolled back, the tenants before it stay. ``only`` (1-based tenant numbers) lets
    several connections seed disjoint tenants at once; the caller then runs ANALYZE.
    """
    started = time.monotonic()
    guard(conn, allow_non_dev)
    where = Progress(0, options.tenants, 0, "permissions")

    def track(p: Progress) -> None:
        nonlocal where
        where = p
        on_progress(p)

    try:
        return _seed(conn, options, track, started, only)
    except psycopg.Error as exc:
        raise SeedError(
            f"seeding {conn.info.dbname} failed at tenant {where.tenant} after {where.table} "
            f"({exc.sqlstate or 'no SQLSTATE'}): {database.first_line(exc)}; that tenant was "
            "rolled back"
        ) from None


def _seed(
    conn: psycopg.Connection[Any],
    options: Options,
    on_progress: ProgressSink,
    started: float,
    only: Sequence[int] | None,
) -> Report:
    report = Report(rows=dict.fromkeys(("tenants", *TABLES), 0))
    perms = _permissions(conn)
    pools = gen.make_pools(options.seed)
    total = 0
    for index in only if only is not None else range(1, options.tenants + 1):
        slug = gen.tenant_slug(options.seed, index)
        tid = gen.tenant_id(options.seed, index)
        if _tenant_exists(conn, tid):
            report.skipped.append(slug)
            continue
        ctx = generate(options, index, pools, perms)
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tid),))
            _insert_tenant(conn, options, index)
            report.rows["tenants"] += 1
            for table in TABLES:
                rows = ctx.tables[table]
                total += _copy(conn, table, rows, report)
                report.rows[table] += len(rows.rows)
                on_progress(Progress(index, options.tenants, total, table))
            for statement, params in ctx.refs.get("after", []):
                with conn.cursor() as cur:
                    cur.executemany(statement, params)
        report.seeded.append(slug)
    if report.seeded and only is None:
        conn.execute("ANALYZE")  # fresh statistics, so the planner sees the new sizes
    report.seconds = time.monotonic() - started
    return report


def _tenant_exists(conn: psycopg.Connection[Any], tid: object) -> bool:
    with conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tid),))
        row = conn.execute("SELECT 1 FROM tenants WHERE id = %s", (tid,)).fetchone()
    return row is not None


def _insert_tenant(conn: psycopg.Connection[Any], options: Options, index: int) -> None:
    conn.execute(
        "INSERT INTO tenants (id, slug, name, status, settings) VALUES (%s, %s, %s, 'active', %s)",
        (
            gen.tenant_id(options.seed, index),
            gen.tenant_slug(options.seed, index),
            f"Seed University {index} (seed {options.seed})",
            gen.js({"seeded_by": gen.MARKER, "seed": options.seed, "index": index}),
        ),
    )


def _copy(conn: psycopg.Connection[Any], table: str, rows: gen.Table, report: Report) -> int:
    """COPY the rows in (through a temporary table where row-level security applies)."""
    if not rows.rows:
        return 0
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in rows.columns)
    target = sql.Identifier(table)
    active = conn.execute("SELECT row_security_active(%s)", (table,)).fetchone()
    if active and active[0]:
        report.via_insert.add(table)
        staging = sql.Identifier(f"seed_{table}")
        conn.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
            ).format(staging, columns, target)
        )
        _copy_into(conn, staging, columns, rows)
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                target, columns, columns, staging
            )
        )
    else:
        _copy_into(conn, target, columns, rows)
    return len(rows.rows)


def _copy_into(
    conn: psycopg.Connection[Any], table: sql.Identifier, columns: sql.Composable, rows: gen.Table
) -> None:
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)) as copy,
    ):
        for row in rows.rows:
            copy.write_row(row)
