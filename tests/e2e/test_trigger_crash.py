"""The trigger task's process is SIGKILLed after GitLab created the pipeline and before the audit store heard of
it; Airflow's retry finds that pipeline by its decision id and polls it: exactly one pipeline, one outcome.

Real processes: `airflow standalone` (scheduler + LocalExecutor task processes + triggerer), the sandbox GitLab,
PostgreSQL, Prometheus. To stop the task at that exact point the test holds a lock on the audit table while
the create call is in flight; the task then blocks writing `pipeline_created`, and is killed there.
"""

from __future__ import annotations

import json
import os
import signal

import psutil
import psycopg2
import pytest

from include.audit import AuditStore, AuditTarget
from include.sandbox.gitlab_server import SandboxGitLab
from tests.support.policies import e2e_policy, write_policy
from tests.support.scenarios import BACKGROUND, RELEASE_TOOLS, world
from tests.support.standalone import Standalone

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.e2e]
TOKEN = "crash-test-token-6f5e4d3c2b"
BACKGROUND_FILE = "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb"
CREATE_DELAY = 4.0  # seconds the sandbox holds the create call before creating: time to take the lock


def _waiting_on_lock(database: str) -> list[int]:
    """Backends of the audit database blocked on a lock (the task writing `pipeline_created`)."""
    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
    try:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                (database,),
            )
            return [row[0] for row in cur.fetchall()]
    finally:
        admin.close()


def test_sigkill_after_create_resumes_the_same_pipeline(tmp_path, postgres_database, prometheus_with_traffic):
    prometheus_with_traffic.set_traffic("gprd", 100.0)
    database = postgres_database.rsplit("/", 1)[1]
    policy_path = write_policy(tmp_path / "policy.yaml", e2e_policy(max_wait="60s"))
    sandbox = SandboxGitLab(world({BACKGROUND_FILE: BACKGROUND}, running_seconds=3), token=TOKEN).start()
    sandbox.inject_fault("/pipeline$", "slow", method="POST", count=1, delay_seconds=CREATE_DELAY)
    audit = AuditStore(AuditTarget.from_uri(postgres_database))
    audit.migrate()
    airflow = Standalone(
        tmp_path,
        {
            "PDM_POLICY_FILE": str(policy_path),
            "PDM_PIPELINE_POLL_SECONDS": "1",
            "PDM_RETRY_DELAY_SECONDS": "2",
            "AIRFLOW_CONN_GITLAB_DEFAULT": json.dumps(
                {"conn_type": "http", "host": sandbox.url, "password": TOKEN, "extra": {"timeout": 20}}
            ),
            "AIRFLOW_CONN_PROMETHEUS_DEFAULT": prometheus_with_traffic.url,
            "AIRFLOW_CONN_PDM_AUDIT": postgres_database,
        },
    )
    locker = psycopg2.connect(postgres_database)
    try:
        airflow.start()
        airflow.wait_for_dag("pdm_gprd")
        run_id = airflow.api("/dags/pdm_gprd/dagRuns", {"logical_date": None})["dag_run_id"]
        ti_url = f"/dags/pdm_gprd/dagRuns/{run_id}/taskInstances/trigger_pipeline"

        # 1. The intent is on record and the create call is in flight (the sandbox holds it): lock the table.
        airflow.wait(
            lambda: audit.events(run_id=run_id, kind="pipeline_requested"), 120, "pipeline_requested"
        )
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE pdm_audit_event IN EXCLUSIVE MODE")
        assert sandbox.created_pipelines(project=RELEASE_TOOLS) == [], "the lock came too late"
        # 2. GitLab created the pipeline, the call returned, and the task is stuck recording it.
        airflow.wait(
            lambda: sandbox.created_pipelines(project=RELEASE_TOOLS), 30, "the pipeline to be created"
        )
        blocked = airflow.wait(lambda: _waiting_on_lock(database), 30, "the task to block on the audit write")
        ti = airflow.api(ti_url)
        assert ti["state"] == "running" and ti["try_number"] == 1, ti
        # 3. SIGKILL the task process (a child of the standalone this test started, nothing else).
        victim = psutil.Process(ti["pid"])
        assert airflow.process.pid in {p.pid for p in victim.parents()}, victim.cmdline()
        os.kill(ti["pid"], signal.SIGKILL)
        victim.wait(timeout=10)
        admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
        admin.autocommit = True
        with admin.cursor() as cur:  # the dead task's half-done write must not land after the lock goes
            cur.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (blocked,))
        admin.close()
        locker.rollback()

        # 4. Airflow retries the task; it must find the pipeline by its decision id and poll it.
        state = airflow.wait(
            lambda: (
                (s := airflow.api(f"/dags/pdm_gprd/dagRuns/{run_id}")["state"]) in ("success", "failed") and s
            ),
            180,
            "the run to finish after the retry",
        )
        kinds = [e.kind for e in audit.events(run_id=run_id)]
        assert state == "success", kinds
        (pipeline,) = sandbox.created_pipelines(project=RELEASE_TOOLS)
        assert airflow.api(ti_url)["try_number"] >= 2
        assert kinds.count("pipeline_requested") == 1, kinds
        (created,) = audit.events(run_id=run_id, kind="pipeline_created")
        assert created.payload["id"] == pipeline["id"]
        (outcome,) = audit.events(run_id=run_id, kind="outcome")
        assert outcome.payload["outcome"] == "pipeline_succeeded"
        assert outcome.payload["pipeline"]["id"] == pipeline["id"]
        assert (
            created.decision_id
            and created.decision_id == audit.events(run_id=run_id, kind="pipeline_requested")[0].decision_id
        )
    finally:
        locker.close()
        airflow.stop()
        sandbox.stop()
