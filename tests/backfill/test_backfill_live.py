"""`airflow backfill create` over a missed weekend against `airflow standalone` (scheduler, dag-processor,
triggerer, api-server on SQLite/LocalExecutor), the sandbox GitLab and a PostgreSQL audit store.

The scheduler "was down" over the last full weekend: the backfill creates one run per window opening; each
run re-reads what is pending and checks the gates now, finds its window closed with the next one beyond
`gates.max_wait`, triggers nothing and records `window_missed` naming the window and when it closed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from include.audit import AuditStore, AuditTarget
from include.sandbox.gitlab_server import SandboxGitLab
from tests.backfill.support import last_full_weekend, weekend_policy, weekend_slot_hour
from tests.support.policies import write_policy
from tests.support.processes import free_port
from tests.support.scenarios import BACKGROUND, RELEASE_TOOLS, world
from tests.support.standalone import Standalone

pytestmark = [pytest.mark.slow, pytest.mark.integration]
TOKEN = "backfill-live-token-0a1b2c3d4e"
BACKGROUND_FILE = "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb"


def test_backfill_over_a_missed_weekend_records_window_missed_per_opening(tmp_path, postgres_database):
    now = datetime.now(UTC)
    policy_path = write_policy(tmp_path / "policy.yaml", weekend_policy(now))
    saturday, monday = last_full_weekend(now)
    hour = weekend_slot_hour(now)
    openings = [saturday + timedelta(hours=hour), saturday + timedelta(days=1, hours=hour)]

    sandbox = SandboxGitLab(world({BACKGROUND_FILE: BACKGROUND}), token=TOKEN).start()
    audit = AuditStore(AuditTarget.from_uri(postgres_database))
    audit.migrate()
    airflow = Standalone(
        tmp_path,
        {
            "PDM_POLICY_FILE": str(policy_path),
            "PDM_RETRY_DELAY_SECONDS": "2",
            "AIRFLOW_CONN_GITLAB_DEFAULT": json.dumps(
                {"conn_type": "http", "host": sandbox.url, "password": TOKEN}
            ),
            # No Prometheus: the traffic gate is closed too, but the window alone decides here.
            "AIRFLOW_CONN_PROMETHEUS_DEFAULT": f"http://127.0.0.1:{free_port()}",
            "AIRFLOW_CONN_PDM_AUDIT": postgres_database,
        },
    )
    try:
        airflow.start()
        airflow.wait_for_dag("pdm_gprd")
        created = airflow.cli(
            "backfill",
            "create",
            "--dag-id",
            "pdm_gprd",
            "--from-date",
            saturday.isoformat(),
            "--to-date",
            monday.isoformat(),
            "--max-active-runs",
            "1",
            "--reprocess-behavior",
            "none",
        )
        assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-3000:]

        def finished_backfill_runs():
            runs = airflow.api("/dags/pdm_gprd/dagRuns?run_type=backfill&order_by=logical_date")["dag_runs"]
            done = runs and all(r["state"] in ("success", "failed") for r in runs)
            return runs if done else None

        runs = airflow.wait(finished_backfill_runs, 150, "the backfill runs to finish")
        assert [datetime.fromisoformat(r["logical_date"]) for r in runs] == openings
        assert [r["state"] for r in runs] == ["success", "success"]
        for run, opening in zip(runs, openings, strict=True):
            events = audit.events(run_id=run["dag_run_id"])
            kinds = [e.kind for e in events]
            assert kinds[:2] == ["run_started", "snapshot"] and kinds[-1] == "outcome", kinds
            assert {e.actor for e in events} == {"backfill"}
            # Pending re-read now: the package deployed today is in every run's snapshot.
            snapshot = next(e.payload for e in events if e.kind == "snapshot")
            assert [m["class"] for m in snapshot["migrations"]] == ["background"]
            decision = next(e.payload for e in events if e.kind == "decision")
            assert decision["go"] is False
            outcome = events[-1].payload
            assert outcome["outcome"] == "window_missed", outcome
            assert outcome["window"]["window"] == "weekend_slot"
            assert outcome["window"]["opened_at"] == opening.isoformat()
            assert outcome["window"]["closed_at"] == (opening + timedelta(minutes=45)).isoformat()
            assert outcome["window"]["next_opens_at"] > now.isoformat()
        # Heavy work never ran outside its window.
        assert sandbox.created_pipelines(project=RELEASE_TOOLS) == []
    finally:
        airflow.stop()
        sandbox.stop()
