"""Audit hook: the audit store reached through the `pdm_audit` Airflow connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

from include.audit import AuditStore, AuditTarget

if TYPE_CHECKING:
    from airflow.models.connection import Connection as StoredConnection
    from airflow.sdk import Connection

MAC_CONN_ID = "pdm_audit_mac"


class AuditHook(BaseHook):
    """Opens the append-only audit store named by an Airflow connection and applies its schema.

    Connection types: `postgres` (host, port, login, password, schema = database; production and tests)
    or `sqlite` (host = path of the database file; the one-command local run). Without the SQLite provider
    Airflow stores the latter as `generic`: extra `{"dialect": "sqlite"}` says what it is.
    Raises :class:`include.audit.AuditStoreError` when the database is unreachable.
    """

    conn_name_attr = "audit_conn_id"
    default_conn_name = "pdm_audit"
    conn_type = "postgres"
    hook_name = "PDM audit store"

    def __init__(self, audit_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.audit_conn_id = audit_conn_id
        self._store: AuditStore | None = None

    def get_conn(self) -> AuditStore:
        """The store, its schema checked (never migrated here: writes run as the least-privilege writer role,
        `python -m include.audit migrate` runs apart as the owner), with the keyed-MAC key when one is set."""
        if self._store is None:
            store = AuditStore(audit_target(self.get_connection(self.audit_conn_id)), mac_key=self._mac_key())
            store.require_schema()
            self._store = store
        return self._store

    def _mac_key(self) -> bytes | None:
        """The audit MAC key: the password of the `pdm_audit_mac` connection (a secrets backend in
        production), kept outside the audit database. None when that connection does not exist."""
        try:
            conn = self.get_connection(MAC_CONN_ID)
        except Exception:  # noqa: BLE001 - no such connection: rows carry no MAC (docs/deployment.md)
            return None
        return conn.password.encode() if conn.password else None


def audit_target(conn: Connection | StoredConnection) -> AuditTarget:
    """The audit database an Airflow connection names (a task's, or the metadata database's for the UI) (SQLite by type or `dialect` extra, else PostgreSQL)."""
    extra = conn.extra_dejson or {}
    if conn.conn_type == "sqlite" or extra.get("dialect") == "sqlite":
        return AuditTarget.sqlite(conn.host or conn.schema or ":memory:")
    return AuditTarget.postgres(
        host=conn.host or "127.0.0.1",
        port=conn.port or 5432,
        user=conn.login or None,
        password=conn.password or None,
        dbname=conn.schema or "postgres",
    )
