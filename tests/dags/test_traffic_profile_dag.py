"""The pdm_traffic_profile DAG: its structure, and a real run (`dag.test()`) that learns the low-traffic hours
from 4 weeks of backfilled history in a real Prometheus and stores them in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include.policy.learned import TrafficProfile
from tests.support.policies import e2e_policy, write_policy

DAGS = Path(__file__).resolve().parents[2] / "dags"


def _dag(monkeypatch, policy_path: Path):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("PDM_POLICY_FILE", str(policy_path))
    bag = DagBag(dag_folder=str(DAGS / "pdm_traffic_profile.py"), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("pdm_traffic_profile")


def test_structure(airflow_db, monkeypatch, tmp_path):
    dag = _dag(monkeypatch, write_policy(tmp_path / "policy.yaml", e2e_policy()))
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert [t.task_id for t in dag.tasks] == ["learn_profiles"]
    assert "pdm" in dag.tags and dag.doc_md


@pytest.mark.integration
def test_run_learns_and_stores_the_low_traffic_hours(
    airflow_db, prometheus_with_traffic, postgres_audit_store, postgres_database, monkeypatch, tmp_path
):
    data = e2e_policy()
    data["gates"]["traffic"]["profile"] = {"weeks": 4, "low_percentile": 25}
    data["environments"]["gqa"] = {"deploy_environment": "gqa", "db_environment": "db/gqa", "schedule": False}
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", prometheus_with_traffic.url)
    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", postgres_database)
    dag = _dag(monkeypatch, write_policy(tmp_path / "policy.yaml", data))

    dag.get_task("learn_profiles").retries = 0  # the shipped 2 retries × 10 min would only repeat the failure
    run = dag.test()

    # gqa has no traffic history: the run fails naming it, after gprd and gstg are stored.
    assert str(run.state).endswith("failed")
    assert postgres_audit_store.latest_traffic_profile("gqa") is None
    profile = TrafficProfile.from_dict(postgres_audit_store.latest_traffic_profile("gprd"))
    assert datetime.now(UTC) - profile.computed_at < timedelta(minutes=10)
    assert profile.samples > 7000  # 4 weeks at a 5-minute step
    assert len(profile.typical) == 168 and all(level is not None for level in profile.typical)
    # About a quarter of the week is learned as quiet, and those are the profile's quiet hours.
    assert 30 <= len(profile.low_traffic_hours) <= 55
    world = prometheus_with_traffic.profile
    monday = datetime(2026, 11, 23, tzinfo=UTC)
    expected = {h: world.expected_rate_at(monday + timedelta(hours=h, minutes=30)) for h in range(168)}
    quiet = sorted(expected, key=expected.get)[: len(profile.low_traffic_hours)]
    overlap = len(profile.low_traffic_hours & set(quiet)) / len(quiet)
    assert overlap >= 0.8, (sorted(profile.low_traffic_hours), quiet)
    assert TrafficProfile.from_dict(postgres_audit_store.latest_traffic_profile("gstg")).low_traffic_hours
