"""While the server works on a file: say so, and what the server says of it.

A statement that runs a while (an index on a big table, a backfill) prints nothing of
its own, and a server that stops answering looks the same from the client. So while a
message or a statement is out, a watcher thread reports, after 5 s and then at growing
intervals (10, 20, 40 s, then every minute), which file runs, for how long, and what
a second short connection sees of the runner's session in ``pg_stat_activity``:
working (and on what it waits), blocked by another session, or no answer at all, with
how long a silent server is given before the run fails (the connection's TCP
keepalives, :data:`alumdb.database.CONNECTION_SETTINGS`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from alumdb import database
from alumdb.catalog import Migration
from alumdb.runner.events import Event, EventSink, ignore

FIRST = 5.0  # seconds of silence before the first word
LONGEST = 60.0  # the interval grows (doubling) up to this
APPLICATION_NAME = "alumdb watch"
SESSION = """
SELECT a.state, a.wait_event_type, a.wait_event, pg_catalog.pg_blocking_pids(a.pid)
FROM pg_catalog.pg_stat_activity a WHERE a.pid = %s
"""


@contextmanager
def watching(
    conn: psycopg.Connection[Any],
    current: Callable[[], Migration | None],
    on_event: EventSink,
) -> Iterator[None]:
    """Report ``running`` events while the body waits for the server (see the module)."""
    if on_event is ignore:  # nobody listens: no second connection either
        yield
        return
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(conn, current, on_event, stop), name=APPLICATION_NAME, daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        # A probe in flight may take up to its connect timeout; it reports nothing once
        # stopped, so the run need not wait for it.
        watcher.join(timeout=0.5)


def _watch(
    conn: psycopg.Connection[Any],
    current: Callable[[], Migration | None],
    on_event: EventSink,
    stop: threading.Event,
) -> None:
    started = time.monotonic()
    if stop.wait(FIRST):  # most messages: done before there is anything to say
        return
    pid = conn.info.backend_pid
    params = database.same_target(conn)
    silence = database.silence_limit(params)
    delay = FIRST
    while True:
        state = server_view(params, pid)
        if stop.is_set():  # the answer came while we asked: nothing to report
            return
        elapsed = time.monotonic() - started
        on_event(Event("running", current(), elapsed, f"{elapsed:.0f}s so far; {state}; {silence}"))
        delay = min(delay * 2, LONGEST)
        if stop.wait(delay):
            return


def server_view(params: database.Conninfo, pid: int) -> str:
    """What a second connection sees of session ``pid``, as one clause."""
    try:
        with database.open_once(params, APPLICATION_NAME) as side:
            row = side.execute(SESSION, (pid,)).fetchone()
    except psycopg.Error as exc:
        return f"no answer from the server to a second connection ({database.first_line(exc)})"
    if row is None:  # behind a pooler the session's pid is not the server's
        return "the server answers; the session is not in pg_stat_activity (behind a pooler?)"
    state, wait_type, wait_event, blocking = row
    if blocking:
        return "waiting for a lock held by pid " + ", ".join(str(p) for p in blocking)
    if state != "active":
        return f"the server has finished the statement (session {state}); reading its answer"
    waits = f" (wait event {wait_type}:{wait_event})" if wait_event else ""
    return f"the server is working on it{waits}"
