"""Audit trail of PDM decisions: append-only, hash-chained, PostgreSQL or SQLite (product.md §8)."""

from include.audit.store import (
    AuditEvent,
    AuditStore,
    AuditStoreError,
    AuditTarget,
    ChainReport,
    StoredEvent,
)

__all__ = ["AuditEvent", "AuditStore", "AuditStoreError", "AuditTarget", "ChainReport", "StoredEvent"]
