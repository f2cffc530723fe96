"""Outcome at a glance: each run ends with exactly one `outcome_*` task done (the grid's one coloured cell under
show_outcome) and the rest skipped; a failed pipeline's outcome task fails, so the run fails."""

from __future__ import annotations

import pytest

from pdm_orchestrator.outcome_view import OUTCOME_TASKS
from tests.support.scenarios import BACKGROUND, CLEANUP, world

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BACKGROUND_FILE = "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb"
CLEANUP_FILE = "ee/db/post_migrate/20261121000000_remove_legacy_trace_column_from_ci_builds.rb"


def _outcome_states(run) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(TaskInstance.task_id, TaskInstance.state)
            .filter(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
            .all()
        )
    return {task_id: str(state) for task_id, state in rows if task_id.startswith("outcome_")}


@pytest.mark.parametrize(
    ("files", "result", "outcome", "shown", "shown_state", "run_state"),
    [
        ({}, "success", "noop", "outcome_nothing_pending", "success", "success"),
        (
            {CLEANUP_FILE: CLEANUP},
            "success",
            "waiting_for_window",
            "outcome_waiting_for_window",
            "success",
            "success",
        ),
        (
            {BACKGROUND_FILE: BACKGROUND},
            "failed",
            "pipeline_failed",
            "outcome_pipeline_failed",
            "failed",
            "failed",
        ),
    ],
    ids=["nothing pending", "waiting for window", "pipeline failed"],
)
def test_one_outcome_task_names_the_runs_outcome(
    pdm_world, files, result, outcome, shown, shown_state, run_state
):
    pdm_world.serve(world(files, pipeline_result=result))
    run = pdm_world.run()
    assert str(run.state).endswith(run_state)
    assert pdm_world.outcome(run.run_id)["outcome"] == outcome
    states = _outcome_states(run)
    assert set(states) == set(OUTCOME_TASKS.values())
    assert states.pop(shown).endswith(shown_state)
    assert {s.split(".")[-1] for s in states.values()} == {"skipped"}
