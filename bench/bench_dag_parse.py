"""What declaring the DAGs costs the dag-processor, against a DAG of the same stock parts (issue 18).

The dag-processor re-imports every file of dags/ each cycle. For each file, and for a floor DAG built of
the stock parts the PDM DAG uses (`@task`, `@task.branch`, a deferrable sensor, an empty operator), this
parses the file in a fresh interpreter BENCH_PARSE_RUNS times (default 3, after one run that writes the
bytecode, as a long-lived deployment has it) and prints the median wall and CPU time (CPU is the steadier on a shared machine), the modules the parse
imported beyond Airflow's own (count) and the ratio to the floor.

    .venv/bin/python bench/bench_dag_parse.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "bench" / "support" / "parse_dag.py"
RUNS = int(os.environ.get("BENCH_PARSE_RUNS", "3"))

FLOOR_DAG = """
from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG, TriggerRule, task

with DAG(dag_id="stock_parts_floor", start_date=datetime(2026, 1, 1, tzinfo=UTC), schedule=None, catchup=False):

    @task
    def first():
        return 1

    @task.branch
    def choose(value):
        return "wait"

    wait = TimeDeltaSensor(task_id="wait", delta=timedelta(minutes=1), deferrable=True)
    choose(first()) >> wait >> EmptyOperator(task_id="end", trigger_rule=TriggerRule.ALL_DONE)
"""


# The same stock parts in the same number as dags/pdm_environments.py declares: two DAGs of 28 tasks (11 empty
# operators, 8 `@task`, 3 `@task.branch`, 4 deferrable sensors, a human-in-the-loop branch and one more
# operator), the same three-field trigger form and default_args. What Airflow itself costs for that shape;
# the PDM file's ratio to it is what the project adds (policy, operators' own set-up, imports).
SHAPE_DAG = """
from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG, Param, TriggerRule, task


def build(name):
    with DAG(
        dag_id=f"stock_shape_{name}",
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        schedule=None,
        catchup=False,
        max_active_runs=1,
        doc_md="A stock-parts DAG of the PDM DAG's shape.",
        params={
            "environment": Param(name, type="string", enum=[name], title="Environment"),
            "dry_run": Param(False, type="boolean", title="Dry run"),
            "override": Param(
                {"gates": [], "reason": ""},
                type=["object", "null"],
                properties={
                    "gates": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                    "reason": {"type": ["string", "null"]},
                },
            ),
        },
        default_args={"owner": "floor", "retries": 2, "retry_delay": timedelta(seconds=30)},
    ):

        @task
        def first():
            return 1

        @task
        def second(value):
            return value

        @task
        def third(value):
            return value

        @task.branch
        def choose(value):
            return "human"

        @task.branch
        def decide():
            return "trigger"

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def record():
            return 1

        @task.branch(trigger_rule=TriggerRule.ALL_DONE)
        def show():
            return "shown_0"

        value = second(first())
        third(value)
        path = choose(value)
        human = HITLBranchOperator(task_id="human", subject="approve?", options=["go", "stop"])
        sensors = [
            TimeDeltaSensor(task_id=f"wait_{i}", delta=timedelta(minutes=1), deferrable=True) for i in range(4)
        ]
        verdict = decide()
        trigger = EmptyOperator(task_id="trigger")
        outcome = record()
        path >> [human, outcome]
        human >> [*sensors, outcome]
        sensors >> verdict
        verdict >> [trigger, outcome]
        trigger >> outcome
        shown = show()
        outcome >> shown
        for i in range(3):

            @task(task_id=f"failed_{i}")
            def failed():
                return 0

            shown >> failed()
        for i in range(11):
            shown >> EmptyOperator(task_id=f"shown_{i}")


build("gstg")
build("gprd")
"""


def parse(path: Path, env: dict[str, str]) -> dict:
    """One parse of `path` in a fresh interpreter (the probe's JSON line)."""
    done = subprocess.run(
        [sys.executable, str(PROBE), str(path)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(path: Path, env: dict[str, str]) -> dict:
    parse(path, env)  # writes the bytecode
    runs = [parse(path, env) for _ in range(RUNS)]
    last = runs[-1]
    if last["errors"]:
        raise SystemExit(f"{path}: import errors {last['errors']}")
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "cpu": statistics.median(r["cpu_seconds"] for r in runs),
        "modules": len(last["modules"]),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dag-parse-") as work:
        work_dir = Path(work)
        (work_dir / "floor").mkdir()
        floor = work_dir / "floor" / "stock_parts_floor.py"
        floor.write_text(FLOOR_DAG, encoding="utf-8")
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}",
            PYTHONPYCACHEPREFIX=str(work_dir / "pycache"),
            AIRFLOW_HOME=str(work_dir / "airflow"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
            PDM_POLICY_FILE=os.environ.get("PDM_POLICY_FILE", str(ROOT / "config" / "policy.yaml")),
        )
        shape = work_dir / "floor" / "stock_shape_floor.py"
        shape.write_text(SHAPE_DAG, encoding="utf-8")
        base = measure(floor, env)
        shaped = measure(shape, env)
        print(
            f"{'DAG file':<28} {'wall ms':>8} {'CPU ms':>7} {'modules':>8} {'CPU x floor':>12} {'CPU x shape':>12}"
        )
        rows = [("(stock parts floor)", base), ("(stock parts, PDM shape)", shaped)]
        rows += [(path.name, measure(path, env)) for path in sorted((ROOT / "dags").glob("*.py"))]
        for name, got in rows:
            ratio, shape_ratio = got["cpu"] / base["cpu"], got["cpu"] / shaped["cpu"]
            print(
                f"{name:<28} {got['seconds'] * 1000:>8.0f} {got['cpu'] * 1000:>7.0f} {got['modules']:>8} "
                f"{ratio:>12.1f} {shape_ratio:>12.1f}"
            )
        print(f"median of {RUNS} fresh interpreters each; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
