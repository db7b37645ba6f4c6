"""bench/queries.py measures the hot queries as the CRM runs them (012's roles and tenant).

Not a benchmark: on a small seeded clone, the catalogue run as the application must
see the sampled tenant's rows (the role and app.tenant_id took effect) and nothing of
another tenant (row-level security applied), or its timings would measure nothing.
"""

from __future__ import annotations

import psycopg
import pytest

from alumdb import seed as seed_engine
from bench import queries
from tests.integration.test_seed import SMALL

pytestmark = pytest.mark.docker


def test_every_query_names_a_role_of_the_crm() -> None:
    catalogue = queries.load_catalogue()
    assert {q.role for q in catalogue} <= set(queries.ROLES)
    assert {q.name for q in catalogue if q.role == "worker"} == {"job_dequeue"}


def test_the_catalogue_as_the_crm_sees_one_tenant(alumdb_url: str) -> None:
    with psycopg.connect(alumdb_url, autocommit=True) as conn:
        seed_engine.seed(conn, SMALL)
    owner = {r["name"]: r for r in queries.run_catalogue(alumdb_url, 1)}
    crm = {r["name"]: r for r in queries.run_catalogue(alumdb_url, 1, as_app=True)}
    assert crm.keys() == owner.keys()
    assert crm["job_dequeue"]["role"] == "alumoutreach_worker"
    assert crm["contact_by_email"]["role"] == "alumoutreach_app"
    assert {r["role"] for r in owner.values()} == {"owner"}
    for name, r in crm.items():
        assert r["rows"], f"{name} found nothing as the CRM: the role or tenant did not apply"
    # Queries scoped to the tenant find the same rows either way ...
    for name in ("thread_messages", "contact_by_email", "contact_timeline", "segment_members"):
        assert crm[name]["rows"] == owner[name]["rows"], name
    # ... and the scans of every tenant see one tenant's rows as the CRM.
    with psycopg.connect(alumdb_url) as conn:
        tenant = queries.sample(conn)["tenant_id"]
        due = conn.execute(
            "SELECT count(*) FILTER (WHERE tenant_id = %s), count(*) FROM sequence_runs"
            " WHERE status = 'active' AND next_run_at <= now()",
            (tenant,),
        ).fetchone()
    assert due is not None and due[1] > due[0] > 0, "the sample needs due runs of two tenants"
    assert crm["due_sequence_runs"]["rows"] == min(due[0], 100)
    assert owner["due_sequence_runs"]["rows"] == min(due[1], 100)
