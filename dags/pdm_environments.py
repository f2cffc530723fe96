"""One PDM DAG per environment of the policy (pdm_gstg, pdm_gprd): declarations only.

Flow: discover pending → classify → record the snapshot → branch on class → wait for the gates (deferred)
→ decide → trigger the PDM pipeline once and wait for it (deferred) → record the outcome (always).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TriggerRule, task

from include.policy.declaration import load_declaration
from include.policy.durations import format_duration
from include.policy.names import environment_names
from pdm_orchestrator import outcome_view, policy_guard
from pdm_orchestrator import run_steps as steps
from pdm_orchestrator.operators.approval import TASK_REQUEST_APPROVAL, PdmApprovalOperator
from pdm_orchestrator.operators.pipeline import TriggerPdmPipelineOperator
from pdm_orchestrator.params import pdm_params, validate_run_params
from pdm_orchestrator.sensors.gates import GATE_TASKS, GateSensor
from pdm_orchestrator.timetables.policy_windows import PolicyWindowTimetable

POLICY_PATH = os.environ.get(
    "PDM_POLICY_FILE", str(Path(__file__).resolve().parent.parent / "config" / "policy.yaml")
)
# What declaring needs of the policy (validated in full on a change, then read from a small file by the
# policy's content: include/policy/declaration.py); every run's tasks load and check the whole policy again.
try:
    POLICY = load_declaration(POLICY_PATH)
    POLICY_ERROR = None
except Exception as exc:  # noqa: BLE001 - a bad policy keeps the DAGs listed, failing closed (below)
    POLICY, POLICY_ERROR = None, str(exc)

DOC = """
### Post-deploy migrations on `{env}`

Runs GitLab's post-deploy migration (PDM) pipeline on **{env}** when the pending migrations' class allows it:

1. **discover_pending** — migration files in `db/post_migrate/` and `ee/db/post_migrate/` deployed to `{env}` but
   not yet run (since the last successful `{db_env}` deployment).
2. **classify_pending** — each migration's class (noop, background, data, schema_heavy, cleanup, unknown).
3. **record_snapshot** — the audit store gets what is pending, before any decision.
4. **choose_path** — nothing pending, a human must decide (unknown), waiting on {after}, or the gates.
   **request_approval** — a run that needs a human asks for one in Required Actions (approve → the gates;
   reject or no answer in time → `rejected` / `approval_expired`); any other run passes straight through.
5. **gate_window, gate_low_traffic, gate_no_deploy_lock, gate_rollback_safe** — one deferrable sensor per
   gate: the one still deferred is the one holding the run (no worker slot held); an overridden gate says so.
6. **decide** — re-checks every gate at one instant; triggers only if all are open or overridden with a
   reason; dry runs never trigger.
7. **trigger_pipeline** — creates the pipeline exactly once per decision and waits for it (deferred);
   once created, the policy's notifiers (Slack, Grafana) get a start notice.
8. **record_outcome** — always runs; the audit store gets the outcome, also when something failed. A run
   whose window closed before it could trigger (a backfilled or late run) records `window_missed`. Runs
   that had a pipeline send the end notice; a failed notice is audited (`notification_failed`), never fatal.
9. **show_outcome** — runs exactly one `outcome_*` task (the grid's green cell names the run's outcome:
   pipeline succeeded/failed, waiting for window, window missed, nothing pending, needs a human, environment
   busy, …) and, with the `pdm_airflow_api` connection, writes the details to the run's note.

Policy: `{policy}`.
"""

APPROVAL_DOC = """Asks a person (Browse → Required Actions) when a migration is unknown, its class needs approval, or
annotations conflict: Approve goes on to the gates, Reject or no answer within the policy's approval.timeout
({timeout}) ends the run (`rejected`, `approval_expired`). Runs that need nobody pass straight through."""

GATE_DOCS = {
    "window": "Waits for an allowed window of the run's class (calendar windows minus change locks, or the "
    "learned low-traffic hours), sleeping until it opens.",
    "traffic": "Waits for traffic below the class's threshold, sustained (Prometheus).",
    "deploy_lock": "Waits until no deployment, PDM pipeline or explicit lock holds the environment.",
    "rollback_safety": "Waits until the deployed package has baked long enough and is healthy to roll past.",
}


def build(environment: str) -> DAG:
    env = POLICY.environment(environment)
    with DAG(
        dag_id=f"pdm_{environment}",
        description=f"Run post-deploy migrations on {environment} when their class, traffic, deployments and rollback allow",
        doc_md=DOC.format(
            env=environment, db_env=env.db_environment, after=env.after or "-", policy=POLICY_PATH
        ),
        # The declared timetable does not name its next run: see PolicyWindowTimetable's describe_next_run.
        schedule=(
            PolicyWindowTimetable(
                POLICY_PATH, environment, describe_next_run=False, class_windows=env.class_windows
            )
            if env.scheduled
            else None
        ),
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["pdm", "post-deploy-migrations", environment],
        params=pdm_params(environment, selected_versions=POLICY.execution_mode == "selected_versions"),
        default_args={
            "owner": "release-managers",
            "retries": 2,
            "retry_delay": timedelta(seconds=float(os.environ.get("PDM_RETRY_DELAY_SECONDS", "30"))),
            "on_failure_callback": steps.record_failure,
            "on_retry_callback": steps.record_failure,
        },
    ) as dag:

        @task(task_id=steps.TASK_DISCOVER, execution_timeout=timedelta(minutes=10))
        def discover_pending(**context):
            validate_run_params(dict(context["params"]), POLICY.execution_mode)
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
            chosen = steps.choose_path(snapshot, POLICY_PATH, context)
            # The approval task asks a human only when the path is needs_human; else it passes on to the gates.
            return TASK_REQUEST_APPROVAL if chosen == steps.TASK_WAIT_FOR_GATES else chosen

        @task.branch(task_id=steps.TASK_DECIDE)
        def decide(**context):
            from pdm_orchestrator.sensors.gates import recheck_all

            snapshot = context["ti"].xcom_pull(task_ids=steps.TASK_CLASSIFY)
            # The sensors answered one by one; the decision needs every gate open at one instant.
            gates = recheck_all(
                environment, POLICY_PATH, snapshot["run_class"], context, steps.batch_classes(snapshot)
            )
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
        sensors = [
            GateSensor(
                task_id=task_id,
                gate=gate,
                environment=environment,
                policy_path=POLICY_PATH,
                run_class="{{ ti.xcom_pull(task_ids='classify_pending')['run_class'] }}",
                snapshot_task_id=steps.TASK_CLASSIFY,
                timeout=env.max_wait.total_seconds(),
                poke_interval=env.poll_interval.total_seconds(),
                retries=1,
                doc_md=GATE_DOCS[gate],
            )
            for gate, task_id in GATE_TASKS.items()
        ]
        verdict = decide()
        sensors >> verdict
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
        approval = PdmApprovalOperator(
            task_id=TASK_REQUEST_APPROVAL,
            environment=environment,
            policy_path=POLICY_PATH,
            gate_task_ids=list(GATE_TASKS.values()),
            outcome_task_id=steps.TASK_RECORD_OUTCOME,
            timeout=POLICY.approval_timeout,
            retries=0,
            doc_md=APPROVAL_DOC.format(timeout=format_duration(POLICY.approval_timeout)),
        )
        path >> [approval, outcome]
        approval >> [*sensors, outcome]
        verdict >> [trigger, outcome]
        trigger >> outcome

        @task.branch(task_id=outcome_view.TASK_SHOW_OUTCOME, trigger_rule=TriggerRule.ALL_DONE, retries=0)
        def show_outcome(**context):
            return outcome_view.show_outcome(context)

        shown = show_outcome()
        outcome >> shown
        for task_id in dict.fromkeys(outcome_view.OUTCOME_TASKS.values()):
            doc = outcome_view.OUTCOME_DOCS[task_id]
            if task_id in outcome_view.FAILED_OUTCOME_TASKS:

                @task(task_id=task_id, doc_md=doc, retries=0, on_failure_callback=None)
                def failed_outcome(**context):
                    outcome_view.fail_with_outcome(context)

                shown >> failed_outcome()
            else:
                shown >> EmptyOperator(task_id=task_id, doc_md=doc)
    return dag


INVALID_DOC = """
### Post-deploy migrations on `{env}`: the policy is invalid

**Every run fails at once, without evaluating or triggering anything, until the policy is fixed.**
The DAG recovers at the dag-processor's next parse after the fix. Check a change before merging it with
`python -m include.policy check {policy}`.

Problems in `{policy}`:

```
{error}
```
"""


def build_invalid(environment: str, error: str) -> DAG:
    """The environment's DAG while the policy is invalid: listed, explained, and failing closed."""
    first = error.splitlines()[0] if error else "unknown error"
    with DAG(
        dag_id=f"pdm_{environment}",
        description=f"POLICY INVALID, every run fails until fixed: {first}"[:500],
        doc_md=INVALID_DOC.format(env=environment, policy=POLICY_PATH, error=error),
        schedule=None,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["pdm", "post-deploy-migrations", environment, "policy-invalid"],
        params=pdm_params(environment),
        default_args={"owner": "release-managers", "retries": 0},
    ) as dag:

        @task(task_id=policy_guard.TASK_POLICY_INVALID, on_failure_callback=steps.record_failure)
        def policy_invalid(**context):
            policy_guard.fail_closed(environment, POLICY_PATH, error, context)

        policy_invalid()
    return dag


if POLICY is not None:
    for _declared in POLICY.environments:
        globals()[f"pdm_{_declared.name}"] = build(_declared.name)
else:
    for _environment in environment_names(POLICY_PATH):
        globals()[f"pdm_{_environment}"] = build_invalid(_environment, POLICY_ERROR or "")
