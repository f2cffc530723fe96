"""Shared fixtures for real components: PostgreSQL on 127.0.0.1 and a fresh audit database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from include.audit import AuditStore, AuditTarget

PG_HOST = os.environ.get("PDM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PDM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("PDM_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("PDM_TEST_PG_DB", "test")


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """The test Airflow home's SQLite metadata database, migrated once per session."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _admin_connect():
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_ADMIN_DB, connect_timeout=5)
    conn.autocommit = True
    return conn


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A new empty PostgreSQL database on the local server; yields its URI and drops it afterwards."""
    try:
        admin = _admin_connect()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(
            f"PostgreSQL on {PG_HOST}:{PG_PORT} is required (start it: scripts/ensure-services.sh): {exc}"
        )
    name = f"pdm_audit_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_audit_store(postgres_database: str) -> AuditStore:
    store = AuditStore(AuditTarget.from_uri(postgres_database))
    store.migrate()
    return store
