"""AlumOutreach database tasks: `invoke --list` shows them, `invoke --help TASK` explains one.

Thin by design: each task parses its arguments, calls the `alumdb` engine and prints
the lines `alumdb.render` makes of what it returns. Engine errors become one line on
stderr and their exit code (`alumdb.errors.ExitCode`). Engine modules only one task
needs are imported inside it, so `invoke --list` does not load them.
"""

from __future__ import annotations

import functools
import inspect
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task, task

from alumdb import catalog, environment, render, runner, target
from alumdb import seed as seed_engine
from alumdb.errors import (
    AlumdbError,
    Cancelled,
    CheckFailed,
    DriftError,
    ExitCode,
    Interrupted,
    SchemaDriftError,
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
}
DATABASE_OPTIONS = ("env", "database_url", "migrations", "wait")  # Database's fields
WAIT_HELP = {  # by whether the task starts a compose environment first
    True: f"seconds to wait for the database to be ready (default: {target.DEFAULT_WAIT:g})",
    False: "seconds to wait for the database to accept connections (default: 0)",
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
                f"error: interrupted; {render.INTERRUPTED_NOTE}", code=ExitCode.INTERRUPTED
            ) from None
        except psycopg.Error as exc:  # a database error the engine did not expect
            message, code = render.database_error(exc)
            raise Exit(message, code=code) from None

    return wrapper  # type: ignore[return-value]


def _say(*lines: str) -> None:
    """Lines on stdout; a reader that went away (``| head``) is no reason to stop."""
    try:
        for line in lines:
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


@dataclass(frozen=True)
class Database:
    """The options that say which database a task works on, as typed (see TARGET_HELP)."""

    env: str | None
    database_url: str | None
    migrations: str | None
    wait: str | None
    starts: bool  # a compose environment is started first; --wait then defaults to 60 s

    @property
    def seconds(self) -> float:
        return _positive(self.wait, "--wait", target.DEFAULT_WAIT if self.starts else 0.0)

    def folder(self) -> catalog.Catalog:
        return catalog.load(_folder(self.migrations))

    def resolve(self) -> target.Target:
        return target.resolve(ROOT, self.env, self.database_url)

    def connect(self, resolved: target.Target, **options: Any) -> target.Connected:
        return target.connect(resolved, start=self.starts, wait=self.seconds, **options)


def command(**options: Any) -> Callable[[Callable[..., None]], Task[Any]]:
    """``@task(**options)``, the body's engine errors turned into exit codes (engine_errors)."""

    def decorate(body: Callable[..., None]) -> Task[Any]:
        return task(**options)(engine_errors(body))  # type: ignore[no-any-return]

    return decorate


def _option(name: str) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)


def database_task(
    *,
    starts: bool,
    migrations: bool = True,
    env_help: str = TARGET_HELP["env"],
    options_help: dict[str, str] | None = None,
    **task_options: Any,
) -> Callable[[Callable[..., None]], Task[Any]]:
    """A task on one database: ``body(c, db: Database, *its own options)``.

    invoke reads the options from the signature: this one gives it the body's positional
    arguments, ``--env`` and ``--database-url``, the body's other options, then
    ``--migrations`` (unless ``migrations=False``) and ``--wait``, with their help, so no
    task restates them. (The order decides the short flags, as it did when each task
    listed them.)
    """

    def decorate(body: Callable[..., None]) -> Task[Any]:
        context, _db, *own = inspect.signature(body).parameters.values()
        required = [p for p in own if p.default is inspect.Parameter.empty]  # positional
        shared = ["env", "database_url"]
        tail = ["migrations", "wait"] if migrations else ["wait"]

        @functools.wraps(body)
        def run(c: Context, *args: Any, **kwargs: Any) -> None:
            typed = {name: kwargs.pop(name, None) for name in DATABASE_OPTIONS}
            body(c, Database(**typed, starts=starts), *args, **kwargs)

        run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [context, *required, *map(_option, shared), *own[len(required) :], *map(_option, tail)]
        )
        help_ = {"env": env_help, "database_url": TARGET_HELP["database_url"]}
        if migrations:
            help_["migrations"] = TARGET_HELP["migrations"]
        help_ |= {"wait": WAIT_HELP[starts], **(options_help or {})}
        return command(help=help_, **task_options)(run)

    return decorate


@command(
    help={
        "env": TARGET_HELP["env"],
        "wait": f"seconds until the container must be healthy (default: {target.DEFAULT_WAIT:g})",
    }
)
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
    _say(render.up(connected.up, connected.where))


@database_task(
    starts=True,
    options_help={
        "dry_run": "list what would run and change nothing",
        "target": "stop after this version (e.g. 007)",
        "allow_out_of_order": "apply pending files numbered below the highest applied one",
        "lock_timeout": "seconds a statement may wait for a table lock, the longest the "
        f"application stalls behind it (default: {runner.DEFAULT_LOCK_TIMEOUT:g})",
        "lock_budget": "seconds a file may spend retrying for its locks, with backoff and "
        f"jitter, before the run fails with exit 7 (default: {runner.DEFAULT_LOCK_BUDGET:g})",
        "wait_for_lock": "seconds to wait while another run holds the migration lock "
        f"(default: {runner.DEFAULT_WAIT_FOR_LOCK:g})",
    },
)
def migrate(
    c: Context,
    db: Database,
    dry_run: bool = False,
    target_: str | None = None,
    allow_out_of_order: bool = False,
    lock_timeout: str | None = None,
    lock_budget: str | None = None,
    wait_for_lock: str | None = None,
) -> None:
    """Apply every pending migration in numeric order, one transaction per file.

    The whole folder is checked first (names, duplicate numbers, applied files
    changed or deleted since), so a problem stops the run before the database is
    touched. For a compose environment PostgreSQL is started first (see `up`).
    Prints one line per file with its time, then a summary.
    """
    folder = db.folder()
    resolved = db.resolve()
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
    connected = db.connect(
        resolved,
        on_wait=lambda line: _say(f"  {line}"),
        application_name=runner.APPLICATION_NAME,
    )
    with connected.conn as conn:
        _say(*render.migrate_start(resolved, connected))
        report = runner.migrate(conn, folder, options, _show_event)
    _say(*render.migrate_summary(report, target_))


def _show_event(event: runner.Event) -> None:
    line = render.event(event)
    if line is not None:
        _say(line)


@database_task(starts=False, options_help={"json": "print JSON for scripts instead of a table"})
def status(c: Context, db: Database, json_: bool = False) -> None:
    """Show each migration on disk against schema_migrations.

    States: applied, pending, changed (edited since it was applied) and missing
    (applied but no longer on disk). Exits non-zero when anything is changed or
    missing, so CI can gate on it. Does not start the database.
    """
    from alumdb import status as migration_status

    folder = db.folder()
    connected = db.connect(db.resolve())
    with connected.conn as conn:
        entries = runner.read_status(conn, folder)
    bad = migration_status.problems(entries)
    counts = migration_status.counts(entries)
    if json_:
        print(render.status_json(connected.where, entries, counts, ok=not bad))
    else:
        _say(*render.status_table(connected.where, entries, counts))
    if bad:
        raise DriftError(f"{len(bad)} applied migration(s) changed or missing on disk")


@command(
    help={
        "name": "snake_case description, e.g. add_contact_notes",
        "purpose": "the header's Purpose line (default: from NAME)",
        "migrations": TARGET_HELP["migrations"],
    }
)
def new_migration(
    c: Context, name: str, purpose: str | None = None, migrations: str | None = None
) -> None:
    """Create the next numbered migration from the template and print its path.

    The number is the highest on disk plus one, zero-padded to three digits
    (1000 follows 999). NAME must be snake_case and not used already.
    """
    from alumdb import scaffold

    created = scaffold.new_migration(_folder(migrations), name, purpose)
    _say(str(created.path.relative_to(ROOT) if created.path.is_relative_to(ROOT) else created.path))


@database_task(
    starts=False,
    options_help={
        "version": "the applied migration whose file changed, e.g. 004",
        "reason": "why the change is harmless (required, recorded in schema_migrations_audit)",
    },
)
def accept_checksum(c: Context, db: Database, version: str, reason: str = "") -> None:
    """Accept the current content of an applied file whose checksum changed.

    For edits that change nothing the database sees (a comment, whitespace).
    Records the old and new checksum and the reason in schema_migrations_audit.
    """
    folder = db.folder()
    connected = db.connect(db.resolve())
    with connected.conn as conn:
        old, new = runner.accept_checksum(conn, folder, version, reason)
    _say(f"accepted {version}: checksum {old or 'none'} -> {new} (logged with your reason)")


@command(
    help={
        "migrations": TARGET_HELP["migrations"],
        "squawk": "also run squawk's locking and safety rules (default: on)",
        "strict": "warnings fail too (what CI runs)",
    }
)
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
    failing = bool(linter.failing(findings, strict=strict))
    *lines, summary = render.lint(findings, len(paths), strict=strict, failing=failing)
    _say(*lines)
    if failing:
        raise CheckFailed(summary)
    _say(summary)


@database_task(
    starts=True,
    options_help={"check": "only check: exit 1 when the diagram is stale, change nothing"},
)
def erd(c: Context, db: Database, check: bool = False) -> None:
    """Regenerate the Mermaid schema diagram in migrations/README.md from the database.

    Reads the migrated database (run `invoke migrate` first: every file must be
    applied) and rewrites the block between the erd markers.
    """
    from alumdb import diagram

    folder = db.folder()
    readme = folder.directory / "README.md"
    connected = db.connect(db.resolve())
    with connected.conn as conn:
        drawing = diagram.render_migrated_erd(conn, folder, connected.where)
    if check:
        if diagram.readme_erd(readme) != drawing:
            raise CheckFailed(f"{readme}: the schema diagram is stale; run `invoke erd`")
        _say(f"{readme}: the schema diagram is up to date")
    elif diagram.update_readme(readme, drawing):
        _say(f"{readme}: schema diagram updated")
    else:
        _say(f"{readme}: schema diagram already up to date")


@database_task(
    starts=False,
    options_help={
        "json": "print JSON for scripts instead of one line per difference",
        "shadow_url": "an empty database to replay into (emptied again afterwards), for a "
        "role that may not create databases",
        "shadow_container": "replay into a throwaway container of POSTGRES_IMAGE instead of "
        "a database on the target's server",
    },
    auto_shortflags=False,  # -h would be --shadow-container: long options only
)
def drift(
    c: Context,
    db: Database,
    json_: bool = False,
    shadow_url: str | None = None,
    shadow_container: bool = False,
) -> None:
    """Compare the database's schema with what its recorded migrations make (read-only).

    Verifies the recorded files on disk first (an edited applied file: exit 6),
    replays exactly the migrations recorded in schema_migrations into a throwaway
    shadow database (CREATE DATABASE on the same server, dropped afterwards), then
    compares the two catalogs object by object. One line per difference: + extra,
    - missing, ~ changed, with both definitions. Exit 0 when identical, 10 when drifted.
    """
    from alumdb import database, replay

    if shadow_url is not None and shadow_container:
        raise UsageError("pass either --shadow-url or --shadow-container, not both")
    shadow_params = database.parse_url(shadow_url, "--shadow-url") if shadow_url else None
    folder = db.folder()
    connected = db.connect(db.resolve())
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
                wait=max(db.seconds, 60.0),
                on_progress=progress,
            )
    except (KeyboardInterrupt, Interrupted):  # the runner turns Ctrl-C into Interrupted
        raise Exit(
            "interrupted: the target was only read and the shadow database is removed",
            code=ExitCode.INTERRUPTED,
        ) from None
    if json_:
        print(render.drift_json(result, connected.where))
    else:
        _say(*render.drift_lines(result))
    if result.comparison.differences:
        raise SchemaDriftError(render.drift_verdict(result))
    if not json_:
        _say(render.drift_verdict(result))


@command(
    help={
        "check": "only check: exit 1 when migrations/schema.sql is stale, change nothing",
        "migrations": TARGET_HELP["migrations"],
    }
)
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
            raise CheckFailed(
                f"{path} is stale (it is not the schema the migrations make); "
                "run `invoke schema` and commit it"
            )
        _say(f"{path}: up to date")
    elif schema_dump.write(folder, text):
        _say(f"{path}: written")
    else:
        _say(f"{path}: already up to date")


@command(help={"migrations": TARGET_HELP["migrations"]})
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


@command(help={"env": TARGET_HELP["env"]})
def down(c: Context, env: str = "dev") -> None:
    """Stop and remove the database container; the data volume is kept."""
    resolved = environment.resolve(env, ROOT)
    environment.down(resolved)
    _say(f"stopped {resolved.describe()}; data kept (invoke reset drops it)")


@command(help={"yes": "do not ask for confirmation", "env": "only dev is allowed"})
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


@command(
    help={
        "env": TARGET_HELP["env"],
        "follow": "keep printing new lines",
        "tail": "how many lines (default: 100)",
    }
)
def logs(c: Context, env: str = "dev", follow: bool = False, tail: int = 100) -> None:
    """Show the database container's logs."""
    resolved = environment.resolve(env, ROOT)
    args = ["logs", f"--tail={tail}", *(["--follow"] if follow else []), environment.SERVICE]
    c.run(shlex.join(environment.compose_args(resolved, *args)), pty=sys.stdout.isatty())


@command(
    help={
        "env": TARGET_HELP["env"],
        "command": "run one SQL command instead of a shell",
        "tenant": "act as the application (role alumoutreach_app) with app.tenant_id set to "
        "this tenant's UUID: see exactly the rows the application sees",
    }
)
def psql(
    c: Context, env: str = "dev", command: str | None = None, tenant: str | None = None
) -> None:
    """Open psql inside the database container (no psql needed on this machine).

    With --tenant, the session runs as alumoutreach_app with app.tenant_id set for
    the whole session, so row-level security shows that tenant's rows only.
    """
    from alumdb import tenancy

    tenant_id = None if tenant is None else tenancy.parse_tenant(tenant)  # before Docker
    resolved = environment.resolve(env, ROOT)
    point = environment.running_endpoint(resolved, environment.docker_client())
    interactive = command is None and sys.stdin.isatty()
    if tenant_id is not None and interactive:
        print(
            f"psql as {tenancy.APP_ROLE}, {tenancy.TENANT_SETTING} = {tenant_id}"
            " (RESET ROLE returns to the owner)",
            file=sys.stderr,
        )
    options = None if tenant_id is None else tenancy.session_options(tenant_id)
    args = point.psql_command(interactive=interactive, command=command, pgoptions=options)
    c.run(shlex.join(args), pty=interactive)


class _SeedBar:
    """The seed's progress bar: on stderr, and only when stderr is a terminal."""

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()

    def __call__(self, p: seed_engine.Progress) -> None:
        if self.shown:
            sys.stderr.write("\r" + render.seed_progress(p))
            sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 90 + "\r")
            sys.stderr.flush()


@database_task(
    starts=True,
    migrations=False,
    env_help="compose environment: dev (default); prod is always refused",
    options_help={
        "tenants": f"how many tenants (default: {seed_plan.DEFAULT_TENANTS})",
        "size": f"preset: {', '.join(seed_plan.PRESETS)} (default: {seed_plan.DEFAULT_PRESET}); "
        + "; ".join(
            f"{k}: {v.contacts:,} contacts per tenant" for k, v in seed_plan.PRESETS.items()
        ),
        "contacts": "contacts per tenant, overriding the preset's",
        "seed": "random seed: the same seed gives the same rows (default: 1)",
        "allow_non_dev": "seed a database that does not look like a disposable dev database",
    },
)
def seed(
    c: Context,
    db: Database,
    tenants: int = seed_plan.DEFAULT_TENANTS,
    size: str | None = None,
    contacts: str | None = None,
    seed: int = 1,
    allow_non_dev: bool = False,
) -> None:
    """Fill a dev database with realistic, deterministic data (COPY), then print rows per table.

    Contacts with addresses, attributes, consents and timelines; segments; templates;
    campaigns with runs and messages; inbox threads; workflows, sequences and jobs in
    every status, for each tenant. Refuses prod, and any database that does not look
    disposable (not on this machine, `prod` in its name, tenants it did not make)
    unless --allow-non-dev. Tenants already seeded with this --seed are skipped.
    """
    if db.env == "prod":
        raise SeedError("--env prod: seed writes made-up data and never runs against production")
    per_tenant = None
    if contacts is not None:
        if not contacts.strip().isdigit():
            raise UsageError(f"--contacts {contacts!r}: give a whole number of contacts per tenant")
        per_tenant = int(contacts)
    options = seed_plan.options(tenants, size, per_tenant, seed)
    connected = db.connect(db.resolve())
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
    _say(*render.seed_summary(report))
