"""One PDM DAG per environment of the policy (pdm_gstg, pdm_gprd): declarations only.

Flow: discover pending → classify → record the snapshot → branch on class → wait for the gates (deferred)
→ decide → trigger the PDM pipeline once and wait for it (deferred) → record the outcome (always).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, TriggerRule, task

from include.policy import load_policy
from pdm_orchestrator import run_steps as steps
from pdm_orchestrator.operators.gates import WaitForGatesOperator
from pdm_orchestrator.operators.pipeline import TriggerPdmPipelineOperator
from pdm_orchestrator.params import pdm_params
from pdm_orchestrator.timetables.policy_windows import PolicyWindowTimetable

POLICY_PATH = os.environ.get(
    "PDM_POLICY_FILE", str(Path(__file__).resolve().parent.parent / "config" / "policy.yaml")
)
POLICY = load_policy(POLICY_PATH)  # a bad policy is an import error naming the file and key

DOC = """
### Post-deploy migrations on `{env}`

Runs GitLab's post-deploy migration (PDM) pipeline on **{env}** when the pending migrations' class allows it:

1. **discover_pending** — migration files in `db/post_migrate/` and `ee/db/post_migrate/` deployed to `{env}` but
   not yet run (since the last successful `{db_env}` deployment).
2. **classify_pending** — each migration's class (noop, background, data, schema_heavy, cleanup, unknown).
3. **record_snapshot** — the audit store gets what is pending, before any decision.
4. **choose_path** — nothing pending, a human must decide (unknown), waiting on {after}, or the gates.
5. **wait_for_gates** — window, low traffic, no deploy lock, rollback safety; deferred, no worker slot held.
6. **decide** — trigger only if every gate is open or overridden with a reason; dry runs never trigger.
7. **trigger_pipeline** — creates the pipeline exactly once per decision and waits for it (deferred);
   once created, the policy's notifiers (Slack, Grafana) get a start notice.
8. **record_outcome** — always runs; the audit store gets the outcome, also when something failed. A run
   whose window closed before it could trigger (a backfilled or late run) records `window_missed`. Runs
   that had a pipeline send the end notice; a failed notice is audited (`notification_failed`), never fatal.

Policy: `{policy}`.
"""


def build(environment: str) -> DAG:
    env = POLICY.environments[environment]
    with DAG(
        dag_id=f"pdm_{environment}",
        description=f"Run post-deploy migrations on {environment} when their class, traffic, deployments and rollback allow",
        doc_md=DOC.format(
            env=environment, db_env=env.db_environment, after=env.after or "-", policy=POLICY_PATH
        ),
        schedule=PolicyWindowTimetable(POLICY_PATH, environment) if env.schedule else None,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["pdm", "post-deploy-migrations", environment],
        params=pdm_params(environment),
        default_args={
            "owner": "release-managers",
            "retries": 2,
            "retry_delay": timedelta(seconds=float(os.environ.get("PDM_RETRY_DELAY_SECONDS", "30"))),
            "on_failure_callback": steps.record_failure,
            "on_retry_callback": steps.record_failure,
        },
    ) as dag:

        @task(task_id=steps.TASK_DISCOVER, execution_timeout=timedelta(minutes=10))
        def discover_pending():
            return steps.discover_pending(environment, POLICY_PATH)

        @task(task_id=steps.TASK_CLASSIFY, execution_timeout=timedelta(minutes=5))
        def classify_pending(discovered, **context):
            snapshot = steps.classify_pending(discovered, POLICY_PATH)
            return steps.select_for_run(snapshot, POLICY_PATH, dict(context["params"]), datetime.now(UTC))

        @task(task_id=steps.TASK_RECORD_SNAPSHOT, retries=3)
        def record_snapshot(snapshot, **context):
            steps.record_snapshot(snapshot, context)

        @task.branch(task_id=steps.TASK_CHOOSE_PATH)
        def choose_path(snapshot, **context):
            return steps.choose_path(snapshot, POLICY_PATH, context)

        @task.branch(task_id=steps.TASK_DECIDE)
        def decide(gates, **context):
            return steps.decide(gates, environment, context)

        @task(
            task_id=steps.TASK_RECORD_OUTCOME,
            trigger_rule=TriggerRule.ALL_DONE,
            retries=5,
            on_failure_callback=None,
        )
        def record_outcome(**context):
            return steps.record_outcome(environment, context, POLICY_PATH)

        snapshot = classify_pending(discover_pending())
        recorded = record_snapshot(snapshot)
        path = choose_path(snapshot)
        recorded >> path
        wait = WaitForGatesOperator(
            task_id=steps.TASK_WAIT_FOR_GATES,
            environment=environment,
            policy_path=POLICY_PATH,
            run_class="{{ ti.xcom_pull(task_ids='classify_pending')['run_class'] }}",
            retries=1,
        )
        verdict = decide(wait.output)
        trigger = TriggerPdmPipelineOperator(
            task_id=steps.TASK_TRIGGER,
            environment=environment,
            policy_path=POLICY_PATH,
            snapshot_task_id=steps.TASK_CLASSIFY,
            poll_seconds=float(os.environ.get("PDM_PIPELINE_POLL_SECONDS", "30")),
            pipeline_timeout=timedelta(
                seconds=float(os.environ.get("PDM_PIPELINE_TIMEOUT_SECONDS", "28800"))
            ),
            manual_grace=timedelta(
                seconds=float(os.environ.get("PDM_PIPELINE_MANUAL_GRACE_SECONDS", "3600"))
            ),
            inflight_lookup_seconds=float(os.environ.get("PDM_INFLIGHT_LOOKUP_SECONDS", "60")),
            retries=3,
        )
        outcome = record_outcome()
        path >> [wait, outcome]
        verdict >> [trigger, outcome]
        trigger >> outcome
    return dag


for _environment in POLICY.environments:
    globals()[f"pdm_{_environment}"] = build(_environment)
