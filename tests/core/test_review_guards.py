"""Guards added after a review of the critical paths: each one a way the product could have run what no gate
allowed, created a second pipeline, or hidden a bad signal."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_selected_versions_without_a_versions_variable_is_refused(tmp_path):
    """Without the list the pipeline would run every pending migration, gated only for the selected prefix."""
    from include.policy import PolicyError, load_policy

    policy = yaml.safe_load((PROJECT_ROOT / "config" / "policy.yaml").read_text())
    policy["execution_mode"] = "selected_versions"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    with pytest.raises(PolicyError, match=r"execution_mode: selected_versions needs .*\{versions\}"):
        load_policy(path)
    policy["gitlab"]["pdm_pipeline"]["variables"]["PDM_VERSIONS"] = "{versions}"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    assert load_policy(path).execution_mode == "selected_versions"


def test_the_decision_variable_is_found_when_its_template_wraps_the_id():
    """A retried trigger looks the pipeline up by the rendered value, whatever surrounds {decision_id}."""
    from pdm_orchestrator.operators.pipeline import _decision_variable, pipeline_variables

    templates = {"PDM_ENVIRONMENT": "{environment}", "PDM_DECISION": "pdm-{decision_id}"}
    key = _decision_variable(templates)
    assert key == "PDM_DECISION"
    rendered = pipeline_variables(
        templates, "gprd", {"sha": "a" * 40, "ref": "pkg"}, "gprd-abc", {"migrations": []}
    )
    assert rendered[key] == "pdm-gprd-abc"


def test_a_nan_series_is_the_worst_whatever_its_position():
    from pdm_orchestrator.hooks.prometheus import _nan_first_high, _nan_first_low

    now = datetime.now(UTC)
    healthy, broken = ({}, 0.9995, now), ({}, math.nan, now)
    for rows in ([healthy, broken], [broken, healthy]):
        assert math.isnan(min(rows, key=_nan_first_low)[1])
        assert math.isnan(max(rows, key=_nan_first_high)[1])


def test_a_lock_without_a_time_zone_is_unreadable_and_closes_the_gate(monkeypatch):
    from pdm_orchestrator.gate_checks import ExplicitLockUnreadable, explicit_lock

    naive = {"holder": "alice", "reason": "vacuum", "expires_at": "2026-11-25T18:00:00"}
    monkeypatch.setenv("AIRFLOW_VAR_PDM_LOCK_TESTENV", json.dumps(naive))
    with pytest.raises(ExplicitLockUnreadable, match="no time zone"):
        explicit_lock("pdm_lock_testenv")
    monkeypatch.setenv(
        "AIRFLOW_VAR_PDM_LOCK_TESTENV", json.dumps({**naive, "expires_at": "2026-11-25T18:00:00Z"})
    )
    assert explicit_lock("pdm_lock_testenv").holder == "alice"


def test_a_pipeline_is_not_created_after_the_window_closed(tmp_path):
    """The decision was taken in the window; a retry that comes after it closed refuses to create."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.policy import load_policy
    from pdm_orchestrator.gate_checks import window_gate
    from pdm_orchestrator.operators.pipeline import TriggerPdmPipelineOperator
    from tests.support.policies import e2e_policy

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(e2e_policy()))
    policy = load_policy(path).for_environment("gprd")
    operator = TriggerPdmPipelineOperator(
        task_id="trigger_pipeline", environment="gprd", policy_path=str(path), snapshot_task_id="classify"
    )

    def window_only(policy, environment, cls, now, batch=None):
        return [window_gate(policy, environment, cls, now)]

    now = datetime.now(UTC)
    operator.check_gates_still_open(policy, {"run_class": "background"}, {}, now, window_only)  # any time
    with pytest.raises(AirflowFailException, match="gate closed after the decision: gates closed: window"):
        operator.check_gates_still_open(policy, {"run_class": "cleanup"}, {}, now, window_only)
    overridden = {"override_gates": ["window"], "override_reason": "approved in the change request"}
    operator.check_gates_still_open(policy, {"run_class": "cleanup"}, overridden, now, window_only)
