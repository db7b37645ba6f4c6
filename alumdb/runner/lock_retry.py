"""What to do after a statement met its ``lock_timeout`` (SQLSTATE 55P03).

The one decision point for lock-timeout retries: the apply loop asks
:meth:`LockRetry.after_timeout` and either sleeps the delay it returns and tries
the file again, or gets the :class:`MigrationFailed` to raise. Replace this module
to change the policy (backoff, jitter, total budget); the loop does not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alumdb.catalog import Migration
from alumdb.errors import MigrationFailed

MAX_BACKOFF = 30.0
FIRST_BACKOFF = 0.5


@dataclass
class LockRetry:
    """Counts the lock timeouts each file met in one run and decides the next step."""

    lock_timeout: float
    retries: int
    attempts: dict[str, int] = field(default_factory=dict)  # lock timeouts met, by version

    def after_timeout(self, migration: Migration, why: str) -> float:
        """Seconds to wait before trying ``migration`` again; raises once retries are spent.

        ``why``: the server's message, for the final error.
        """
        attempt = self.attempts[migration.version] = self.attempts.get(migration.version, 0) + 1
        if attempt > self.retries:
            raise MigrationFailed(
                f"{migration.filename}: could not get a lock within "
                f"{self.lock_timeout:g}s, {attempt} attempts ({why}); "
                "another session holds a lock on what the file alters: retry when it is "
                "quieter or raise --lock-timeout"
            )
        return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1)))

    def describe(self, migration: Migration, delay: float) -> str:
        """The ``retrying`` event's text for the attempt just counted."""
        attempt = self.attempts.get(migration.version, 0)
        return f"lock not available (attempt {attempt}/{self.retries}); retrying in {delay:g}s"
