"""Daily traffic profile: learn each environment's typical traffic per hour of the week and its quiet hours."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, task

POLICY_PATH = os.environ.get(
    "PDM_POLICY_FILE", str(Path(__file__).resolve().parent.parent / "config" / "policy.yaml")
)

with DAG(
    dag_id="pdm_traffic_profile",
    description="Learn typical traffic per hour of the week and the low-traffic hours, per environment",
    doc_md=f"""
### Daily traffic profile

For every environment of the policy (`{POLICY_PATH}`), pulls `gates.traffic.profile.weeks` (default 4)
weeks of the traffic query from Prometheus with one range query (`prometheus` connection of the policy),
computes with pandas the median request rate of each UTC hour of the week and the low-traffic hours
(median at or below the `low_percentile`-th percentile of all hours), and appends the profile to the
audit database (`pdm_audit` connection, table `pdm_traffic_profile`).

Policy windows written `{{learned: low_traffic}}` are open in the latest profile's low-traffic hours; a
profile older than the window's `max_age` closes them. An environment without usable history fails the
task (after the others are stored), so its old profile ages out instead of being trusted.
""",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["pdm", "traffic"],
    default_args={"owner": "release-managers", "retries": 2, "retry_delay": timedelta(minutes=10)},
) as pdm_traffic_profile:

    @task(task_id="learn_profiles")
    def learn_profiles(**context) -> list[dict]:
        """One profile per environment; raises after the others when an environment has no usable history."""
        from datetime import UTC

        from include.policy import load_policy
        from pdm_orchestrator.gate_checks import refresh_traffic_profile

        policy = load_policy(POLICY_PATH)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        stored, failed = [], []
        for environment in policy.environments:
            try:
                stored.append(refresh_traffic_profile(policy, environment, now))
            except Exception as exc:  # noqa: BLE001 - learn the others, then fail naming this one
                failed.append(f"{environment}: {type(exc).__name__}: {exc}")
        if failed:
            raise RuntimeError("traffic profile not learned for " + "; ".join(failed))
        return stored

    learn_profiles()
