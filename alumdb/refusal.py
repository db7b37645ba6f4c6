"""Why a server refused a connection, by its SQLSTATE, which libpq does not hand over.

When a server refuses a connection (a wrong password, no such database, starting up)
it sends an error with a SQLSTATE, but libpq keeps only the error's text, in the
server's language (``lc_messages``), and psycopg exposes no code for it
(psycopg/psycopg#1188). libpq does write the code into that text when the
connection's error verbosity asks for it before the attempt (``PQERRORS_VERBOSE``:
``FATAL:  28P01: password authentication failed ...``), and psycopg cannot set that.

So after a refusal the engine makes one more attempt, on psycopg's own libpq (found
among the libraries this process has loaded, and only when its version is psycopg's)
with the verbosity set through ``ctypes``, solely to read the code. Where that libpq
cannot be found (not Linux), :func:`sqlstate` returns ``None`` and the caller falls
back to the English texts of a server with default ``lc_messages``.
"""

from __future__ import annotations

import ctypes
import functools
import re
import select
import time
from pathlib import Path
from typing import Any

from psycopg import conninfo as pg_conninfo
from psycopg import pq

PQERRORS_VERBOSE = 2  # libpq-fe.h: PGVerbosity
# libpq formats an error the server sent as "SEVERITY:  message" (two spaces); with
# verbose errors "SEVERITY:  SQLSTATE: message". Never translated by libpq.
SERVER_SENT = ":  "
_CODE = re.compile(r":  ([0-9A-Z]{5}): ")

# The refusals worth waiting for: the server cannot take the connection *yet*.
RETRY = frozenset(
    {
        "57P03",  # cannot_connect_now: starting up, shutting down, in recovery
        "53300",  # too_many_connections
    }
)
HINTS = {
    "28P01": "check the password (POSTGRES_PASSWORD or the URL)",
    "28000": "check the user name, that it may log in (LOGIN) and pg_hba.conf",
    "3D000": "check the database name",
    "42501": "check the user's CONNECT privilege on the database",
}


def server_sent(reason: str) -> bool:
    """Whether libpq's message ``reason`` is an error the server sent (not a network one)."""
    return SERVER_SENT in reason


def sqlstate(params: dict[str, Any], timeout: float) -> str | None:
    """The SQLSTATE with which the server refuses a connection with ``params`` now.

    ``None`` when it cannot be told: the attempt connected (the refusal has passed),
    failed without a word from the server, or ran out of ``timeout`` seconds, or
    psycopg's libpq cannot be reached.
    """
    set_verbosity = _set_verbosity()
    if set_verbosity is None:
        return None
    pgconn = pq.PGconn.connect_start(pg_conninfo.make_conninfo("", **params).encode())
    try:
        pointer = getattr(pgconn, "pgconn_ptr", None)  # psycopg's, for ctypes (not typed)
        if not pointer:
            return None
        set_verbosity(ctypes.c_void_p(pointer), PQERRORS_VERBOSE)
        deadline = time.monotonic() + timeout
        while pgconn.status != pq.ConnStatus.BAD:
            status = pgconn.connect_poll()
            if status == pq.PollingStatus.OK:
                return None
            if status == pq.PollingStatus.FAILED:
                break
            left = deadline - time.monotonic()
            reading = status == pq.PollingStatus.READING
            fd = pgconn.socket
            if left <= 0 or not any(select.select(*_sets(fd, reading), left)):
                return None
        found = _CODE.search(pgconn.error_message.decode("utf-8", "replace"))
        return found[1] if found else None
    finally:
        pgconn.finish()


def _sets(fd: int, reading: bool) -> tuple[list[int], list[int], list[int]]:
    return ([fd], [], []) if reading else ([], [fd], [])


@functools.cache
def _set_verbosity() -> Any:
    """libpq's ``PQsetErrorVerbosity`` from the libpq psycopg runs on, or ``None``."""
    for path in _loaded_libpq():
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same library, not a copy
            if lib.PQlibVersion() != pq.version():
                continue
        except (OSError, AttributeError):
            continue
        function = lib.PQsetErrorVerbosity
        function.argtypes = [ctypes.c_void_p, ctypes.c_int]
        function.restype = ctypes.c_int
        return function
    return None


def _loaded_libpq() -> list[str]:
    """The paths of the libpq libraries this process has loaded (Linux), else none."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    paths = {line.split()[-1] for line in maps.splitlines() if "/libpq" in line}
    return sorted(p for p in paths if Path(p).name.startswith("libpq") and ".so" in p)
