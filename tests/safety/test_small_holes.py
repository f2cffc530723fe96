"""Issue 14, hole 7: staleness from the samples' own times, an explicit incident-check choice, an escaped
{{decision_id}} refused, and an invalid manual parameter failing at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _policy(tmp_path, mutate) -> Path:
    data = yaml.safe_load((PROJECT_ROOT / "config" / "policy.yaml").read_text())
    mutate(data)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- staleness from sample timestamps -------------------------------------------------------------------
def test_traffic_staleness_uses_the_sample_time_not_the_evaluation_time():
    """Fails before the fix: range-query points carry evaluation times, so a sample 4 minutes old (inside
    Prometheus' 5-minute lookback) looked fresh against a 30 s max_staleness."""
    from include.gates.traffic import TrafficObservation, TrafficSettings, evaluate_traffic

    now = datetime.now(UTC)
    settings = TrafficSettings(
        query="q", threshold=600, sustain=timedelta(seconds=60), max_staleness=timedelta(seconds=30)
    )
    samples = [(now - timedelta(seconds=s), 100.0) for s in range(60, -1, -5)]
    fresh = evaluate_traffic(now, TrafficObservation(samples=samples, newest_sample_at=now), settings)
    assert fresh.open, fresh.reason
    old = TrafficObservation(samples=samples, newest_sample_at=now - timedelta(minutes=4))
    result = evaluate_traffic(now, old, settings)
    assert not result.open and "stale" in result.reason


def test_instant_answers_carry_the_sample_time(monkeypatch):
    from pdm_orchestrator.hooks.prometheus import PrometheusHook

    now = datetime.now(UTC)
    taken = now - timedelta(minutes=4)
    answers = {
        "apdex": [({"__name__": "apdex", "env": "gprd"}, 0.999, now), ({"env": "gstg"}, 0.99, now)],
        "timestamp(apdex)": [({"env": "gprd"}, taken.timestamp(), now)],
    }
    hook = PrometheusHook()
    monkeypatch.setattr(hook, "query", lambda promql, at: answers[promql])
    rows = hook.query_sampled("apdex", now)
    assert abs((rows[0][2] - taken).total_seconds()) < 1e-3
    assert rows[1][2] == datetime.fromtimestamp(0, UTC)  # no timestamp for that series: stale, closed


# -- incident check: an explicit choice ------------------------------------------------------------------
def test_a_policy_without_incident_projects_is_refused(tmp_path):
    """Fails before the fix: the incident check was silently skipped, the gate saying "no blocking incident"."""
    from include.policy import PolicyError, load_policy

    path = _policy(tmp_path, lambda d: d["gates"]["rollback"].pop("incident_projects"))
    with pytest.raises(PolicyError, match=r"gates\.rollback\.incident_projects.*\[\] to run without"):
        load_policy(path)


def test_incident_check_off_is_said_in_the_reason():
    from include.deployments import Deployment
    from include.gates.rollback import RollbackObservation, evaluate_rollback_safety

    now = datetime.now(UTC)
    deployed = Deployment(
        id=1,
        environment="gprd",
        sha="a" * 40,
        ref="pkg",
        status="success",
        created_at=None,
        finished_at=now - timedelta(hours=5),
    )
    off = evaluate_rollback_safety(
        now, RollbackObservation(deployed=deployed, incident_check=False), timedelta(hours=1)
    )
    assert off.open and "NOT checked for incidents" in off.reason and "off by policy" in off.reason
    on = evaluate_rollback_safety(now, RollbackObservation(deployed=deployed), timedelta(hours=1))
    assert "no blocking incident" in on.reason


# -- the decision variable ----------------------------------------------------------------------------------
def test_an_escaped_decision_id_is_refused(tmp_path):
    """Fails before the fix: `{{decision_id}}` passed validation and rendered one text for every decision."""
    from include.policy import PolicyError, load_policy

    def escape(data):
        data["gitlab"]["pdm_pipeline"]["variables"]["PDM_DECISION_ID"] = "{{decision_id}}"

    with pytest.raises(PolicyError, match=r"escaped placeholder \{\{decision_id\}\}"):
        load_policy(_policy(tmp_path, escape))


def test_the_operator_never_takes_an_escaped_template_for_the_decision_variable():
    from pdm_orchestrator.operators.pipeline import _decision_variable

    assert _decision_variable({"A": "{{decision_id}}", "B": "x-{decision_id}"}) == "B"
    assert _decision_variable({"A": "{{decision_id}}"}) is None


# -- invalid manual parameters ----------------------------------------------------------------------------
def test_an_override_without_a_reason_fails_at_once():
    """Fails before the fix: a ValueError, so Airflow retried a task whose parameters cannot change."""
    from airflow.sdk.exceptions import AirflowFailException

    from pdm_orchestrator.params import gate_overrides

    with pytest.raises(AirflowFailException, match="overriding gates needs a reason"):
        gate_overrides({"override_gates": ["traffic"], "override_reason": ""})
