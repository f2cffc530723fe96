"""Each gate is its own sensor: the one that stays closed is the one that waited (and says why), an overridden
gate is marked overridden with who and why, and decide re-checks all gates at one instant."""

from __future__ import annotations

import pytest

from tests.support.scenarios import BACKGROUND, CLEANUP, world

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BACKGROUND_FILE = "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb"
CLEANUP_FILE = "ee/db/post_migrate/20261121000000_remove_legacy_trace_column_from_ci_builds.rb"
SENSORS = {
    "window": "gate_window",
    "traffic": "gate_low_traffic",
    "deploy_lock": "gate_no_deploy_lock",
    "rollback_safety": "gate_rollback_safe",
}


def _sensor_results(run) -> dict[str, dict]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel.task_id, XComModel.value)
            .filter(
                XComModel.dag_id == run.dag_id,
                XComModel.run_id == run.run_id,
                XComModel.key == "return_value",
            )
            .all()
        )
    import json

    values = {
        task_id: (json.loads(v) if isinstance(v, str | bytes) else v)
        for task_id, v in rows
        if task_id in SENSORS.values()
    }
    return {gate: values.get(task) for gate, task in SENSORS.items()}


def test_high_traffic_holds_only_the_traffic_sensor(pdm_world):
    pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    pdm_world.use_policy(traffic_threshold=50)  # the live rate (100 req/s) is above it
    run = pdm_world.run()
    results = _sensor_results(run)
    assert results["traffic"]["open"] is False and "traffic" in results["traffic"]["gate"]
    assert all(results[g]["open"] for g in ("window", "deploy_lock", "rollback_safety")), results
    assert pdm_world.outcome(run.run_id)["outcome"] == "gates_closed"


def test_an_overridden_gate_says_so_on_its_sensor(pdm_world):
    pdm_world.serve(world({CLEANUP_FILE: CLEANUP}))
    reason = "CR 1234: cleanup approved outside the weekend"
    run = pdm_world.run(conf={"override": {"gates": ["window"], "reason": reason}})
    window = _sensor_results(run)["window"]
    assert window["overridden"] is True and window["reason"] == reason and window["override_user"]
    decision = pdm_world.audit.events(run_id=run.run_id, kind="decision")[0].payload
    assert decision["overridden"] == {"window": reason}
