"""Puts N runs of the bench DAG into the state `WaitForGatesOperator` leaves them in when the traffic gate
is closed: a running DagRun whose task instance is `deferred` on a `GatesOpenTrigger` row.

Why not let a worker defer them: on 2 cores a LocalExecutor starts only 4-6 tasks a second, so 1,000 first
tries would add 3-4 minutes to a bench that must also time 1,000 resumes in about ten. The rows
written here are the ones the execution API writes when a worker defers (same trigger classpath and kwargs
as `WaitForGatesOperator.execute` builds, same `next_method`, same timeout); the resume is real (scheduler,
LocalExecutor, `execute_complete` on a worker). Run in a subprocess with the bench's Airflow environment.

Usage: seed_deferred.py COUNT RUN_PREFIX   (prints one JSON line: {"seeded": COUNT, "seconds": ...})
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

DAG_ID = "pdm_bench_gate_wait"
TASK_ID = "wait_for_gates"
BATCH = 100
TIMEOUT_MARGIN = timedelta(minutes=10)  # WaitForGatesOperator defers with timeout=max_wait + 10 minutes


def seed(count: int, prefix: str) -> float:
    """Create `count` deferred runs named `{prefix}{i:05d}`; return the seconds it took."""
    from airflow.models.dagbag import DBDagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    from include.classification.classes import MigrationClass
    from include.policy import load_policy
    from pdm_orchestrator.triggers.gates import GatesOpenTrigger

    policy_path = os.environ["PDM_BENCH_POLICY_FILE"]
    gates = load_policy(policy_path).for_environment("gprd").gates
    started = time.monotonic()
    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(DAG_ID, session=session)
        if dag is None:
            raise SystemExit(
                f"{DAG_ID} is not serialized in the metadata DB (did `airflow dags reserialize` run?)"
            )
    for first in range(0, count, BATCH):
        with create_session() as session:
            for index in range(first, min(first + BATCH, count)):
                now = datetime.now(UTC)
                # What WaitForGatesOperator.execute hands to self.defer() for a closed traffic gate.
                classpath, kwargs = GatesOpenTrigger(
                    environment="gprd",
                    policy_path=policy_path,
                    run_class=MigrationClass.parse("background").value,
                    deadline=(now + gates.max_wait).isoformat(),
                    poll_seconds=gates.poll_interval.total_seconds(),
                    overrides={},
                ).serialize()
                run = dag.create_dagrun(
                    run_id=f"{prefix}{index:05d}",
                    run_type=DagRunType.MANUAL,
                    triggered_by=DagRunTriggeredByType.TEST,
                    run_after=now,
                    state=DagRunState.RUNNING,
                    start_date=now,
                    session=session,
                )
                trigger = Trigger(classpath=classpath, kwargs=kwargs)
                session.add(trigger)
                session.flush()
                ti = session.get(TaskInstance, run.get_task_instance(TASK_ID, session=session).id)
                ti.state = TaskInstanceState.DEFERRED
                ti.try_number = 1
                ti.start_date = now
                ti.queued_dttm = now
                ti.trigger_id = trigger.id
                ti.next_method = "execute_complete"
                ti.next_kwargs = {}
                ti.trigger_timeout = now + gates.max_wait + TIMEOUT_MARGIN
    return time.monotonic() - started


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[1].isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    seconds = seed(int(argv[1]), argv[2])
    print(json.dumps({"seeded": int(argv[1]), "seconds": round(seconds, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
