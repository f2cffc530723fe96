"""Versioned schema of the audit store, one list of steps per SQL dialect, applied idempotently."""

from __future__ import annotations

_EVENT_TABLE = """
    CREATE TABLE IF NOT EXISTS pdm_audit_event (
        id {id},
        stream TEXT NOT NULL,
        dag_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        run_after TEXT,
        kind TEXT NOT NULL,
        decision_id TEXT,
        actor TEXT,
        recorded_at TEXT NOT NULL,
        payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        row_hash TEXT NOT NULL
    )
"""
_INDEXES = [
    "CREATE INDEX IF NOT EXISTS pdm_audit_event_run ON pdm_audit_event (dag_id, run_id)",
    "CREATE INDEX IF NOT EXISTS pdm_audit_event_decision ON pdm_audit_event (decision_id)",
    "CREATE INDEX IF NOT EXISTS pdm_audit_event_stream ON pdm_audit_event (stream, id)",
]

# Each step runs once, in order; the version table records the last applied step. Never edit a released
# step: append a new one.
POSTGRES_STEPS: list[list[str]] = [
    [
        _EVENT_TABLE.format(id="BIGSERIAL PRIMARY KEY"),
        *_INDEXES,
        """
        CREATE OR REPLACE FUNCTION pdm_audit_reject_change() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'pdm audit rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME;
        END;
        $$ LANGUAGE plpgsql
        """,
        "DROP TRIGGER IF EXISTS pdm_audit_event_append_only ON pdm_audit_event",
        """
        CREATE TRIGGER pdm_audit_event_append_only
            BEFORE UPDATE OR DELETE ON pdm_audit_event
            FOR EACH ROW EXECUTE FUNCTION pdm_audit_reject_change()
        """,
        "DROP TRIGGER IF EXISTS pdm_audit_event_no_truncate ON pdm_audit_event",
        """
        CREATE TRIGGER pdm_audit_event_no_truncate
            BEFORE TRUNCATE ON pdm_audit_event
            FOR EACH STATEMENT EXECUTE FUNCTION pdm_audit_reject_change()
        """,
    ],
]

SQLITE_STEPS: list[list[str]] = [
    [
        _EVENT_TABLE.format(id="INTEGER PRIMARY KEY AUTOINCREMENT"),
        *_INDEXES,
        """
        CREATE TRIGGER IF NOT EXISTS pdm_audit_event_no_update BEFORE UPDATE ON pdm_audit_event
        BEGIN SELECT RAISE(ABORT, 'pdm audit rows are append-only: UPDATE refused'); END
        """,
        """
        CREATE TRIGGER IF NOT EXISTS pdm_audit_event_no_delete BEFORE DELETE ON pdm_audit_event
        BEGIN SELECT RAISE(ABORT, 'pdm audit rows are append-only: DELETE refused'); END
        """,
    ],
]

# Step 2: the learned traffic profiles (pdm_traffic_profile DAG). Append-only and versioned by id: the
# latest row of an environment is its current profile; older rows stay as the history of what was learned.
_PROFILE_TABLE = """
    CREATE TABLE IF NOT EXISTS pdm_traffic_profile (
        id {id},
        environment TEXT NOT NULL,
        computed_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        payload TEXT NOT NULL
    )
"""
_PROFILE_INDEX = (
    "CREATE INDEX IF NOT EXISTS pdm_traffic_profile_env ON pdm_traffic_profile (environment, computed_at)"
)
POSTGRES_STEPS.append(
    [
        _PROFILE_TABLE.format(id="BIGSERIAL PRIMARY KEY"),
        _PROFILE_INDEX,
        "DROP TRIGGER IF EXISTS pdm_traffic_profile_append_only ON pdm_traffic_profile",
        """
        CREATE TRIGGER pdm_traffic_profile_append_only
            BEFORE UPDATE OR DELETE ON pdm_traffic_profile
            FOR EACH ROW EXECUTE FUNCTION pdm_audit_reject_change()
        """,
    ]
)
SQLITE_STEPS.append(
    [
        _PROFILE_TABLE.format(id="INTEGER PRIMARY KEY AUTOINCREMENT"),
        _PROFILE_INDEX,
        """
        CREATE TRIGGER IF NOT EXISTS pdm_traffic_profile_no_update BEFORE UPDATE ON pdm_traffic_profile
        BEGIN SELECT RAISE(ABORT, 'pdm traffic profiles are append-only: UPDATE refused'); END
        """,
        """
        CREATE TRIGGER IF NOT EXISTS pdm_traffic_profile_no_delete BEFORE DELETE ON pdm_traffic_profile
        BEGIN SELECT RAISE(ABORT, 'pdm traffic profiles are append-only: DELETE refused'); END
        """,
    ]
)

VERSION_TABLE = "pdm_audit_schema_version"

# Step 3: one holder per environment (issue 14, hole 2). Not part of the audit log: a lease is mutable state
# (taken, renewed, released), so the writer role may change its rows; every change is also an audit event.
_LEASE_TABLE = """
    CREATE TABLE IF NOT EXISTS pdm_environment_lease (
        environment TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        run_id TEXT,
        acquired_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )
"""
POSTGRES_STEPS.append([_LEASE_TABLE])
SQLITE_STEPS.append([_LEASE_TABLE])

LEASE_TABLE = "pdm_environment_lease"

# Step 4 (issue 14, hole 6): a keyed MAC per row (HMAC-SHA256 of the row hash under a key kept outside the
# database: a writer or owner of the database alone cannot rewrite and re-chain the log unseen), and, on
# SQLite, `INSERT OR REPLACE` refused: its REPLACE deletes the old row without firing the delete trigger.
POSTGRES_STEPS.append(["ALTER TABLE pdm_audit_event ADD COLUMN IF NOT EXISTS row_mac TEXT"])
SQLITE_STEPS.append(
    [
        "ALTER TABLE pdm_audit_event ADD COLUMN row_mac TEXT",
        """
        CREATE TRIGGER IF NOT EXISTS pdm_audit_event_no_replace BEFORE INSERT ON pdm_audit_event
        WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM pdm_audit_event WHERE id = NEW.id)
        BEGIN SELECT RAISE(ABORT, 'pdm audit rows are append-only: REPLACE of an existing row refused'); END
        """,
        """
        CREATE TRIGGER IF NOT EXISTS pdm_traffic_profile_no_replace BEFORE INSERT ON pdm_traffic_profile
        WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM pdm_traffic_profile WHERE id = NEW.id)
        BEGIN SELECT RAISE(ABORT, 'pdm traffic profiles are append-only: REPLACE refused'); END
        """,
    ]
)

# What the least-privilege writer role (the Airflow connection) may do; the owner role migrates.
WRITER_GRANTS = (
    "GRANT SELECT, INSERT ON pdm_audit_event TO {role}",
    "GRANT SELECT ON pdm_audit_schema_version TO {role}",
    "GRANT USAGE ON SEQUENCE pdm_audit_event_id_seq TO {role}",
    "GRANT SELECT, INSERT ON pdm_traffic_profile TO {role}",
    "GRANT USAGE ON SEQUENCE pdm_traffic_profile_id_seq TO {role}",
    # The lease is mutable state, not the log: taken, renewed and released by the runs.
    "GRANT SELECT, INSERT, UPDATE, DELETE ON pdm_environment_lease TO {role}",
)
