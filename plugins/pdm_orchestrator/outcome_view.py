"""The run's outcome, visible without opening a log: one outcome task per kind, and an optional run note.

Airflow's grid shows every task of every run as a cell. After `record_outcome`, the `show_outcome` branch runs
exactly one of the `outcome_*` tasks (no-op tasks the scheduler completes without a worker) and skips the
others, so each run's column in the grid has one green cell whose row names its outcome. The details (the
pipeline's id, the window and when it opens) go to the run's note through Airflow's REST API when the
`pdm_airflow_api` connection exists (a task cannot set its run's note through the Task SDK).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

TASK_SHOW_OUTCOME = "show_outcome"
NOTE_CONN_ID = "pdm_airflow_api"

# outcome word (run_steps.summarize and friends) → the outcome task shown in the grid
OUTCOME_TASKS: dict[str, str] = {
    "pipeline_succeeded": "outcome_pipeline_succeeded",
    "pipeline_failed": "outcome_pipeline_failed",
    "waiting_for_window": "outcome_waiting_for_window",
    "window_missed": "outcome_window_missed",
    "noop": "outcome_nothing_pending",
    "needs_human": "outcome_needs_human",
    "rejected": "outcome_rejected",
    "approval_expired": "outcome_approval_expired",
    "gates_closed": "outcome_environment_busy",
    "environment_busy": "outcome_environment_busy",
    "decision_void": "outcome_decision_void",
    "needs_human_in_flight": "outcome_create_in_flight",
    "pipeline_timeout": "outcome_pipeline_timeout",
    "pipeline_parked_manual": "outcome_pipeline_timeout",
    "waiting_on_previous_environment": "outcome_waiting_on_previous_environment",
    "dry_run": "outcome_dry_run",
    "error": "outcome_error",
}

OUTCOME_DOCS: dict[str, str] = {
    "outcome_pipeline_succeeded": "The PDM pipeline ran and succeeded (its id is in the run note and the audit).",
    "outcome_pipeline_failed": "The PDM pipeline was created and failed or was canceled: the run fails too.",
    "outcome_waiting_for_window": "Pending migrations wait for their class's window; the note says which, when.",
    "outcome_window_missed": "The window this run was created for closed before it could trigger.",
    "outcome_nothing_pending": "No post-deploy migration is pending: nothing to do.",
    "outcome_needs_human": "A migration is unknown, needs approval or conflicts: a person must decide.",
    "outcome_rejected": "A person rejected the run in Required Actions: who and why are in the note and audit.",
    "outcome_approval_expired": "Nobody answered the approval request in time: nothing ran.",
    "outcome_environment_busy": (
        "Another run or PDM pipeline holds the environment, or a gate other than the window stayed closed."
    ),
    "outcome_decision_void": (
        "The deployed package or the pending set changed while the run waited: the decision is void and the "
        "next run decides on the new set."
    ),
    "outcome_create_in_flight": (
        "A create was requested but its pipeline was never found: a person must check GitLab before any retry."
    ),
    "outcome_pipeline_timeout": (
        "The PDM pipeline outlived its bound (or waits in manual past the grace): the run fails as an alert."
    ),
    "outcome_waiting_on_previous_environment": "The migrations have not run on the previous environment yet.",
    "outcome_dry_run": "A dry run: the decision is recorded, nothing was triggered.",
    "outcome_error": "The run failed before an outcome: the note and record_outcome say the first cause.",
}


FAILED_OUTCOME_TASKS = (
    "outcome_pipeline_failed",
    "outcome_create_in_flight",
    "outcome_pipeline_timeout",
    "outcome_error",
)
"""Outcome tasks that fail (red in the grid), so the run fails: Airflow derives a run's state from its leaves."""


def fail_with_outcome(context: dict[str, Any]) -> None:
    """The failed outcome task: fails with the outcome's reason, without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from pdm_orchestrator.run_steps import TASK_RECORD_OUTCOME

    outcome = context["ti"].xcom_pull(task_ids=TASK_RECORD_OUTCOME, key="outcome")
    raise AirflowFailException(f"PDM run ended {note_text(outcome)}")


def outcome_task(outcome: dict[str, Any] | None) -> str:
    """The outcome task to show for a recorded outcome; an unknown or missing one shows as an error."""
    return OUTCOME_TASKS.get(str((outcome or {}).get("outcome")), OUTCOME_TASKS["error"])


def note_text(outcome: dict[str, Any] | None) -> str:
    """One short line for the run's note: the outcome word and why (the pipeline id, the window and when)."""
    if not outcome:
        return "error: the outcome could not be recorded (see record_outcome)"
    reason = str(outcome.get("reason") or "")
    pipeline = outcome.get("pipeline") or {}
    link = f" {pipeline['web_url']}" if pipeline.get("web_url") else ""
    text = f"{outcome.get('outcome')}: {reason}{link}"
    return text if len(text) <= 1000 else text[:997] + "..."


def show_outcome(context: dict[str, Any]) -> str:
    """Branch callable: the outcome task of this run, and the run note set when the connection exists."""
    from pdm_orchestrator.run_steps import TASK_RECORD_OUTCOME

    outcome = context["ti"].xcom_pull(task_ids=TASK_RECORD_OUTCOME, key="outcome")
    chosen = outcome_task(outcome)
    log.info("outcome: %s", note_text(outcome))
    set_run_note(context, note_text(outcome))
    return chosen


def set_run_note(context: dict[str, Any], text: str) -> bool:
    """PATCH the run's note through Airflow's REST API with the `pdm_airflow_api` connection (host: the API
    base URL; login/password: a user allowed to edit runs). Best effort: never fails the run."""
    import json
    import urllib.parse
    import urllib.request

    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(NOTE_CONN_ID)
    except Exception:  # noqa: BLE001 - no connection: the note is optional
        log.info(
            "no %s connection: the run note is not set (the outcome task shows the outcome)", NOTE_CONN_ID
        )
        return False
    base = (conn.host or "").rstrip("/")
    if conn.port:
        base = f"{base}:{conn.port}"
    if "://" not in base:
        base = f"http://{base}"
    dag_run = context["dag_run"]
    try:
        request = urllib.request.Request(
            f"{base}/auth/token",
            data=json.dumps({"username": conn.login, "password": conn.password}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            token = json.load(response)["access_token"]
        path = "/api/v2/dags/{}/dagRuns/{}".format(
            urllib.parse.quote(dag_run.dag_id, safe=""), urllib.parse.quote(dag_run.run_id, safe="")
        )
        request = urllib.request.Request(
            f"{base}{path}",
            data=json.dumps({"note": text}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            method="PATCH",
        )
        with urllib.request.urlopen(request, timeout=10):
            pass
    except Exception as exc:  # noqa: BLE001 - a note is a convenience, the audit has the outcome
        log.warning("could not set the run note through %s: %s", base, type(exc).__name__)
        return False
    return True
