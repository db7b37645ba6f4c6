"""The compose environment: where the database runs and whether it is ready.

Compose is the source of truth: up, down, run and logs go through the real compose
CLI (``docker compose``, or ``docker-compose`` where only v1 exists) so the files
behave exactly as they do for a person typing the commands. The Docker SDK does
what the CLI does badly: a fast engine check, finding the service's container by
its compose labels, waiting on its health with a deadline, reading its published
port and the credentials it was started with.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alumdb.errors import DockerUnavailableError, EnvironmentFailure, UsageError

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

ENVIRONMENTS = {"dev": "docker-compose.dev.yml", "prod": "docker-compose.prod.yml"}
SERVICE = "postgres"
CONTAINER_PORT = "5432/tcp"
ENGINE_TIMEOUT = 2.0
DEFAULT_HEALTH_TIMEOUT = 60.0


@dataclass(frozen=True)
class Environment:
    """One compose environment: a compose file and the project it runs as."""

    name: str
    project_dir: Path
    compose_file: Path
    project: str
    # Variables compose sees on top of the process environment (scratch environments).
    overrides: tuple[tuple[str, str], ...] = ()
    # The data directory on tmpfs instead of the volume: for throw-away servers only
    # (the pytest plugin's), whose data is gone when the container stops.
    in_memory: bool = False

    def describe(self) -> str:
        return f"{self.name} ({self.compose_file.name}, compose project {self.project})"

    def environ(self) -> dict[str, str]:
        """The environment compose commands of this environment run with."""
        return {**os.environ, **dict(self.overrides)}


@dataclass(frozen=True)
class Endpoint:
    """Where the environment's PostgreSQL listens, and who to connect as."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    container: str

    def conninfo(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
        }

    def psql_command(
        self, *, interactive: bool, command: str | None = None, pgoptions: str | None = None
    ) -> list[str]:
        """``docker exec`` of psql inside the container (no psql needed on the host)."""
        args = ["docker", "exec", "-it" if interactive else "-i"]
        if pgoptions is not None:
            args += ["-e", f"PGOPTIONS={pgoptions}"]
        args += [self.container, "psql", "-U", self.user, "-d", self.dbname]
        return args if command is None else [*args, "-c", command]


def read_dotenv(path: Path) -> dict[str, str]:
    """The ``KEY=VALUE`` pairs of a ``.env`` file, read as compose reads them."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def setting(name: str, project_dir: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """A setting from the process environment, else from the project's ``.env``."""
    environ = os.environ if environ is None else environ
    if environ.get(name):
        return environ[name]
    return read_dotenv(project_dir / ".env").get(name) or None


def normalise_project_name(name: str) -> str:
    """Compose's own normalisation of a directory name into a project name."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-") or "default"


_TOP_LEVEL_NAME = re.compile(r"""^name:\s*["']?(?P<name>[^"'\s#]+)""", re.MULTILINE)


def project_name(
    project_dir: Path, environ: Mapping[str, str] | None = None, compose_file: Path | None = None
) -> str:
    """The compose project name, resolved as compose v2 resolves it.

    ``COMPOSE_PROJECT_NAME`` from the environment or ``.env``, else the compose file's
    top-level ``name:`` (docker-compose.dev.yml: ``alumoutreach-dev``), else the project
    directory's name, so ``invoke`` and a person's ``docker compose`` commands address
    the same containers and volumes.
    """
    explicit = setting("COMPOSE_PROJECT_NAME", project_dir, environ)
    if not explicit and compose_file is not None and compose_file.is_file():
        found = _TOP_LEVEL_NAME.search(compose_file.read_text(encoding="utf-8"))
        explicit = found["name"] if found else None
    return normalise_project_name(explicit or project_dir.resolve().name)


def resolve(
    name: str,
    project_dir: Path,
    overrides: Mapping[str, str] | None = None,
    in_memory: bool = False,
) -> Environment:
    """The environment called ``name`` (``dev`` or ``prod``).

    ``overrides`` are variables compose sees on top of the process environment
    (``COMPOSE_PROJECT_NAME``, ``POSTGRES_PORT``...), for environments that must not
    touch the developer's own. ``in_memory``: PostgreSQL's data on tmpfs (see
    :data:`IN_MEMORY_OVERRIDE`).
    """
    if name not in ENVIRONMENTS:
        raise UsageError(
            f"--env {name!r}: unknown environment; choose one of {', '.join(ENVIRONMENTS)}"
        )
    compose_file = project_dir / ENVIRONMENTS[name]
    if not compose_file.is_file():
        raise UsageError(f"--env {name}: {compose_file} does not exist")
    extra = dict(overrides or {})
    project = project_name(project_dir, {**os.environ, **extra}, compose_file)
    return Environment(
        name, project_dir, compose_file, project, tuple(sorted(extra.items())), in_memory
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scratch_settings(prefix: str) -> dict[str, str]:
    """Variables for a throw-away copy of the dev environment beside the developer's own.

    Its own compose project (so its own volume), container name, host port and a
    random password: it never touches the developer's database.
    """
    tag = f"{prefix}{secrets.token_hex(4)}"
    return {
        "COMPOSE_PROJECT_NAME": tag,
        "POSTGRES_CONTAINER_NAME": f"{tag}-postgres",
        "POSTGRES_PORT": str(free_port()),
        "POSTGRES_PASSWORD": f"pw-{secrets.token_hex(12)}",
    }


# --- the engine --------------------------------------------------------------------


def docker_client(timeout: float = 60.0) -> docker.DockerClient:
    """A Docker SDK client whose engine answered a ping within ``ENGINE_TIMEOUT`` seconds."""
    import docker
    import requests.exceptions

    where = os.environ.get("DOCKER_HOST") or "the default socket (or the active docker context)"
    try:
        client = docker.from_env(timeout=int(ENGINE_TIMEOUT) or 1)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DockerUnavailableError(
            f"the Docker Engine is not reachable at {where}: start Docker (or fix DOCKER_HOST) "
            f"and try again [{reason[:160]}]"
        ) from None
    client.api.timeout = timeout
    return client


def compose_v2_available() -> bool:
    """Whether ``docker compose`` (the v2 plugin) answers. ``--help`` would not tell."""
    try:
        result = subprocess.run(
            ["docker", "compose", "version", "--short"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


# Where the Docker CLI looks for plugins besides the user's config folder.
SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def compose_plugin_installed() -> bool:
    """Whether an executable ``docker-compose`` CLI plugin is where the Docker CLI looks."""
    candidates = [plugin_path(), *(Path(d) / "docker-compose" for d in SYSTEM_PLUGIN_DIRS)]
    return any(p.is_file() and os.access(p, os.X_OK) for p in candidates)


def plugin_path() -> Path:
    config = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(config) / "cli-plugins" / "docker-compose"


@functools.cache
def compose_command() -> tuple[str, ...]:
    """``docker compose`` (v2) when the plugin is there, else ``docker-compose`` (v1).

    An executable plugin file where the Docker CLI looks for it settles it without
    starting a process (``docker compose version`` costs about 0.1 s of every task).
    """
    if compose_plugin_installed() or compose_v2_available():
        return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise EnvironmentFailure(
        "neither `docker compose` (v2) nor `docker-compose` (v1) is installed; "
        "run scripts/setup to install the compose v2 plugin"
    )


# A second compose file for throw-away servers: the data directory on tmpfs instead of
# the named volume (compose merges a service's mounts by target). On a disk where file
# creation is slow (bench/README.md: ext4 after many deletions), a clone of the test
# template took 300-450 ms on the volume and 20-30 ms on tmpfs.
IN_MEMORY_OVERRIDE = """\
services:
  postgres:
    volumes:
      - type: tmpfs
        target: /var/lib/postgresql/data
"""


@functools.cache
def _in_memory_file() -> Path:
    """:data:`IN_MEMORY_OVERRIDE` as a file of this process's own (removed at exit)."""
    directory = Path(tempfile.mkdtemp(prefix="alumdb-compose-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = directory / "data-in-memory.yml"
    path.write_text(IN_MEMORY_OVERRIDE, encoding="utf-8")
    return path


def compose_args(env: Environment, *args: str) -> list[str]:
    """The full argument list of a compose command for ``env``."""
    files = ["-f", str(env.compose_file)]
    if env.in_memory:
        files += ["-f", str(_in_memory_file())]
    return [
        *compose_command(),
        "--project-directory",
        str(env.project_dir),
        *files,
        "-p",
        env.project,
        *args,
    ]


def compose(env: Environment, *args: str, what: str) -> subprocess.CompletedProcess[str]:
    """Run a compose command, raising :class:`EnvironmentFailure` with its last lines."""
    result = subprocess.run(
        compose_args(env, *args), capture_output=True, text=True, check=False, env=env.environ()
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        detail = lines[-1].strip() if lines else f"exit code {result.returncode}"
        raise EnvironmentFailure(f"{what} failed ({env.compose_file.name}): {detail}")
    return result


def find_container(client: docker.DockerClient, env: Environment) -> Container | None:
    """The environment's postgres container, found by its compose labels (running or not)."""
    containers = client.containers.list(
        all=True,
        filters={
            "label": [
                f"com.docker.compose.project={env.project}",
                f"com.docker.compose.service={SERVICE}",
                "com.docker.compose.oneoff=False",
            ]
        },
    )
    return containers[0] if containers else None


def last_log_lines(container: Container, count: int = 15) -> str:
    """A snapshot of the container's last log lines (never follows)."""
    try:
        raw = container.logs(tail=count, follow=False)
    except Exception:
        return "(no logs available)"
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.rstrip() or "(the container printed nothing)"


def wait_ready(
    container: Container,
    timeout: float = DEFAULT_HEALTH_TIMEOUT,
    probe: Callable[[], bool] | None = None,
    interval: float = 0.02,
    inspect_every: float = 0.25,
) -> float:
    """Wait until the container is healthy (or ``probe`` connects); return the seconds waited.

    ``probe`` lets a caller that can reach the database accept a successful
    connection before the next healthcheck tick: on a fresh volume the image's
    temporary init server listens on the Unix socket only, so a TCP connection
    from the host succeeds only once the real server is up. The probe runs every
    ``interval`` (a refused connection costs well under a millisecond), the Engine
    is asked for the container's state every ``inspect_every`` seconds.
    """
    started = time.monotonic()
    deadline = started + timeout
    inspected = float("-inf")  # the first round asks the Engine
    health: str | None = None
    running = False
    while True:
        now = time.monotonic()
        if probe is None or now - inspected >= inspect_every:
            inspected = now
            container.reload()
            state = container.attrs.get("State", {})
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy":
                return time.monotonic() - started
            if state.get("Status") in {"exited", "dead"} or health == "unhealthy":
                raise EnvironmentFailure(
                    f"container {container.name} is {health or state.get('Status')}; its last "
                    f"log lines:\n{last_log_lines(container)}"
                )
            running = state.get("Status") == "running"
        if probe is not None and running and probe():
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise EnvironmentFailure(
                f"container {container.name} was not healthy after {timeout:.0f}s "
                f"(health: {health or 'none'}); its last log lines:\n"
                f"{last_log_lines(container)}"
            )
        time.sleep(interval)


def endpoint(container: Container) -> Endpoint:
    """Where the container publishes PostgreSQL, and the credentials it was started with."""
    container.reload()
    ports = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    bindings = ports.get(CONTAINER_PORT) or []
    if not bindings:
        raise EnvironmentFailure(
            f"container {container.name} publishes no port for {CONTAINER_PORT}; add a "
            "`ports:` entry to the postgres service or use --database-url"
        )
    binding = bindings[0]
    host = binding.get("HostIp") or "127.0.0.1"
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - reading a binding, not binding
        host = "127.0.0.1"
    env_list = container.attrs.get("Config", {}).get("Env") or []
    env = dict(item.split("=", 1) for item in env_list if "=" in item)
    user = env.get("POSTGRES_USER") or "postgres"
    return Endpoint(
        host=host,
        port=int(binding["HostPort"]),
        user=user,
        password=env.get("POSTGRES_PASSWORD", ""),
        dbname=env.get("POSTGRES_DB") or user,
        container=container.name or container.id or "?",
    )


@dataclass(frozen=True)
class UpResult:
    endpoint: Endpoint
    started: bool  # False when it was already running and healthy
    waited: float


def up(
    env: Environment,
    client: docker.DockerClient,
    timeout: float = DEFAULT_HEALTH_TIMEOUT,
    probe: Callable[[Endpoint], bool] | None = None,
) -> UpResult:
    """Bring the environment's postgres up (compose up -d) and wait until it is ready."""
    container = find_container(client, env)
    already = False
    if container is not None and container.status == "running":
        # Running already: ready when the healthcheck says so, or (between two ticks of
        # a fresh start) when the caller's probe connects.
        health = (container.attrs.get("State", {}).get("Health") or {}).get("Status")
        already = health == "healthy" or (probe is not None and probe(endpoint(container)))
    if not already:
        compose(env, "up", "-d", SERVICE, what="compose up")
        container = find_container(client, env)
        if container is None:
            raise EnvironmentFailure(
                f"compose up reported success but no {SERVICE} container of project "
                f"{env.project} exists"
            )
    assert container is not None  # noqa: S101 - narrowed above
    point = endpoint(container)
    check = (lambda: probe(point)) if probe is not None else None
    waited = 0.0 if already else wait_ready(container, timeout, check)
    return UpResult(endpoint=point, started=not already, waited=waited)


def running_endpoint(env: Environment, client: docker.DockerClient) -> Endpoint:
    """The endpoint of an environment that must already be running (status, psql)."""
    container = find_container(client, env)
    if container is None or container.status != "running":
        raise EnvironmentFailure(
            f"the {env.name} database is not running (compose project {env.project}); "
            "start it with `invoke up`"
        )
    return endpoint(container)


def down(env: Environment, volumes: bool = False) -> None:
    """Stop and remove the environment's containers; with ``volumes``, its data too."""
    args = ["down", "--remove-orphans"]
    if volumes:
        args.append("--volumes")
    compose(env, *args, what="compose down")
