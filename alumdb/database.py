"""Connecting to PostgreSQL: parse and redact DSNs, wait for a server.

:func:`connect` is the one place the engine opens a connection."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from alumdb import refusal
from alumdb.errors import DatabaseUnavailableError, UsageError

# The tracking table belongs to alumdb.tracking; these names stay importable from here.
from alumdb.tracking import AUDIT_TABLE, TRACKING_TABLE

__all__ = [
    "APPLICATION_NAME",
    "AUDIT_TABLE",
    "CONNECT_TIMEOUT",
    "TRACKING_TABLE",
    "Conninfo",
    "connect",
    "first_line",
    "open_once",
    "parse_url",
    "probe",
    "redact",
    "same_target",
    "settings",
    "silence_limit",
]

CONNECT_TIMEOUT = 3
# What a connection is called in pg_stat_activity unless the caller names it (the
# migrate task's connection is "alumdb migrate": alumdb.runner.APPLICATION_NAME).
APPLICATION_NAME = "alumdb"
FIRST_RETRY = 0.05  # seconds; doubled up to 1 s between tries
# Failures of libpq's own (it never translates them) after which trying again cannot
# help. A refusal the server sends is judged by its SQLSTATE (alumdb.refusal).
FINAL_CLIENT_ERRORS = (
    "could not translate host name",  # DNS: the name does not resolve (libpq)
    "failed to resolve host",  # the same, when psycopg resolves it
    "SSL",  # an SSL refusal or a certificate problem: waiting changes nothing
    "server does not support",
)
# Only where the SQLSTATE cannot be read (psycopg's libpq not found): the texts of a
# server with the default lc_messages.
FINAL_SERVER_TEXTS = (
    "authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
)
# Every connection: a bounded connect, and TCP keepalives and a user timeout, so a
# server that stops answering mid-file fails the run within about half a minute
# instead of leaving it waiting for ever.
CONNECTION_SETTINGS = {
    "connect_timeout": CONNECT_TIMEOUT,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms
}

Conninfo = dict[str, Any]


def parse_url(url: str, what: str = "--database-url") -> Conninfo:
    """The parameters of a URL or ``key=value`` DSN; :class:`UsageError` if it does not parse."""
    text = url.strip()
    if not text:
        raise UsageError(f"{what} is empty; give a URL such as postgresql://user@host:5432/db")
    looks_like_url = "://" in text
    if looks_like_url and not text.startswith(("postgresql://", "postgres://")):
        scheme = text.split("://", 1)[0]
        raise UsageError(
            f"{what}: scheme {scheme!r} is not PostgreSQL; use postgresql://user@host:5432/db"
        )
    try:
        params = pg_conninfo.conninfo_to_dict(text)
    except psycopg.ProgrammingError as exc:
        reason = _scrub(str(exc).splitlines()[0].removeprefix("invalid connection option "), text)
        raise UsageError(
            f"{what} does not parse ({reason}); use postgresql://user@host:5432/db"
        ) from None
    if not looks_like_url and "=" not in text:
        raise UsageError(f"{what} does not parse; use postgresql://user@host:5432/db")
    for port in str(params.get("port") or "5432").split(","):
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"{what} does not parse (port {port!r} is not a number 1-65535)")
    return dict(params)


def _scrub(reason: str, text: str) -> str:
    """``reason`` (libpq's, which may quote the DSN) without the password ``text`` holds."""
    secrets = []
    userinfo = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@", text)
    if userinfo and ":" in userinfo[1]:
        secrets.append(userinfo[1].split(":", 1)[1])
    secrets += re.findall(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", text)
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        reason = reason.replace(secret, "***")
    return reason


def redact(params: Conninfo) -> str:
    """A DSN safe to show: ``postgresql://user:***@host:port/db`` (the password never appears)."""
    user = params.get("user") or ""
    password = "***" if params.get("password") else ""
    auth = f"{user}{':' + password if password else ''}@" if user or password else ""
    host = params.get("host") or "localhost"
    port = params.get("port")
    dbname = params.get("dbname") or ""
    return f"postgresql://{auth}{host}{':' + str(port) if port else ''}/{dbname}"


def connect(
    params: Conninfo,
    wait: float = 0.0,
    application_name: str = APPLICATION_NAME,
    on_wait: Callable[[str], None] | None = None,
) -> psycopg.Connection[Any]:
    """An autocommit connection, retrying refused connections for up to ``wait`` seconds.

    Errors that waiting cannot fix (a wrong password, a missing database) fail at
    once. Prepared statements are disabled so a pooler in transaction mode works.
    """
    deadline = time.monotonic() + wait
    delay = FIRST_RETRY
    codes: dict[str, str | None] = {}  # the SQLSTATE of each refusal text, read once
    while True:
        try:
            conn = _open(params, application_name)
        except psycopg.OperationalError as exc:
            reason = first_line(exc)
            if refusal.server_sent(reason) and reason not in codes:
                codes[reason] = refusal.sqlstate(settings(params), CONNECT_TIMEOUT)
            code = codes.get(reason)
            final = _final(reason, code)
            if final or time.monotonic() + delay > deadline:
                waited = f" after waiting {wait:.0f}s" if wait and not final else ""
                said = f"{reason} (SQLSTATE {code})" if code else reason
                raise DatabaseUnavailableError(
                    f"cannot connect to {redact(params)}{waited}: {said}{_hint(reason, code)}"
                ) from None
            if on_wait is not None and delay == FIRST_RETRY:  # say it once, then wait
                on_wait(f"waiting up to {wait:g}s for {redact(params)}: {reason}")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        else:
            return conn


def _final(reason: str, code: str | None) -> bool:
    """Whether waiting cannot help a connection refused with ``reason`` / ``code``."""
    if code is not None:
        return code not in refusal.RETRY
    if refusal.server_sent(reason):
        return any(text in reason for text in FINAL_SERVER_TEXTS)
    return any(marker in reason for marker in FINAL_CLIENT_ERRORS)


def _open(
    params: Conninfo, application_name: str, timeout: int | None = None
) -> psycopg.Connection[Any]:
    """The one place the engine opens a connection (autocommit, no prepared statements)."""
    chosen = settings({"application_name": application_name, **params})
    if timeout is not None:
        chosen["connect_timeout"] = timeout
    conn = psycopg.connect(**chosen, autocommit=True)
    conn.prepare_threshold = None
    return conn


def settings(params: Conninfo) -> Conninfo:
    """The libpq parameters of a connection: :data:`CONNECTION_SETTINGS`, then ``params``."""
    return {**CONNECTION_SETTINGS, **params}


def first_line(exc: BaseException) -> str:
    """An error's reason on one line: the server's primary message when it sent one,
    else libpq's first line without its "connection to server at ... failed:" prefix."""
    primary = exc.diag.message_primary if isinstance(exc, psycopg.Error) else None
    if primary:
        return primary.strip().splitlines()[0]
    text = str(exc).strip()
    # libpq prefixes "connection failed: connection to server at ... failed: <reason>".
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(exc).__name__
    return line.split("failed: ")[-1] if "failed: " in line else line


def _hint(reason: str, code: str | None) -> str:
    if code in refusal.HINTS:
        return f"; {refusal.HINTS[code]}"
    if code is None and "authentication failed" in reason:
        return f"; {refusal.HINTS['28P01']}"
    if code is None and "does not exist" in reason:
        return "; check the user and database names"
    if "refused" in reason or "timeout" in reason or "timed out" in reason:
        return "; is the server running and the port right? (--wait SECONDS waits for it)"
    return ""


def same_target(conn: psycopg.Connection[Any]) -> Conninfo:
    """The parameters of ``conn``, password included, to open another connection like it."""
    params: Conninfo = dict(pg_conninfo.conninfo_to_dict(conn.info.dsn))
    if conn.info.password:
        params["password"] = conn.info.password
    return params


def open_once(params: Conninfo, application_name: str) -> psycopg.Connection[Any]:
    """One connection, no retry, at most :data:`CONNECT_TIMEOUT` seconds to open it."""
    return _open(params, application_name, timeout=CONNECT_TIMEOUT)


def silence_limit(params: Conninfo) -> str:
    """How long a connection opened with ``params`` waits for a server that is gone.

    A busy server's kernel still answers TCP keepalives; a host or network that is gone
    does not, and the connection fails after the keepalive probes (libpq's settings).
    """
    chosen = settings(params)
    try:
        if str(chosen["keepalives"]) == "0":
            return (
                "TCP keepalives are off: if the server's host goes away, "
                "the run waits until the OS gives up"
            )
        seconds = int(chosen["keepalives_idle"]) + int(chosen["keepalives_interval"]) * int(
            chosen["keepalives_count"]
        )
    except (KeyError, ValueError):
        return "a server that is gone is found by TCP keepalives"
    return f"if the server's host or network goes away, the run fails within {seconds}s"


def probe(params: Conninfo) -> bool:
    """Whether a connection succeeds right now (used while a container starts)."""
    try:
        with _open(params, "alumdb", timeout=1) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True
