"""AlumOutreach database tasks: `invoke --list` shows them, `invoke --help TASK` explains one.

Thin by design: each task parses its arguments, calls the `alumdb` engine and
renders what it returns. Engine errors become one line on stderr and an exit code.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from alumdb import catalog, database, environment, runner, scaffold, target, tenancy
from alumdb import seed as seed_engine
from alumdb import status as migration_status
from alumdb.errors import (
    AlumdbError,
    Cancelled,
    CheckFailed,
    DriftError,
    Interrupted,
    SeedError,
    UsageError,
)
from alumdb.seed import plan as seed_plan

ROOT = Path(__file__).resolve().parent
MIGRATIONS = ROOT / "migrations"
F = TypeVar("F", bound=Callable[..., Any])

TARGET_HELP = {
    "env": "compose environment: dev (default) or prod",
    "database_url": "any reachable PostgreSQL, e.g. postgresql://user@host/db "
    "(default: $DATABASE_URL); no Docker needed",
    "migrations": "the migrations folder (default: migrations/)",
    "wait": f"seconds to wait for the database to be ready (default: {target.DEFAULT_WAIT:g})",
}


def engine_errors(fn: F) -> F:
    """Turn the engine's errors into one line on stderr and the error's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AlumdbError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit(
                f"error: interrupted; {INTERRUPTED_NOTE}", code=Interrupted.exit_code
            ) from None
        except psycopg.Error as exc:  # a database error the engine did not expect
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            lost = isinstance(exc, psycopg.OperationalError)
            raise Exit(f"error: database error: {text}", code=5 if lost else 7) from None

    return wrapper  # type: ignore[return-value]


INTERRUPTED_NOTE = "no file was in progress, nothing was left half done"


def _say(line: str) -> None:
    """A line on stdout; a reader that went away (``| head``) is no reason to stop."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        # Point stdout at /dev/null: later lines and the interpreter's final flush then
        # go nowhere quietly, and the run finishes what it started.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _folder(migrations: str | None) -> Path:
    return Path(migrations).resolve() if migrations else MIGRATIONS


def _positive(value: str | float | None, option: str, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{option} {value!r}: not a number of seconds") from None
    if number < 0:
        raise UsageError(f"{option} {value!r}: must not be negative")
    return number


def _render_event(event: runner.Event) -> None:
    m = event.migration
    if event.kind == "applied" and m is not None:
        _say(f"  applied   {m.filename:<40} {event.seconds * 1000:8.0f} ms")
    elif event.kind == "skipped" and m is not None:
        _say(f"  skipped   {m.filename:<40} ({event.detail})")
    elif event.kind == "server":
        _say(f"  {m.filename if m is not None else 'server'}: {event.detail}")
    elif event.kind in {"waiting", "retrying", "adopted", "upgraded", "running"}:
        name = f" {m.filename}:" if m is not None else ""
        _say(f"  {event.kind}{name} {event.detail}")


@task(
    help={
        "env": TARGET_HELP["env"],
        "wait": f"seconds until the container must be healthy (default: {target.DEFAULT_WAIT:g})",
    }
)
@engine_errors
def up(c: Context, env: str = "dev", wait: str | None = None) -> None:
    """Start PostgreSQL (compose up -d postgres) and wait until it is healthy.

    Checks the Docker Engine first (a clear message within 2 s when it does not
    answer), shows the container's last log lines if it never becomes healthy,
    and prints where the database listens.
    """
    resolved = target.resolve(ROOT, env, None)
    connected = target.connect(
        resolved, start=True, wait=_positive(wait, "--wait", target.DEFAULT_WAIT)
    )
    connected.conn.close()
    assert connected.up is not None  # noqa: S101 - compose targets always report
    point = connected.up.endpoint
    state = f"started, ready in {connected.up.waited:.1f}s" if connected.up.started else "running"
    _say(f"postgres {state}: container {point.container}, listening on {connected.where}")


def _render_report(report: runner.Report, target_: str | None) -> None:
    """The summary of ``invoke migrate``: what was applied, or would be with --dry-run."""
    if report.held_back and not report.planned:
        first = report.held_back[0].filename
        _say(
            f"nothing to apply up to --target {target_}: {report.already_applied} applied;"
            f" {len(report.held_back)} pending after the target ({first} first)"
        )
        return
    if report.dry_run:
        if not report.planned:
            _say("dry run: nothing to apply, the database is up to date")
        for m in report.planned:
            _say(f"  would apply {m.filename}")
        for m in report.adopted:
            _say(f"  would record the checksum of {m.filename} (applied without one)")
        if report.planned:
            _say(f"dry run: {len(report.planned)} to apply; nothing was changed")
        return
    applied = len(report.applied)
    waited = f", waited {report.waited:.1f}s for another run" if report.waited >= 0.05 else ""
    if applied == 0 and not report.skipped:
        _say(f"nothing to do: {report.already_applied} applied, the database is up to date")
    else:
        skipped = f", {len(report.skipped)} applied by another run" if report.skipped else ""
        _say(
            f"done: {applied} applied in {report.seconds:.2f}s"
            f" ({report.already_applied} already applied{skipped}{waited})"
        )


@task(
    help={
        **TARGET_HELP,
        "dry_run": "list what would run and change nothing",
        "target": "stop after this version (e.g. 007)",
        "allow_out_of_order": "apply pending files numbered below the highest applied one",
        "lock_timeout": "seconds a statement may wait for a table lock, the longest the "
        f"application stalls behind it (default: {runner.DEFAULT_LOCK_TIMEOUT:g})",
        "lock_budget": "seconds a file may spend retrying for its locks, with backoff and "
        f"jitter, before the run fails with exit 7 (default: {runner.DEFAULT_LOCK_BUDGET:g})",
        "wait_for_lock": "seconds to wait while another run holds the migration lock "
        f"(default: {runner.DEFAULT_WAIT_FOR_LOCK:g})",
    }
)
@engine_errors
def migrate(
    c: Context,
    env: str | None = None,
    database_url: str | None = None,
    dry_run: bool = False,
    target_: str | None = None,
    allow_out_of_order: bool = False,
    lock_timeout: str | None = None,
    lock_budget: str | None = None,
    wait_for_lock: str | None = None,
    migrations: str | None = None,
    wait: str | None = None,
) -> None:
    """Apply every pending migration in numeric order, one transaction per file.

    The whole folder is checked first (names, duplicate numbers, applied files
    changed or deleted since), so a problem stops the run before the database is
    touched. For a compose environment PostgreSQL is started first (see `up`).
    Prints one line per file with its time, then a summary.
    """
    folder = catalog.load(_folder(migrations))
    resolved = target.resolve(ROOT, env, database_url)
    options = runner.Options(
        target=target_,
        dry_run=dry_run,
        allow_out_of_order=allow_out_of_order,
        lock_timeout=_positive(lock_timeout, "--lock-timeout", runner.DEFAULT_LOCK_TIMEOUT),
        lock_budget=_positive(lock_budget, "--lock-budget", runner.DEFAULT_LOCK_BUDGET),
        wait_for_lock=_positive(wait_for_lock, "--wait-for-lock", runner.DEFAULT_WAIT_FOR_LOCK),
    )
    runner.check_options(options)  # bad options fail before Docker starts
    runner.target_number(folder, options.target)
    connected = target.connect(
        resolved,
        start=True,
        wait=_positive(wait, "--wait", target.DEFAULT_WAIT),
        on_wait=lambda line: _say(f"  {line}"),
        application_name=runner.APPLICATION_NAME,
    )
    with connected.conn as conn:
        if connected.up is not None and connected.up.started:
            _say(f"postgres started, ready in {connected.up.waited:.1f}s")
        where = (
            connected.where
            if resolved.env is None
            else f"{resolved.describe()} at {connected.where}"
        )
        _say(f"migrating {where}")
        report = runner.migrate(conn, folder, options, _render_event)
    _render_report(report, target_)


@task(
    help={
        **TARGET_HELP,
        "json": "print JSON for scripts instead of a table",
    }
)
@engine_errors
def status(
    c: Context,
    env: str | None = None,
    database_url: str | None = None,
    json_: bool = False,
    migrations: str | None = None,
    wait: str | None = None,
) -> None:
    """Show each migration on disk against schema_migrations.

    States: applied, pending, changed (edited since it was applied) and missing
    (applied but no longer on disk). Exits non-zero when anything is changed or
    missing, so CI can gate on it. Does not start the database.
    """
    folder = catalog.load(_folder(migrations))
    resolved = target.resolve(ROOT, env, database_url)
    connected = target.connect(resolved, start=False, wait=_positive(wait, "--wait", 0.0))
    with connected.conn as conn:
        entries = runner.read_status(conn, folder)
    bad = migration_status.problems(entries)
    counts = migration_status.counts(entries)
    if json_:
        document = {
            "database": connected.where,
            "migrations": [e.to_json() for e in entries],
            "summary": counts,
            "ok": not bad,
        }
        print(json.dumps(document, indent=2))
    else:
        _say(f"{connected.where}")
        _say(f"{'VERSION':<8} {'NAME':<32} {'STATE':<9} {'EXECUTED AT':<25} {'DURATION':>9}")
        for e in entries:
            when = e.executed_at.strftime("%Y-%m-%d %H:%M:%S%z") if e.executed_at else "-"
            took = f"{e.duration_ms} ms" if e.duration_ms is not None else "-"
            note = f"  {e.detail}" if e.detail else ""
            _say(f"{e.version:<8} {e.name:<32} {e.state:<9} {when:<25} {took:>9}{note}")
        _say(", ".join(f"{n} {s}" for s, n in counts.items()))
    if bad:
        raise DriftError(f"{len(bad)} applied migration(s) changed or missing on disk")


@task(
    help={
        "name": "snake_case description, e.g. add_contact_notes",
        "purpose": "the header's Purpose line (default: from NAME)",
        "migrations": TARGET_HELP["migrations"],
    }
)
@engine_errors
def new_migration(
    c: Context, name: str, purpose: str | None = None, migrations: str | None = None
) -> None:
    """Create the next numbered migration from the template and print its path.

    The number is the highest on disk plus one, zero-padded to three digits
    (1000 follows 999). NAME must be snake_case and not used already.
    """
    created = scaffold.new_migration(_folder(migrations), name, purpose)
    _say(str(created.path.relative_to(ROOT) if created.path.is_relative_to(ROOT) else created.path))


@task(
    help={
        "version": "the applied migration whose file changed, e.g. 004",
        "reason": "why the change is harmless (required, recorded in schema_migrations_audit)",
        **TARGET_HELP,
    }
)
@engine_errors
def accept_checksum(
    c: Context,
    version: str,
    reason: str = "",
    env: str | None = None,
    database_url: str | None = None,
    migrations: str | None = None,
    wait: str | None = None,
) -> None:
    """Accept the current content of an applied file whose checksum changed.

    For edits that change nothing the database sees (a comment, whitespace).
    Records the old and new checksum and the reason in schema_migrations_audit.
    """
    folder = catalog.load(_folder(migrations))
    resolved = target.resolve(ROOT, env, database_url)
    connected = target.connect(resolved, start=False, wait=_positive(wait, "--wait", 0.0))
    with connected.conn as conn:
        old, new = runner.accept_checksum(conn, folder, version, reason)
    _say(f"accepted {version}: checksum {old or 'none'} -> {new} (logged with your reason)")


@task(
    help={
        "migrations": TARGET_HELP["migrations"],
        "squawk": "also run squawk's locking and safety rules (default: on)",
        "strict": "warnings fail too (what CI runs)",
    }
)
@engine_errors
def lint(
    c: Context, migrations: str | None = None, squawk: bool = True, strict: bool = False
) -> None:
    """Check every migration against the spec's rules, on SQL parsed by PostgreSQL 15's parser.

    Rules: naming, header, tracking-insert, idempotent, no-data, non-destructive,
    explicit-names, tenant-scoped, tenant-isolation, transaction-control, syntax, waiver;
    then squawk with .squawk.toml. Prints `file:line:col RULE message`; exits 1 on any
    error, and on any warning too with --strict. Waive one statement with
    `-- alumdb: allow RULE because REASON` above it.
    """
    from alumdb import lint as linter

    folder = _folder(migrations)
    findings = linter.lint_directory(folder)
    paths = catalog.migration_paths(folder) if folder.is_dir() else []
    if squawk:
        findings += linter.run_squawk(paths, ROOT / ".squawk.toml")
    for finding in sorted(findings):
        _say(str(finding))
    failing = linter.failing(findings, strict=strict)
    warnings = sum(1 for f in findings if f.severity is linter.Severity.WARNING)
    summary = (
        f"{len(paths)} files checked: {len(findings) - warnings} error(s), {warnings} warning(s)"
    )
    if failing:
        raise CheckFailed(summary + (" (--strict)" if strict and warnings else ""))
    _say(summary if findings else f"{len(paths)} files checked: no findings")


@task(
    help={
        **TARGET_HELP,
        "check": "only check: exit 1 when the diagram is stale, change nothing",
    }
)
@engine_errors
def erd(
    c: Context,
    env: str | None = None,
    database_url: str | None = None,
    check: bool = False,
    migrations: str | None = None,
    wait: str | None = None,
) -> None:
    """Regenerate the Mermaid schema diagram in migrations/README.md from the database.

    Reads the migrated database (run `invoke migrate` first: every file must be
    applied) and rewrites the block between the erd markers.
    """
    from alumdb import diagram

    folder = catalog.load(_folder(migrations))
    readme = folder.directory / "README.md"
    resolved = target.resolve(ROOT, env, database_url)
    connected = target.connect(
        resolved, start=True, wait=_positive(wait, "--wait", target.DEFAULT_WAIT)
    )
    with connected.conn as conn:
        pending = migration_status.not_applied(runner.read_status(conn, folder))
        if pending:
            raise UsageError(
                f"{connected.where}: {len(pending)} migration(s) not applied "
                f"({pending[0].version} first); run `invoke migrate` before `invoke erd`"
            )
        drawing = diagram.render_erd(conn)
    if check:
        if diagram.readme_erd(readme) != drawing:
            raise CheckFailed(f"{readme}: the schema diagram is stale; run `invoke erd`")
        _say(f"{readme}: the schema diagram is up to date")
    elif diagram.update_readme(readme, drawing):
        _say(f"{readme}: schema diagram updated")
    else:
        _say(f"{readme}: schema diagram already up to date")


@task(
    help={
        **TARGET_HELP,
        "json": "print JSON for scripts instead of one line per difference",
        "shadow_url": "an empty database to replay into (emptied again afterwards), for a "
        "role that may not create databases",
        "shadow_container": "replay into a throwaway container of POSTGRES_IMAGE instead of "
        "a database on the target's server",
        "wait": "seconds to wait for the database to accept connections (default: 0)",
    },
    auto_shortflags=False,  # -h would be --shadow-container: long options only
)
@engine_errors
def drift(
    c: Context,
    env: str | None = None,
    database_url: str | None = None,
    json_: bool = False,
    shadow_url: str | None = None,
    shadow_container: bool = False,
    migrations: str | None = None,
    wait: str | None = None,
) -> None:
    """Compare the database's schema with what its recorded migrations make (read-only).

    Verifies the recorded files on disk first (an edited applied file: exit 6),
    replays exactly the migrations recorded in schema_migrations into a throwaway
    shadow database (CREATE DATABASE on the same server, dropped afterwards), then
    compares the two catalogs object by object. One line per difference: + extra,
    - missing, ~ changed, with both definitions. Exit 0 when identical, 10 when drifted.
    """
    from alumdb import replay

    if shadow_url is not None and shadow_container:
        raise UsageError("pass either --shadow-url or --shadow-container, not both")
    shadow_params = database.parse_url(shadow_url, "--shadow-url") if shadow_url else None
    folder = catalog.load(_folder(migrations))
    resolved = target.resolve(ROOT, env, database_url)
    seconds = _positive(wait, "--wait", 0.0)
    connected = target.connect(resolved, start=False, wait=seconds)
    progress = (lambda _: None) if json_ else (lambda line: _say(f"  {line}"))
    try:
        with connected.conn as conn:
            if not json_:
                _say(f"drift of {connected.where} (read-only)")
            result = replay.check(
                conn,
                folder,
                project_dir=ROOT,
                shadow_url=shadow_params,
                container=shadow_container,
                wait=max(seconds, 60.0),
                on_progress=progress,
            )
    except (KeyboardInterrupt, Interrupted):  # the runner turns Ctrl-C into Interrupted
        raise Exit(
            "interrupted: the target was only read and the shadow database is removed",
            code=130,
        ) from None
    _render_drift(result, connected.where, json_)


def _render_drift(result: Any, where: str, json_: bool) -> None:
    """Print what ``invoke drift`` found (``result`` is an ``alumdb.replay.Result``)."""
    from alumdb.errors import SchemaDriftError

    differences = result.comparison.differences
    if json_:
        document = {
            "database": where,
            "shadow": result.shadow,
            "replayed": [m.version for m in result.replayed],
            "identical": not differences,
            "differences": [d.to_json() for d in differences],
            "notes": result.notes,
        }
        print(json.dumps(document, indent=2))
    else:
        for line in result.notes:
            _say(line)
        for difference in differences:
            _say(difference.line())
    if differences:
        raise Exit(
            f"error: drift: {len(differences)} difference(s) from the "
            f"{len(result.replayed)} recorded migrations",
            code=SchemaDriftError.exit_code,
        )
    if not json_:
        _say(
            f"no drift: the schema is what the {len(result.replayed)} recorded migrations "
            f"make ({result.seconds:.1f}s)"
        )


@task(
    help={
        "check": "only check: exit 1 when migrations/schema.sql is stale, change nothing",
        "migrations": TARGET_HELP["migrations"],
    }
)
@engine_errors
def schema(c: Context, check: bool = False, migrations: str | None = None) -> None:
    """Regenerate migrations/schema.sql: the fully migrated schema, as pg_dump writes it.

    Migrates every file into a scratch compose project of its own (removed at the
    end) and writes its `pg_dump --schema-only --no-owner`, made stable. Commit it
    with the migration that changes it, so a review shows the whole schema's change.
    """
    from alumdb import schema_dump

    folder = catalog.load(_folder(migrations))
    text = schema_dump.generate(ROOT, folder)
    path = schema_dump.path(folder)
    if check:
        if not schema_dump.is_current(folder, text):
            raise Exit(
                f"error: {path} is stale (it is not the schema the migrations make); "
                "run `invoke schema` and commit it",
                code=1,
            )
        _say(f"{path}: up to date")
    elif schema_dump.write(folder, text):
        _say(f"{path}: written")
    else:
        _say(f"{path}: already up to date")


@task(help={"migrations": TARGET_HELP["migrations"]})
@engine_errors
def verify(c: Context, migrations: str | None = None) -> None:
    """Prove migrations/ on fresh databases in a scratch compose project.

    The runner applies every file, a second run applies nothing and leaves the same
    `pg_dump --schema-only`; the spec's compose `migrations` service on a fresh volume
    leaves the same schema and schema_migrations rows; the runner then adopts that
    database. The scratch project and its volume are removed at the end.
    """
    from alumdb import verify as checks

    folder = catalog.load(_folder(migrations))
    checks.verify(ROOT, folder, lambda s: _say(f"  ok  {s.name:<8} {s.detail} ({s.seconds:.1f}s)"))
    _say(f"verified {len(folder)} migrations on fresh databases")


@task(help={"env": TARGET_HELP["env"]})
@engine_errors
def down(c: Context, env: str = "dev") -> None:
    """Stop and remove the database container; the data volume is kept."""
    resolved = environment.resolve(env, ROOT)
    environment.down(resolved)
    _say(f"stopped {resolved.describe()}; data kept (invoke reset drops it)")


@task(help={"yes": "do not ask for confirmation", "env": "only dev is allowed"})
@engine_errors
def reset(c: Context, yes: bool = False, env: str = "dev") -> None:
    """Drop the dev database (its volume) and migrate from scratch. Refuses prod."""
    if env != "dev":
        raise UsageError(f"--env {env}: reset drops all data and is allowed for dev only")
    resolved = environment.resolve(env, ROOT)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("reset drops all dev data; pass --yes to confirm (no terminal)")
        answer = input(f"Drop all data of {resolved.describe()}? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            raise Cancelled("reset cancelled; nothing changed")
    environment.down(resolved, volumes=True)
    _say(f"dropped {resolved.describe()} and its volume")
    migrate(c, env="dev")


@task(
    help={
        "env": TARGET_HELP["env"],
        "follow": "keep printing new lines",
        "tail": "how many lines (default: 100)",
    }
)
@engine_errors
def logs(c: Context, env: str = "dev", follow: bool = False, tail: int = 100) -> None:
    """Show the database container's logs."""
    resolved = environment.resolve(env, ROOT)
    args = ["logs", f"--tail={tail}", *(["--follow"] if follow else []), environment.SERVICE]
    c.run(shlex.join(environment.compose_args(resolved, *args)), pty=sys.stdout.isatty())


@task(
    help={
        "env": TARGET_HELP["env"],
        "command": "run one SQL command instead of a shell",
        "tenant": "act as the application (role alumoutreach_app) with app.tenant_id set to "
        "this tenant's UUID: see exactly the rows the application sees",
    }
)
@engine_errors
def psql(
    c: Context, env: str = "dev", command: str | None = None, tenant: str | None = None
) -> None:
    """Open psql inside the database container (no psql needed on this machine).

    With --tenant, the session runs as alumoutreach_app with app.tenant_id set for
    the whole session, so row-level security shows that tenant's rows only.
    """
    tenant_id = None if tenant is None else tenancy.parse_tenant(tenant)  # before Docker
    resolved = environment.resolve(env, ROOT)
    point = environment.running_endpoint(resolved, environment.docker_client())
    interactive = command is None and sys.stdin.isatty()
    args = ["docker", "exec", *(["-it"] if interactive else ["-i"])]
    if tenant_id is not None:
        args += ["-e", f"PGOPTIONS={tenancy.session_options(tenant_id)}"]
        if interactive:
            print(
                f"psql as {tenancy.APP_ROLE}, {tenancy.TENANT_SETTING} = {tenant_id}"
                " (RESET ROLE returns to the owner)",
                file=sys.stderr,
            )
    args += [point.container, "psql", "-U", point.user, "-d", point.dbname]
    if command is not None:
        args += ["-c", command]
    c.run(shlex.join(args), pty=interactive)


class _SeedBar:
    """The seed's progress bar: on stderr, and only when stderr is a terminal."""

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()

    def __call__(self, p: Any) -> None:
        if not self.shown:
            return
        done = p.tenant - 1 + (seed_engine.TABLES.index(p.table) + 1) / len(seed_engine.TABLES)
        filled = int(30 * done / p.tenants)
        bar = "#" * filled + "." * (30 - filled)
        sys.stderr.write(
            f"\r[{bar}] tenant {p.tenant}/{p.tenants} {p.rows:>12,} rows  {p.table:<24}"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 90 + "\r")
            sys.stderr.flush()


@task(
    help={
        "env": "compose environment: dev (default); prod is always refused",
        "database_url": TARGET_HELP["database_url"],
        "tenants": f"how many tenants (default: {seed_plan.DEFAULT_TENANTS})",
        "size": f"preset: {', '.join(seed_plan.PRESETS)} (default: {seed_plan.DEFAULT_PRESET}); "
        + "; ".join(
            f"{k}: {v.contacts:,} contacts per tenant" for k, v in seed_plan.PRESETS.items()
        ),
        "contacts": "contacts per tenant, overriding the preset's",
        "seed": "random seed: the same seed gives the same rows (default: 1)",
        "allow_non_dev": "seed a database that does not look like a disposable dev database",
        "wait": TARGET_HELP["wait"],
    }
)
@engine_errors
def seed(
    c: Context,
    env: str | None = None,
    database_url: str | None = None,
    tenants: int = seed_plan.DEFAULT_TENANTS,
    size: str | None = None,
    contacts: str | None = None,
    seed: int = 1,
    allow_non_dev: bool = False,
    wait: str | None = None,
) -> None:
    """Fill a dev database with realistic, deterministic data (COPY), then print rows per table.

    Contacts with addresses, attributes, consents and timelines; segments; templates;
    campaigns with runs and messages; inbox threads; workflows, sequences and jobs in
    every status, for each tenant. Refuses prod, and any database that does not look
    disposable (not on this machine, `prod` in its name, tenants it did not make)
    unless --allow-non-dev. Tenants already seeded with this --seed are skipped.
    """
    if env == "prod":
        raise SeedError("--env prod: seed writes made-up data and never runs against production")
    per_tenant = None
    if contacts is not None:
        if not contacts.strip().isdigit():
            raise UsageError(f"--contacts {contacts!r}: give a whole number of contacts per tenant")
        per_tenant = int(contacts)
    options = seed_plan.options(tenants, size, per_tenant, seed)
    resolved = target.resolve(ROOT, env, database_url)
    connected = target.connect(resolved, start=True, wait=_positive(wait, "--wait", 60.0))
    bar = _SeedBar()
    with connected.conn as conn:
        _say(
            f"seeding {connected.where}: {tenants} tenant(s) x {options.sizes.contacts:,} contacts"
        )
        try:
            report = seed_engine.seed(conn, options, bar, allow_non_dev=allow_non_dev)
        finally:
            bar.close()
    if not report.seeded:
        raise SeedError(
            f"nothing to do: tenant(s) {', '.join(report.skipped)} are already seeded with "
            f"--seed {seed}; pass another --seed or more --tenants"
        )
    width = max(len(t) for t in report.rows)
    for table, count in report.rows.items():
        _say(f"  {table:<{width}} {count:>12,}")
    total = sum(report.rows.values())
    _say(
        f"done: {total:,} rows for {len(report.seeded)} tenant(s) in {report.seconds:.1f}s"
        + (f"; skipped already seeded: {', '.join(report.skipped)}" if report.skipped else "")
    )
