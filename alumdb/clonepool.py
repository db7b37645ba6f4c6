"""Test databases cloned ahead of the tests that need them, and dropped behind them.

``CREATE DATABASE ... TEMPLATE`` creates every relation file of the template (490
for the CRM's schema, system catalogs included) and writes it all to the WAL;
``DROP DATABASE`` forces a checkpoint. bench/fixture.py measures what that costs a
test: about 20 ms on a server whose data is on tmpfs, hundreds of milliseconds on a
disk slow to create files. A :class:`ClonePool` does both off the test's path (the
way IntegreSQL serves test databases): a thread with a connection of its own keeps
clones ready while tests run, and another drops released clones behind them, so a
test takes a database that is already there and leaves without waiting for the drop.

* Every clone is a new database, made for one test and dropped after it: nothing
  is reused, so tests never see each other's writes.
* ``spares`` clones wait ready at most (per pool: per pytest session, so per
  xdist worker); ``spares=0`` clones and drops on the caller's thread instead.
* :meth:`ClonePool.close` drops every clone still there, ready or released, and
  says which it could not drop.
* A session killed before it could drop its clones leaves them behind: every clone's
  name carries its pool's token (``alumdb_test_<token>_<n>``) and the pool's
  connection announces the token (``application_name``), so the next pool that starts
  on the server drops the clones whose pool has no connection any more.
* A pool whose connections the server lost (a restart) connects again and goes on:
  a clone, check or drop that failed with its connection runs again on a new one
  (:meth:`_Link.run`), and a clone made before is checked to exist before a test gets
  it (meanwhile another pool may have taken it for an orphan and dropped it).
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from alumdb import database
from alumdb.errors import DatabaseUnavailableError
from alumdb.testdb import CLONE_PREFIX, POOL_PREFIX, clone, drop, pool_application_name

TOKEN_HEX = 12
DEFAULT_SPARES = 2
T = TypeVar("T")
EXISTS = sql.SQL("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s")


def drop_orphans(conn: psycopg.Connection[Any]) -> tuple[str, ...]:
    """Drop the clones whose pool has no connection to the server any more.

    Best effort: only clones this role may drop (it owns them, or is a superuser), and
    one that cannot be dropped (another pool dropped it first, say) is left alone.
    """
    rows = conn.execute(
        "SELECT d.datname FROM pg_database d"
        " WHERE d.datname ~ %s AND pg_has_role(d.datdba, 'USAGE') AND NOT EXISTS ("
        "   SELECT 1 FROM pg_stat_activity a"
        "   WHERE starts_with(a.application_name, %s || substr(d.datname, %s, %s) || ' '))"
        " ORDER BY d.datname",
        (
            f"^{CLONE_PREFIX}[0-9a-f]{{{TOKEN_HEX}}}_[0-9]+$",
            POOL_PREFIX,
            len(CLONE_PREFIX) + 1,
            TOKEN_HEX,
        ),
    ).fetchall()
    dropped = []
    for (name,) in rows:
        try:
            drop(conn, str(name))
        except psycopg.Error:
            continue
        dropped.append(str(name))
    return tuple(dropped)


class _Link:
    """One connection of the pool, opened again if the server dropped it."""

    def __init__(self, params: database.Conninfo, wait: float) -> None:
        self.params = params
        self.conn = database.connect(params, wait=wait, application_name=params["application_name"])

    def get(self) -> psycopg.Connection[Any]:
        if self.conn.closed or self.conn.broken:  # the server restarted: connect again
            self.conn.close()
            self.conn = database.connect(
                self.params, wait=5.0, application_name=self.params["application_name"]
            )
        return self.conn

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work(connection)``; once more on a new connection if the old one was lost."""
        try:
            return work(self.get())
        except psycopg.OperationalError:
            if not (self.conn.closed or self.conn.broken):
                raise
            return work(self.get())


class ClonePool:
    """Clones of ``template`` made ahead on one thread, handed out once, dropped on another."""

    def __init__(
        self, params: database.Conninfo, template: str, spares: int = DEFAULT_SPARES,
        wait: float = 0.0,
    ) -> None:  # fmt: skip
        self.token = secrets.token_hex(TOKEN_HEX // 2)
        self.template = template
        self.spares = max(0, spares)
        owned: database.Conninfo = {
            **params,
            "application_name": pool_application_name(self.token, template),
        }
        self._cloner = _Link(owned, wait)
        self.orphans = drop_orphans(self._cloner.conn)
        # Drops on a connection of their own: a DROP (and the checkpoint it forces) never
        # holds up the next clone.
        self._dropper = _Link(owned, wait) if self.spares else self._cloner
        # The tests' thread checks a ready clone on a connection no thread keeps busy.
        self._checker = _Link(owned, wait) if self.spares else self._cloner
        self._serial = itertools.count(1)
        self._cond = threading.Condition()
        self._ready: deque[str | DatabaseUnavailableError] = deque()
        self._drops: deque[str] = deque()
        self._undropped: list[str] = []
        self._closing = False
        self._threads: list[threading.Thread] = []
        if self.spares:
            for work in (self._clone_ahead, self._drop_behind):
                thread = threading.Thread(target=work, name=f"alumdb-{work.__name__}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def get(self, timeout: float = 300.0) -> str:
        """The name of a new clone (made now when none is ready)."""
        if not self._threads:
            return self._clone()
        cloner = self._threads[0]
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready or not cloner.is_alive(), timeout):
                raise DatabaseUnavailableError(
                    f"no clone of the template {self.template} was ready within {timeout:.0f}s"
                )
            if not self._ready:
                raise DatabaseUnavailableError("the thread that clones test databases stopped")
            item = self._ready.popleft()
            self._cond.notify_all()  # room for another spare
        if isinstance(item, str) and self._exists(item):
            return item
        # A clone that failed ahead (the server was restarting, say), or one another pool
        # dropped as an orphan while this pool's connections were lost: made now.
        return self._clone()

    def release(self, name: str) -> None:
        """Drop ``name`` (behind the caller's back when the pool has threads)."""
        if not self._threads:
            self._drop(name)
            return
        with self._cond:
            self._drops.append(name)
            self._cond.notify_all()

    def close(self) -> tuple[str, ...]:
        """Stop the threads, drop every clone still there; the names of those dropped now.

        Raises DatabaseUnavailableError naming the clones that could not be dropped.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        left = [item for item in self._ready if isinstance(item, str)]
        left += [*self._drops, *self._undropped]
        self._ready.clear()
        self._drops.clear()
        self._undropped.clear()
        failed: list[str] = []
        reason = ""
        for name in left:
            try:
                self._drop(name)
            except DatabaseUnavailableError as exc:
                failed.append(name)
                reason = str(exc)
        for link in {id(x): x for x in (self._cloner, self._dropper, self._checker)}.values():
            link.conn.close()
        if failed:
            raise DatabaseUnavailableError(
                f"could not drop the test database(s) {', '.join(failed)}: {reason}"
            )
        return tuple(left)

    # --- the threads -------------------------------------------------------------------

    def _clone_ahead(self) -> None:
        """Keep ``spares`` clones ready (a failed clone is made again when a test asks)."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closing or len(self._ready) < self.spares)
                if self._closing:
                    return
            item: str | DatabaseUnavailableError
            try:
                item = self._clone()
            except DatabaseUnavailableError as exc:
                item = exc
            with self._cond:
                self._ready.append(item)
                self._cond.notify_all()

    def _drop_behind(self) -> None:
        """Drop the released clones; on closing, those released so far, then stop."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closing or self._drops)
                if not self._drops:
                    return
                name = self._drops.popleft()
            try:
                self._drop(name)
            except DatabaseUnavailableError:
                with self._cond:
                    self._undropped.append(name)  # close() tries again

    # --- one statement each --------------------------------------------------------------

    def _clone(self) -> str:
        name = f"{CLONE_PREFIX}{self.token}_{next(self._serial)}"
        try:
            self._cloner.run(lambda conn: clone(conn, self.template, name))
        except psycopg.Error as exc:
            raise DatabaseUnavailableError(
                f"could not clone the template {self.template}: {database.first_line(exc)}"
            ) from None
        return name

    def _exists(self, name: str) -> bool:
        try:
            found = self._checker.run(lambda conn: conn.execute(EXISTS, (name,)).fetchone())
        except psycopg.Error as exc:
            raise DatabaseUnavailableError(
                f"could not check the test database {name}: {database.first_line(exc)}"
            ) from None
        return found is not None

    def _drop(self, name: str) -> None:
        try:
            self._dropper.run(lambda conn: drop(conn, name))
        except psycopg.Error as exc:
            raise DatabaseUnavailableError(
                f"could not drop the test database {name}: {database.first_line(exc)}"
            ) from None
