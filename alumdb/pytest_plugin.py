"""pytest plugin: a fresh, fully migrated PostgreSQL database per test, in milliseconds.

Installed with the package (entry point ``pytest11``: ``alumdb``), so a project that
depends on alumdb only asks for the fixture::

    def test_signup(alumdb_url: str) -> None:
        with psycopg.connect(alumdb_url) as conn: ...

Fixtures (all named ``alumdb_*``; nothing happens unless a test asks for one):

``alumdb_url``
    The URL of a new database cloned from the template (``CREATE DATABASE ...
    TEMPLATE``), dropped ``WITH (FORCE)`` after the test. A thread of the session
    clones ahead (``--alumdb-spares N``, ini ``alumdb_spares``, default 2 ready per
    session or xdist worker) and drops behind, so a test seldom waits for either
    (:mod:`alumdb.clonepool`); every clone is gone when the session ends, and clones
    left by a killed session are dropped by the next one.
``alumdb_template_url``
    (session) The URL of the migrated template itself. Nobody may connect to it
    (``ALLOW_CONNECTIONS false``); use it to name the template, e.g. in your own
    ``CREATE DATABASE ... TEMPLATE``.
``alumdb_template``
    (session) What :func:`alumdb.testdb.ensure_template` did: ``name``, ``built``
    (False when reused), ``seconds``, ``removed`` (older templates dropped).

Where the server is: ``--alumdb-server URL``, else ``ALUMDB_TEST_SERVER``, else the
``alumdb_server`` ini option (a role that may create databases; the URL's database
is the one the plugin connects to for CREATE/DROP DATABASE). Without any, the
plugin starts its own throw-away compose project of docker-compose.dev.yml (found
in the rootdir or beside the installed package) and removes it, volume included,
at the end of the session. Under pytest-xdist give a server: workers then share one
template (built once, under an advisory lock) instead of each starting PostgreSQL.

Which migrations: ``--alumdb-migrations PATH``, else the ``alumdb_migrations`` ini
option (relative to the ini file's folder), else ``<rootdir>/migrations``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from alumdb import clonepool, database, testdb

SERVER_ENV = "ALUMDB_TEST_SERVER"
COMPOSE_FILE = "docker-compose.dev.yml"
DEFAULT_SPARES = 2  # alumdb.clonepool.DEFAULT_SPARES, without importing psycopg at startup
_TEMPLATES = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("alumdb", "alumdb: a migrated PostgreSQL database per test")
    group.addoption(
        "--alumdb-server",
        metavar="URL",
        default=None,
        help=f"PostgreSQL server for alumdb_url (a role that may create databases); "
        f"default ${SERVER_ENV}, else a throw-away compose project",
    )
    group.addoption(
        "--alumdb-migrations",
        metavar="PATH",
        default=None,
        help="migrations folder the template is built from (default <rootdir>/migrations)",
    )
    group.addoption(
        "--alumdb-spares",
        metavar="N",
        default=None,
        help=f"databases cloned ahead for alumdb_url, per session or xdist worker "
        f"(default {DEFAULT_SPARES}; 0 clones when a test asks and drops after it)",
    )
    parser.addini("alumdb_server", "PostgreSQL server URL for alumdb_url", default="")
    parser.addini("alumdb_spares", "databases cloned ahead for alumdb_url", default="")
    parser.addini(
        "alumdb_migrations",
        "migrations folder for alumdb_url (relative to the ini file)",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_TEMPLATES] = []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_TEMPLATES, [])
    if lines:
        terminalreporter.write_sep("-", "alumdb")
        for line in lines:
            terminalreporter.write_line(line)


def _fail(exc: BaseException | str) -> NoReturn:
    pytest.fail(f"alumdb: {exc}", pytrace=False)


def migrations_folder(config: pytest.Config) -> Path:
    """The folder the template is built from (option, ini, ``<rootdir>/migrations``)."""
    option = config.getoption("--alumdb-migrations")
    if option:
        return Path(option).expanduser().resolve()
    ini = str(config.getini("alumdb_migrations") or "")
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / ini).resolve()
    return (config.rootpath / "migrations").resolve()


def _server_url(config: pytest.Config) -> str | None:
    return (
        config.getoption("--alumdb-server")
        or os.environ.get(SERVER_ENV)
        or str(config.getini("alumdb_server") or "")
        or None
    )


def _spares(config: pytest.Config) -> int:
    """How many clones wait ready (``--alumdb-spares``, else the ini option, else 2)."""
    option = config.getoption("--alumdb-spares")
    value, what = (
        (option, "--alumdb-spares")
        if option is not None
        else (str(config.getini("alumdb_spares") or ""), "the ini option alumdb_spares")
    )
    if not value:
        return DEFAULT_SPARES
    try:
        spares = int(value)
    except ValueError:
        spares = -1
    if spares < 0:
        _fail(f"{what}: expected a whole number of databases (0 or more), got {value!r}")
    return spares


def _compose_dir(config: pytest.Config) -> Path | None:
    package_parent = Path(__file__).resolve().parent.parent
    for candidate in (config.rootpath, package_parent):
        if (candidate / COMPOSE_FILE).is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Server:
    """The server the plugin clones databases on."""

    params: database.Conninfo

    def url(self, dbname: str) -> str:
        from alumdb import testdb

        return testdb.url_for(self.params, dbname)


@pytest.fixture(scope="session")
def alumdb_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The server (from ``--alumdb-server``/``ALUMDB_TEST_SERVER``, or a compose project)."""
    from alumdb import database, environment
    from alumdb.errors import AlumdbError

    url = _server_url(request.config)
    if url is not None:
        try:
            yield Server(database.parse_url(url, what=f"--alumdb-server/{SERVER_ENV}"))
        except AlumdbError as exc:
            _fail(exc)
        return
    project_dir = _compose_dir(request.config)
    if project_dir is None:
        _fail(
            f"no PostgreSQL server for alumdb_url: pass --alumdb-server URL or set {SERVER_ENV} "
            f"(no {COMPOSE_FILE} in {request.config.rootpath} to start one)"
        )
    env = None
    try:
        client = environment.docker_client()
        # The image comes through compose (POSTGRES_IMAGE, pulled when missing); where no
        # registry answers, the project's scripts/setup builds the stand-in beforehand
        # (tools/provision, which the installed package does not ship).
        env = environment.resolve(  # its data on tmpfs: clones in milliseconds (bench/)
            "dev", project_dir, environment.scratch_settings("alumdbtpl"), in_memory=True
        )
        up = environment.up(env, client, timeout=90)
        params = up.endpoint.conninfo()
        database.connect(params, wait=30).close()
        yield Server(params)
    except AlumdbError as exc:
        _fail(exc)
    finally:
        if env is not None:
            environment.down(env, volumes=True)


@pytest.fixture(scope="session")
def alumdb_template(request: pytest.FixtureRequest, alumdb_server: Server) -> testdb.Template:
    """The migrated template of the folder's current state (built once, then reused)."""
    from alumdb import catalog, testdb
    from alumdb.errors import AlumdbError

    folder = migrations_folder(request.config)
    try:
        template = testdb.ensure_template(alumdb_server.params, catalog.load(folder))
    except AlumdbError as exc:
        _fail(exc)
    what = f"built in {template.seconds:.2f}s" if template.built else "reused"
    line = f"alumdb: template {template.name} of {folder} {what}"
    if template.removed:
        line += f"; removed older template(s): {', '.join(template.removed)}"
    request.config.stash[_TEMPLATES].append(line)
    return template


@pytest.fixture(scope="session")
def alumdb_template_url(alumdb_server: Server, alumdb_template: testdb.Template) -> str:
    """The URL of the template database (connections to it are refused on purpose)."""
    return alumdb_server.url(alumdb_template.name)


@pytest.fixture(scope="session")
def _alumdb_clones(
    request: pytest.FixtureRequest, alumdb_server: Server, alumdb_template: testdb.Template
) -> Iterator[clonepool.ClonePool]:
    """Clones made ahead and dropped behind on a thread (one pool per session/xdist worker)."""
    from alumdb import clonepool
    from alumdb.errors import AlumdbError

    spares = _spares(request.config)
    try:
        pool = clonepool.ClonePool(alumdb_server.params, alumdb_template.name, spares, wait=10)
    except AlumdbError as exc:
        _fail(exc)
    if pool.orphans:
        request.config.stash[_TEMPLATES].append(
            f"alumdb: dropped {len(pool.orphans)} test database(s) left by a killed session: "
            + ", ".join(pool.orphans)
        )
    try:
        yield pool
    finally:
        try:
            pool.close()
        except AlumdbError as exc:
            _fail(exc)


@pytest.fixture
def alumdb_url(alumdb_server: Server, _alumdb_clones: clonepool.ClonePool) -> Iterator[str]:
    """The URL of a new database with every migration applied, dropped after the test."""
    from alumdb.errors import AlumdbError

    try:
        name = _alumdb_clones.get()
    except AlumdbError as exc:
        _fail(exc)
    try:
        yield alumdb_server.url(name)
    finally:
        _alumdb_clones.release(name)
