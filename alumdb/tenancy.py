"""Tenant isolation as the application meets it (``migrations/012_row_level_security.sql``).

Row-level security filters every tenant table by the transaction-local setting
:data:`TENANT_SETTING`; the application's login role is granted :data:`APP_ROLE`,
the job workers' :data:`WORKER_ROLE`. This module holds those names once for the
Python side, checks a tenant id typed by a person, and builds the session options
that make a psql session see what the application sees.
"""

from __future__ import annotations

import uuid

from alumdb.errors import UsageError

APP_ROLE = "alumoutreach_app"
WORKER_ROLE = "alumoutreach_worker"
TENANT_SETTING = "app.tenant_id"
EXAMPLE_TENANT = "123e4567-e89b-12d3-a456-426614174000"


def parse_tenant(value: str, option: str = "--tenant") -> uuid.UUID:
    """``value`` as a tenant id, or a :class:`UsageError` naming ``option``."""
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise UsageError(
            f"{option} {value!r}: not a UUID; pass the tenant's id (tenants.id), "
            f"e.g. {option} {EXAMPLE_TENANT}"
        ) from None


def session_options(tenant: uuid.UUID, role: str = APP_ROLE) -> str:
    """``PGOPTIONS`` for a session that runs as ``role`` with the tenant set.

    Set for the whole session (not per transaction, as the application does) so that
    every statement typed into psql runs for that tenant. ``role`` is a group role
    without LOGIN: the session logs in as its usual user, then acts as ``role``.
    """
    return f"-c role={role} -c {TENANT_SETTING}={tenant}"
