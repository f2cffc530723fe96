"""Bench DAG for `bench/bench_triggerer.py`: one real `WaitForGatesOperator` per run, nothing else.

Copied into a throw-away dags folder by the bench; never deployed. The policy path comes from the
environment the bench sets for every Airflow process, so the parsed DAG is the same on every parse.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from pdm_orchestrator.operators.gates import WaitForGatesOperator

BENCH_RUNS = int(os.environ.get("PDM_BENCH_MAX_RUNS", "2000"))

with DAG(
    dag_id="pdm_bench_gate_wait",
    schedule=None,
    catchup=False,
    max_active_runs=BENCH_RUNS,
    max_active_tasks=BENCH_RUNS,
    tags=["bench"],
):
    WaitForGatesOperator(
        task_id="wait_for_gates",
        environment="gprd",
        policy_path=os.environ.get("PDM_BENCH_POLICY_FILE", "/nonexistent/pdm-bench-policy.yaml"),
        run_class="background",
        retries=1,
    )
