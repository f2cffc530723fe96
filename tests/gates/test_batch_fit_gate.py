"""The DAG's window gate with the batch-fit rule: gate_checks.window_gate on the run's batch, learning from
the audit store in PostgreSQL (the per-run facts the snapshot and outcome events keep), as the simulator's
orchestrator does (batch_duration.predict_pending and batch_fit_reason)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.audit import AuditEvent, AuditStore, AuditTarget
from include.classification.classes import MigrationClass
from include.policy import parse_policy
from tests.support.policies import DAYS, e2e_policy

DATA = MigrationClass.DATA
NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # a Wednesday; the window closes at 06:00
pytestmark = pytest.mark.integration


def make_policy(per_batch: bool = True):
    data = e2e_policy(NOW)
    data["windows"]["closes_at_six"] = {"days": DAYS, "start": "03:00", "end": "06:00"}
    data["classes"]["data"]["windows"] = ["closes_at_six"]
    forecast = {"enabled": True, "pipeline_overhead": "10m", "min_samples": 2, "safety_factor": 1.0}
    if per_batch:
        forecast |= {"per_migration_quantile": 50, "per_migration_default": "10m"}
    data["gates"]["deploy_lock"]["forecast"] = forecast
    return parse_policy(data, "batch-fit-test").for_environment("gprd")


@pytest.fixture
def store(postgres_database, monkeypatch) -> AuditStore:
    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", postgres_database)
    audit = AuditStore(AuditTarget.from_uri(postgres_database))
    audit.migrate()
    return audit


def record_run(store: AuditStore, run_id: str, classes: dict[str, int], seconds: float) -> None:
    """One past run as the DAG records it: its snapshot (with batch_classes) and a successful outcome."""
    for kind, payload in (
        ("snapshot", {"run_class": "data", "batch_classes": classes, "migrations": []}),
        ("outcome", {"outcome": "pipeline_succeeded", "pipeline": {"id": 1, "duration": seconds}}),
    ):
        store.record(AuditEvent(stream="gprd", dag_id="pdm_gprd", run_id=run_id, kind=kind, payload=payload))


def test_a_batch_that_would_outlast_the_window_closes_it_and_one_that_fits_leaves_it_open(store):
    from pdm_orchestrator.gate_checks import window_gate

    policy = make_policy()
    # No past runs: each migration counts the 10m default. 5 data + 10m overhead = 1h: ends 06:00, fits.
    fits = window_gate(policy, "gprd", DATA, NOW, ["data"] * 5)
    assert fits.open, fits.reason
    assert fits.observed["batch"] == "batch of 5 (5 data)"
    assert fits.observed["predicted_end"] == "2026-11-25T06:00:00+00:00"
    # 6 data and 3 background: 1h40 would end 06:40.
    late = window_gate(policy, "gprd", DATA, NOW, ["data"] * 6 + ["background"] * 3)
    assert not late.open
    assert late.reason == (
        "batch of 9 (6 data) predicted 1h40 would end Wed 06:40 UTC, after the window closes Wed 06:00 UTC"
    )
    assert late.retry_at is None  # judged again at each poll: the batch or the history may change
    # Past runs show data migrations take 2 minutes each (10m overhead + 2 × 2m): the same batch fits.
    for index in range(3):
        record_run(store, f"past-{index}", {"data": 2}, (10 + 4) * 60)
    learned = window_gate(policy, "gprd", DATA, NOW, ["data"] * 6 + ["background"] * 3)
    assert learned.open, learned.reason
    assert "6 data (6 past, mean 2m)" in learned.details["batch_prediction"]


def test_without_the_per_batch_prediction_or_a_batch_the_window_is_the_calendar_alone(store):
    from pdm_orchestrator.gate_checks import window_gate

    big = ["data"] * 40
    assert window_gate(make_policy(per_batch=False), "gprd", DATA, NOW, big).open
    calendar = window_gate(make_policy(), "gprd", DATA, NOW)
    assert calendar.open and "batch" not in calendar.observed


def test_unreadable_past_runs_close_the_window_gate(monkeypatch):
    from pdm_orchestrator.gate_checks import window_gate

    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", "postgresql://postgres@127.0.0.1:1/nowhere")
    result = window_gate(make_policy(), "gprd", DATA, NOW, ["data"])
    assert not result.open
    assert result.reason.startswith("batch duration unknown: past PDM runs unreadable")


def test_the_deploy_lock_forecast_predicts_the_batch(store):
    """The forecast's predicted PDM is the batch's (deploy_forecast with a batch), not the class's runs."""
    from pdm_orchestrator.gate_checks import deploy_forecast

    class NoDeployments:
        def recent_deployments(self, project, environment, since):
            return []

    forecast = deploy_forecast(make_policy(), "gprd", DATA, NOW, NoDeployments(), ["data"] * 3)
    assert forecast.duration.duration == timedelta(minutes=40)
    assert "3 data (default" in forecast.duration.basis
