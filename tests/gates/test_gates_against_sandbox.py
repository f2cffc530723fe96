"""Deploy-lock and rollback-safety gates through the real hooks, against the sandbox GitLab over HTTP (and
the audit store in PostgreSQL, Prometheus for health), with deployments, incidents and change requests
moving over sandbox time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from include.audit import AuditEvent
from include.classification.classes import MigrationClass
from include.isotime import parse_iso_instant
from include.policy import parse_policy
from include.sandbox.gitlab_server import SandboxGitLab
from tests.support.policies import e2e_policy
from tests.support.scenarios import APP, world

TOKEN = "gates-sandbox-token-5a4b3c2d1e"
INCIDENTS = "gitlab-com/gl-infra/production"
DATA = MigrationClass.DATA
pytestmark = pytest.mark.integration


def weekly_history(hours_ahead: int) -> list[dict]:
    """A gprd deployment every week, starting `hours_ahead` hours after the hour of 'now' (4 weeks back)."""
    return [
        {
            "environment": "gprd",
            "sha": "4" * 40,
            "ref": f"weekly-{k}",
            "status": "success",
            "created_at": f"-{k * 168 - hours_ahead}h",
            "finished_at": f"-{k * 168 - hours_ahead - 1}h",
        }
        for k in range(1, 5)
    ]


@pytest.fixture
def sandbox(monkeypatch, postgres_database):
    server = SandboxGitLab(world({}, extra_deployments=weekly_history(2)), token=TOKEN).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_GITLAB_DEFAULT",
        json.dumps(
            {
                "conn_type": "http",
                "host": server.url,
                "password": TOKEN,
                "extra": {"timeout": 5, "max_retries": 0},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", postgres_database)
    yield server
    server.stop()


def sandbox_now(sandbox) -> datetime:
    return parse_iso_instant(sandbox.advance_clock(0))


def make_policy(forecast: dict | None = None, health: dict | None = None, max_predicted: str | None = None):
    data = e2e_policy()
    if forecast is not None:
        data["gates"]["deploy_lock"]["forecast"] = forecast
    if health is not None:
        data["gates"]["rollback"]["health"] = health
    if max_predicted:
        data["classes"]["data"]["max_predicted_duration"] = max_predicted
    return parse_policy(data, "sandbox-test").for_environment("gprd")


def test_deploy_lock_follows_deployments_over_time(sandbox):
    from pdm_orchestrator.gate_checks import deploy_lock_gate

    policy = make_policy()
    assert deploy_lock_gate(policy, "gprd", sandbox_now(sandbox), DATA).open
    running = sandbox.add_deployment(APP, environment="gprd", sha="5" * 40, ref="next-pkg", status="running")
    closed = deploy_lock_gate(policy, "gprd", sandbox_now(sandbox), DATA)
    assert not closed.open
    assert closed.reason == f"deployment {running['id']} to gprd is running (next-pkg)"
    sandbox.advance_clock(600)
    sandbox.set_deployment_status(running["id"], "success")
    assert deploy_lock_gate(policy, "gprd", sandbox_now(sandbox), DATA).open
    blocked = sandbox.add_deployment(APP, environment="gprd", sha="6" * 40, ref="held", status="blocked")
    assert deploy_lock_gate(policy, "gprd", sandbox_now(sandbox), DATA).reason == (
        f"deployment {blocked['id']} to gprd is blocked (held)"
    )


def test_gitlab_fault_keeps_the_deploy_lock_closed(sandbox):
    from pdm_orchestrator.gate_checks import deploy_lock_gate

    sandbox.inject_fault(r"/deployments", status=503, count=50)
    result = deploy_lock_gate(make_policy(), "gprd", sandbox_now(sandbox), DATA)
    assert not result.open
    assert result.reason.startswith("deploy lock unknown: GitLab GET /projects/:id/deployments (active)")
    assert "503" in result.reason and TOKEN not in result.reason


def _record_run(store, run_id: str, run_class: str, seconds: float) -> None:
    for kind, payload in (
        ("snapshot", {"run_class": run_class}),
        (
            "outcome",
            {
                "outcome": "pipeline_succeeded",
                "pipeline": {"id": 1, "status": "success", "duration": seconds},
            },
        ),
    ):
        store.record(AuditEvent(stream="gprd", dag_id="pdm_gprd", run_id=run_id, kind=kind, payload=payload))


def test_forecast_from_deployment_history_and_past_runs(sandbox, postgres_database):
    """Weekly deployments start 2–3 hours from now: a short PDM fits, a long one would overlap."""
    from include.audit import AuditStore, AuditTarget
    from pdm_orchestrator.gate_checks import deploy_lock_gate

    store = AuditStore(AuditTarget.from_uri(postgres_database))
    store.migrate()
    forecast = {
        "history": "4w",
        "min_share": 0.5,
        "safety_factor": 1.5,
        "min_runs": 3,
        "default_duration": "1h",
    }

    # No past runs, no class maximum: the default (1h) fits before the deployment expected in 2–3h.
    now = sandbox_now(sandbox)
    result = deploy_lock_gate(make_policy(forecast), "gprd", now, DATA)
    assert result.open, result.reason
    expected = datetime.fromisoformat(result.observed["next_deployment"]["expected_at"])
    assert now + timedelta(hours=1) < expected <= now + timedelta(hours=3)
    assert "before the next deployment expected" in result.reason

    # The class maximum (4h) is used while fewer than min_runs runs are known: it would overlap.
    closed = deploy_lock_gate(make_policy(forecast, max_predicted="4h"), "gprd", now, DATA)
    assert not closed.open
    assert closed.reason.startswith(
        "predicted PDM of 4h (0 past data runs (< 3): the class's max_predicted_duration)"
    )
    assert "after the next deployment expected" in closed.reason and "in 4 of 4 weeks" in closed.reason

    # Three short past runs (median 30m × 1.5 = 45m) replace the maximum: it fits.
    for index, minutes in enumerate((20, 30, 40)):
        _record_run(store, f"short-{index}", "data", minutes * 60)
    _record_run(store, "other-class", "cleanup", 10 * 3600)  # another class does not count
    fits = deploy_lock_gate(make_policy(forecast, max_predicted="4h"), "gprd", now, DATA)
    assert fits.open, fits.reason
    assert fits.observed["predicted_pdm"] == {
        "seconds": 2700,
        "basis": "median of 3 past data runs (30m) × 1.5",
    }

    # Long runs move the median up (6 runs: (40m + 5h) / 2 × 1.5 = 4h15m): closed again.
    for index in range(3):
        _record_run(store, f"long-{index}", "data", 5 * 3600)
    late = deploy_lock_gate(make_policy(forecast), "gprd", now, DATA)
    assert not late.open
    assert late.reason.startswith(
        "predicted PDM of 4h 15m (median of 6 past data runs (2h 50m) × 1.5) would end"
    )


def test_forecast_with_unreachable_audit_store_is_closed(sandbox, monkeypatch):
    from pdm_orchestrator.gate_checks import deploy_lock_gate

    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", "postgresql://postgres@127.0.0.1:9/none")
    result = deploy_lock_gate(make_policy({"history": "4w"}), "gprd", sandbox_now(sandbox), DATA)
    assert not result.open
    assert result.reason.startswith(
        "next-deployment forecast unknown: past PDM durations unreadable: AuditStoreError"
    )


def test_rollback_gate_follows_incidents_changes_and_bake_time(sandbox):
    from pdm_orchestrator.gate_checks import rollback_gate

    policy = make_policy()
    assert rollback_gate(policy, "gprd", DATA, sandbox_now(sandbox)).open  # deployed 5h ago, min_bake 1h
    incident = sandbox.add_issue(INCIDENTS, title="Elevated 500s", labels=["incident", "severity::2"])
    closed = rollback_gate(policy, "gprd", DATA, sandbox_now(sandbox))
    assert closed.reason == (
        f"rollback may be needed: {INCIDENTS}#{incident['iid']} 'Elevated 500s' (incident, severity::2)"
    )
    sandbox.close_issue(INCIDENTS, incident["iid"])
    change = sandbox.add_issue(INCIDENTS, title="Patroni failover", labels=["change::in-progress", "C1"])
    assert "Patroni failover" in rollback_gate(policy, "gprd", DATA, sandbox_now(sandbox)).reason
    sandbox.close_issue(INCIDENTS, change["iid"])

    # A new package finishes now: it must bake 1h; the gate says when, and opens after sandbox time moves.
    sandbox.add_deployment(APP, environment="gprd", sha="7" * 40, ref="fresh-pkg", status="success")
    now = sandbox_now(sandbox)
    baking = rollback_gate(policy, "gprd", DATA, now)
    assert not baking.open
    assert baking.reason == "package fresh-pkg has baked 0m of 1h 00m"
    assert abs((baking.retry_at - (now + timedelta(hours=1))).total_seconds()) < 2
    sandbox.advance_clock(3601)
    assert rollback_gate(policy, "gprd", DATA, sandbox_now(sandbox)).open


def test_rollback_health_from_prometheus(sandbox, prometheus_with_traffic, monkeypatch):
    from pdm_orchestrator.gate_checks import rollback_gate

    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", prometheus_with_traffic.url)
    health = {
        "apdex_query": 'min(gitlab_service_apdex:ratio_5m{env="{environment}"})',
        "min_apdex": 0.999,
        "max_staleness": "1m",
    }
    prometheus_with_traffic.set_health("gprd", 0.9995)
    from datetime import UTC

    now = datetime.now(UTC)  # Prometheus data is real-time
    result = rollback_gate(make_policy(health=health), "gprd", DATA, now)
    assert result.open, result.reason
    assert result.reason.endswith("no blocking incident; apdex 0.9995")
    prometheus_with_traffic.set_health("gprd", 0.95)
    result = rollback_gate(make_policy(health=health), "gprd", DATA, datetime.now(UTC))
    assert result.reason == "apdex 0.95 below minimum 0.999: rollback may be needed"
    prometheus_with_traffic.set_health("gprd", 0.9995)
