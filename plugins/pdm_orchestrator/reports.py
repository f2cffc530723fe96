"""Writes the weekly audit report (HTML) from the audit store; verifies the hash chain first."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path


def write_weekly_report(run_after: datetime, directory: str, audit_conn_id: str = "pdm_audit") -> str:
    """The report of the 7 days before `run_after`, written to `directory`; returns the file path."""
    from include.audit.report import build_report
    from pdm_orchestrator.hooks.audit import AuditHook

    store = AuditHook(audit_conn_id).get_conn()
    chain = store.verify()
    if not chain.ok:
        raise RuntimeError(f"audit hash chain broken: {chain.message}")
    since = (run_after - timedelta(days=7)).isoformat()
    report = build_report(store.events(since=since))
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"pdm-audit-{run_after:%Y-%m-%d}.html"
    path.write_text(report.to_html(), encoding="utf-8")
    return str(path)
