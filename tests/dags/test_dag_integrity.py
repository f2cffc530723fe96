"""Every DAG file imports cleanly, serializes, parses fast, and stays cheap (no heavy module-level imports)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS = PROJECT_ROOT / "dags"
DAG_FILES = sorted(DAGS.glob("*.py"))
HEAVY = ("gitlab", "pandas", "tree_sitter", "tree_sitter_ruby", "psycopg2", "sqlglot", "requests")


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), safe_mode=False)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_dag_per_policy_environment(dagbag):
    assert {"pdm_gstg", "pdm_gprd"} <= set(dagbag.dag_ids)


def test_dags_serialize(dagbag):
    from airflow.serialization.serialized_objects import DagSerialization

    for dag in dagbag.dags.values():
        DagSerialization.serialize_dag(dag)


def test_flow_shape(dagbag):
    dag = dagbag.get_dag("pdm_gprd")
    assert dag.max_active_runs == 1
    assert dag.owner == "release-managers"
    assert "pdm" in dag.tags
    assert dag.get_task("discover_pending").downstream_task_ids == {"classify_pending"}
    gates = {"gate_window", "gate_low_traffic", "gate_no_deploy_lock", "gate_rollback_safe"}
    # The approval task stands between the branch and the gates (it asks a human only when one is needed).
    assert dag.get_task("choose_path").downstream_task_ids == {"request_approval", "record_outcome"}
    assert dag.get_task("request_approval").downstream_task_ids == gates | {"record_outcome"}
    # The request expires after the policy's approval.timeout (PDM_APPROVAL_TIMEOUT_HOURS may override it).
    from include.approval import response_timeout
    from include.policy import load_policy

    expected = response_timeout(load_policy(os.environ["PDM_POLICY_FILE"]).approval.timeout)
    assert dag.get_task("request_approval").response_timeout == expected
    for sensor in gates:
        task = dag.get_task(sensor)
        assert task.downstream_task_ids == {"decide"}
        assert task.deferrable and not task.soft_fail and task.timeout > 0
    assert dag.get_task("decide").downstream_task_ids == {"trigger_pipeline", "record_outcome"}
    outcome = dag.get_task("record_outcome")
    assert outcome.trigger_rule == "all_done"
    assert outcome.downstream_task_ids == {"show_outcome"}
    shown = dag.get_task("show_outcome")
    assert shown.trigger_rule == "all_done"
    assert "outcome_pipeline_succeeded" in shown.downstream_task_ids and len(shown.downstream_task_ids) == 15
    for task in dag.tasks:
        assert task.doc_md or dag.doc_md


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parse_time_and_cheap_imports(path):
    """Parse in a fresh interpreter (as the dag-processor does) and print the time."""
    code = (
        "import sys, time, importlib.util\n"
        "import airflow.sdk\n"
        "t = time.perf_counter()\n"
        f"spec = importlib.util.spec_from_file_location('dagfile', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "elapsed = time.perf_counter() - t\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(f'{elapsed:.4f}', ','.join(heavy))\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{PROJECT_ROOT}:{PROJECT_ROOT / 'plugins'}")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    elapsed, _, heavy = result.stdout.strip().splitlines()[-1].partition(" ")
    print(
        f"\nDAG parse time {path.name}: {float(elapsed) * 1000:.1f} ms (interpreter + airflow import: {time.perf_counter() - started:.1f} s)"
    )
    assert heavy == "", f"{path.name} imports heavy modules at parse time: {heavy}"
