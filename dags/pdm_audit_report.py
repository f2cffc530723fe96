"""Weekly audit report: what ran when, how long each class waited, how often gates blocked (HTML)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

with DAG(
    dag_id="pdm_audit_report",
    description="Weekly HTML report of PDM decisions from the audit store",
    doc_md="""
### Weekly PDM audit report

Reads the append-only audit store (`pdm_audit` connection) and writes an HTML report of the last 7 days
to `$PDM_REPORT_DIR` (default `$AIRFLOW_HOME/reports`): runs per environment and outcome, what ran when,
waiting time per class (median, p95), how often each gate blocked and why, pipeline durations, overrides.
The same report is available on the command line: `python -m include.audit report --since YYYY-MM-DD`.
It also verifies the hash chain and fails if a row was tampered with.
""",
    schedule="0 6 * * 1",
    start_date=datetime(2026, 1, 5),
    catchup=False,
    max_active_runs=1,
    tags=["pdm", "audit"],
    default_args={"owner": "release-managers", "retries": 2, "retry_delay": timedelta(minutes=5)},
) as pdm_audit_report:

    @task(task_id="write_report")
    def write_report(**context) -> str:
        from pdm_orchestrator.reports import write_weekly_report

        directory = os.environ.get("PDM_REPORT_DIR") or os.path.join(
            os.environ.get("AIRFLOW_HOME", "."), "reports"
        )
        return write_weekly_report(context["dag_run"].run_after, directory)

    write_report()
