"""Issue 14, hole 6: the audit log is append-only in fact, not only on paper (real PostgreSQL and SQLite)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid

import psycopg2
import pytest

from include.audit import AuditEvent, AuditStore, AuditStoreError, AuditTarget


def _event(kind: str = "decision", stream: str = "gprd", **payload) -> AuditEvent:
    return AuditEvent(stream=stream, dag_id=f"pdm_{stream}", run_id="manual__1", kind=kind, payload=payload)


@pytest.fixture
def writer(postgres_database):
    """A least-privilege writer role, granted by the owner after `migrate`; yields (store, raw connection)."""
    owner = AuditStore(AuditTarget.from_uri(postgres_database))
    owner.migrate()
    role = f"pdm_writer_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(postgres_database)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN')
        cur.execute(f'REVOKE CREATE ON SCHEMA public FROM PUBLIC, "{role}"')
    owner.grant_writer(role)
    uri = postgres_database.replace("postgres@", f"{role}@")
    conn = psycopg2.connect(uri)
    conn.autocommit = True
    try:
        yield AuditStore(AuditTarget.from_uri(uri)), conn
    finally:
        conn.close()
        with admin.cursor() as cur:
            cur.execute(f'REASSIGN OWNED BY "{role}" TO postgres; DROP OWNED BY "{role}"; DROP ROLE "{role}"')
        admin.close()


def test_the_writer_can_insert_and_select_only(writer):
    """Fails before the fix: the shipped role owned the tables (it could drop the triggers) and the
    least-privilege role failed every write, because each write ran migrate()."""
    store, conn = writer
    store.require_schema()
    stored = store.record(_event())  # a write as the writer: no schema change attempted
    assert store.events()[0].id == stored.id
    forbidden = [
        "UPDATE pdm_audit_event SET kind = 'x'",
        "DELETE FROM pdm_audit_event",
        "TRUNCATE pdm_audit_event",
        "ALTER TABLE pdm_audit_event DISABLE TRIGGER pdm_audit_event_append_only",
        "DROP TRIGGER pdm_audit_event_append_only ON pdm_audit_event",
        "DROP TABLE pdm_audit_event",
        "CREATE TABLE pdm_sneaky (id int)",
        "INSERT INTO pdm_audit_schema_version VALUES (99, 'now')",
        "UPDATE pdm_traffic_profile SET payload = '{}'",
    ]
    for statement in forbidden:
        with pytest.raises(psycopg2.Error, match="permission denied|must be owner"), conn.cursor() as cur:
            cur.execute(statement)
    from datetime import timedelta

    from include.audit.lease import acquire_lease, release_lease

    assert acquire_lease(store, "gprd", "d1", timedelta(minutes=5)).granted  # the lease is writable state
    assert release_lease(store, "gprd", "d1")


def test_writes_never_migrate_and_say_how_to(postgres_database):
    store = AuditStore(AuditTarget.from_uri(postgres_database))
    with pytest.raises(AuditStoreError, match="schema at version 0.*python -m include.audit migrate"):
        store.require_schema()


def test_sqlite_insert_or_replace_is_refused(tmp_path):
    """Fails before the fix: REPLACE deleted the old row without firing the delete trigger."""
    path = tmp_path / "audit.db"
    store = AuditStore(AuditTarget.sqlite(str(path)))
    store.migrate()
    first = store.record(_event(verdict="go"))
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="REPLACE of an existing row refused"):
        conn.execute(
            "INSERT OR REPLACE INTO pdm_audit_event (id, stream, dag_id, run_id, kind, recorded_at, payload, "
            "prev_hash, row_hash) SELECT id, stream, dag_id, run_id, kind, recorded_at, '{}', prev_hash, "
            "row_hash FROM pdm_audit_event WHERE id = ?",
            (first.id,),
        )
    conn.close()
    assert store.events()[0].payload == {"verdict": "go"}


def _rewrite_as_owner(postgres_database: str, new_rows: list[tuple]) -> None:
    """What an owner (or anyone able to drop the trigger) can do: wipe the log and write a new, consistent
    chain (valid hashes, no key)."""
    admin = psycopg2.connect(postgres_database)
    with admin.cursor() as cur:
        cur.execute("ALTER TABLE pdm_audit_event DISABLE TRIGGER USER")
        cur.execute("DELETE FROM pdm_audit_event")
        cur.execute("ALTER TABLE pdm_audit_event ENABLE TRIGGER USER")
    admin.commit()
    admin.close()
    forger = AuditStore(AuditTarget.from_uri(postgres_database))
    for event in new_rows:
        forger.record(event)


def test_a_rewritten_and_rechained_log_fails_the_keyed_mac(postgres_database):
    """Fails before the fix: a re-chained log verified as intact."""
    key = b"audit-mac-key-from-a-secret-connection"
    store = AuditStore(AuditTarget.from_uri(postgres_database), mac_key=key)
    store.migrate()
    store.record(_event(go=False))
    store.record(_event(go=True))
    assert store.verify().ok
    _rewrite_as_owner(postgres_database, [_event(go=False)])
    assert AuditStore(AuditTarget.from_uri(postgres_database)).verify().ok  # without the key: looks fine
    report = store.verify(require_mac=True)
    assert not report.ok and "keyed MAC missing" in report.message


def test_deleting_the_newest_rows_is_detected_by_published_heads(postgres_database, tmp_path):
    """Fails before the fix: deleting the newest rows left a valid chain, and verify said intact."""
    store = AuditStore(AuditTarget.from_uri(postgres_database))
    store.migrate()
    store.record(_event("run_started"))
    store.record(_event("pipeline_created"))
    heads_file = tmp_path / "heads.json"
    printed = subprocess.run(
        [sys.executable, "-m", "include.audit", "--uri", postgres_database, "heads"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    heads_file.write_text(printed)
    admin = psycopg2.connect(postgres_database)
    with admin.cursor() as cur:
        cur.execute("ALTER TABLE pdm_audit_event DISABLE TRIGGER USER")
        cur.execute("DELETE FROM pdm_audit_event WHERE kind = 'pipeline_created'")
        cur.execute("ALTER TABLE pdm_audit_event ENABLE TRIGGER USER")
    admin.commit()
    admin.close()
    assert store.verify().ok  # the chain alone cannot tell
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "include.audit",
            "--uri",
            postgres_database,
            "verify",
            "--heads",
            str(heads_file),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "published head of gprd" in result.stdout, result.stdout
    assert json.loads(printed)["gprd"]["row_hash"]


def test_the_shipped_init_creates_an_owner_and_a_writer():
    from pathlib import Path

    init = (Path(__file__).resolve().parents[2] / "deploy" / "postgres-init.sh").read_text()
    assert "CREATE ROLE pdm_audit_owner" in init and "CREATE ROLE pdm_audit_writer" in init
    assert "OWNER pdm_audit_owner" in init
