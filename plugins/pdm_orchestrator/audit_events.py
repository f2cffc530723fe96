"""Writes audit events for the running task: fills in the run's identity from the Airflow context."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from include.audit import AuditEvent, StoredEvent

log = logging.getLogger(__name__)


def run_identity(context: Mapping[str, Any]) -> dict[str, Any]:
    """dag_id, run_id, run_after and who started the run (schedule, backfill, or the manual user)."""
    dag_run = context["dag_run"]
    run_type = str(getattr(dag_run, "run_type", "") or "")
    run_type = run_type.split(".")[-1].lower()
    user = getattr(dag_run, "triggering_user_name", None)
    actor = f"manual:{user}" if run_type == "manual" and user else run_type or "unknown"
    run_after = getattr(dag_run, "run_after", None)
    return {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "run_after": run_after.isoformat() if run_after else None,
        "actor": actor,
    }


def record(
    context: Mapping[str, Any],
    environment: str,
    kind: str,
    payload: dict[str, Any],
    *,
    audit_conn_id: str = "pdm_audit",
    decision_id: str | None = None,
) -> StoredEvent:
    """Append one event for this run; raises AuditStoreError if the store cannot take it."""
    from pdm_orchestrator.hooks.audit import AuditHook

    identity = run_identity(context)
    event = AuditEvent(
        stream=environment,
        dag_id=identity["dag_id"],
        run_id=identity["run_id"],
        run_after=identity["run_after"],
        actor=identity["actor"],
        kind=kind,
        decision_id=decision_id,
        payload=payload,
    )
    stored = AuditHook(audit_conn_id).get_conn().record(event)
    # The task log lives outside the audit database: a published chain head for `verify --heads`.
    log.info("audit row %s #%d %s %s", stored.stream, stored.id, stored.kind, stored.row_hash)
    return stored


# Event kinds written by the notifiers (the others are named where they are recorded).
NOTIFICATION_FAILED = "notification_failed"  # a Slack or Grafana notice failed; the run went on
