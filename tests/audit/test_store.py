"""The audit store against real PostgreSQL and SQLite: schema, append-only, hash chain, reads."""

from __future__ import annotations

import sqlite3

import psycopg2
import pytest

from include.audit import AuditEvent, AuditStore, AuditStoreError, AuditTarget


@pytest.fixture
def sqlite_store(tmp_path) -> AuditStore:
    store = AuditStore(AuditTarget.from_uri(f"sqlite:///{tmp_path}/audit.db"))
    store.migrate()
    return store


@pytest.fixture(params=["postgres", "sqlite"])
def store(request, tmp_path) -> AuditStore:
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_store")
    return request.getfixturevalue("postgres_audit_store")


def _event(kind: str = "snapshot", stream: str = "gprd", run_id: str = "manual__1", **payload) -> AuditEvent:
    return AuditEvent(
        stream=stream,
        dag_id=f"pdm_{stream}",
        run_id=run_id,
        kind=kind,
        payload=payload,
        run_after="2026-11-25T10:00:00+00:00",
    )


def test_migrate_is_idempotent(store):
    from include.audit.schema import POSTGRES_STEPS, SQLITE_STEPS

    assert len(POSTGRES_STEPS) == len(SQLITE_STEPS)
    assert store.migrate() == len(POSTGRES_STEPS)  # one version per step, on both dialects
    assert store.migrate() == len(POSTGRES_STEPS)


def test_record_and_read_back_in_order(store):
    store.record(_event("run_started", actor="schedule"))
    store.record(_event("snapshot", migrations=[{"version": "20261120000000", "class": "background"}]))
    store.record(_event("snapshot", stream="gstg"))
    events = store.events(dag_id="pdm_gprd", run_id="manual__1")
    assert [e.kind for e in events] == ["run_started", "snapshot"]
    assert events[1].payload["migrations"][0]["class"] == "background"
    assert events[1].prev_hash == events[0].row_hash


def test_pipeline_for_decision(store):
    assert store.pipeline_for_decision("d-1") is None
    store.record(
        AuditEvent(
            stream="gprd",
            dag_id="pdm_gprd",
            run_id="r",
            kind="pipeline_created",
            decision_id="d-1",
            payload={"pipeline_id": 42},
        )
    )
    assert store.pipeline_for_decision("d-1") == {"pipeline_id": 42}


def test_verify_reports_intact_chain(store):
    for i in range(3):
        store.record(_event(n=i))
    report = store.verify()
    assert report.ok and report.rows_checked == 3


def test_postgres_refuses_update_and_delete(postgres_audit_store, postgres_database):
    postgres_audit_store.record(_event())
    conn = psycopg2.connect(postgres_database)
    try:
        for statement in (
            "UPDATE pdm_audit_event SET kind = 'x'",
            "DELETE FROM pdm_audit_event",
            "TRUNCATE pdm_audit_event",
        ):
            with pytest.raises(psycopg2.Error, match="append-only"):
                with conn.cursor() as cur:
                    cur.execute(statement)
            conn.rollback()
    finally:
        conn.close()
    assert len(postgres_audit_store.events()) == 1


def test_sqlite_refuses_update_and_delete(sqlite_store, tmp_path):
    sqlite_store.record(_event())
    conn = sqlite3.connect(tmp_path / "audit.db")
    for statement in ("UPDATE pdm_audit_event SET kind = 'x'", "DELETE FROM pdm_audit_event"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement)
    conn.close()


def test_verify_finds_tampered_row(postgres_audit_store, postgres_database):
    for i in range(3):
        postgres_audit_store.record(_event(n=i))
    conn = psycopg2.connect(postgres_database)
    conn.autocommit = True
    with conn.cursor() as cur:  # an attacker with owner rights disables the guard and edits a row
        cur.execute("ALTER TABLE pdm_audit_event DISABLE TRIGGER pdm_audit_event_append_only")
        cur.execute("UPDATE pdm_audit_event SET payload = '{\"n\":7}' WHERE id = 2")
    conn.close()
    report = postgres_audit_store.verify()
    assert not report.ok
    assert report.first_broken_id == 2


def test_unreachable_store_raises_named_error():
    store = AuditStore(AuditTarget.postgres(host="127.0.0.1", port=1, dbname="nope", connect_timeout=1))
    with pytest.raises(AuditStoreError, match=r"postgres://127.0.0.1:1/nope unreachable"):
        store.record(_event())


def test_cli_migrate_and_verify(postgres_database):
    import subprocess
    import sys

    from include.audit.schema import POSTGRES_STEPS

    for command, expected in (("migrate", f"version {len(POSTGRES_STEPS)}"), ("verify", "chain intact")):
        result = subprocess.run(
            [sys.executable, "-m", "include.audit", "--uri", postgres_database, command],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout


def test_postgres_writer_role_may_insert_but_not_update(postgres_audit_store, postgres_database):
    import uuid

    role = f"pdm_writer_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(postgres_database)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        postgres_audit_store.grant_writer(role)
        writer = AuditStore(AuditTarget.from_uri(postgres_database.replace("postgres@", f"{role}@")))
        writer.record(_event())
        conn = psycopg2.connect(postgres_database.replace("postgres@", f"{role}@"))
        with pytest.raises(psycopg2.Error, match="permission denied"), conn.cursor() as cur:
            cur.execute("UPDATE pdm_audit_event SET kind = 'x'")
        conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f'REASSIGN OWNED BY "{role}" TO postgres; DROP OWNED BY "{role}"; DROP ROLE "{role}"')
        admin.close()
