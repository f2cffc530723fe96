"""Issue 14: the trigger task creates a pipeline only for what was decided, and never twice.

Unit tests of the trigger operator's guards with in-process gate evaluators and GitLab answers (pure
logic); the real processes are exercised by tests/e2e and the chaos campaign."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from include.gates.result import GateResult


@pytest.fixture
def operator_and_policy(tmp_path):
    from include.policy import load_policy
    from pdm_orchestrator.operators.pipeline import TriggerPdmPipelineOperator
    from tests.support.policies import e2e_policy

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(e2e_policy()))
    operator = TriggerPdmPipelineOperator(
        task_id="trigger_pipeline", environment="gprd", policy_path=str(path), snapshot_task_id="classify"
    )
    return operator, load_policy(path).for_environment("gprd")


def _gates(**closed: str):
    def evaluate(policy, environment, cls, now):
        return [
            GateResult(name, name not in closed, None, None, closed.get(name, "ok"))
            for name in ("window", "traffic", "deploy_lock", "rollback_safety")
        ]

    return evaluate


# -- hole 3: stale gates on retry or clear ------------------------------------------------------------
def test_every_gate_is_judged_again_before_the_create(operator_and_policy):
    """Fails before the fix: only the window was re-checked, so a retry created on stale traffic,
    deploy-lock and incident verdicts."""
    from airflow.sdk.exceptions import AirflowFailException

    operator, policy = operator_and_policy
    now = datetime.now(UTC)
    snapshot = {"run_class": "background"}
    for gate, reason in (
        ("traffic", "traffic 900 req/s ≥ threshold 600"),
        ("deploy_lock", "deployment 42 running"),
        ("rollback_safety", "incident #7 severity::1 open"),
    ):
        with pytest.raises(AirflowFailException, match=f"closed after the decision: gates closed: {gate}"):
            operator.check_gates_still_open(policy, snapshot, {}, now, _gates(**{gate: reason}))
    assert operator.check_gates_still_open(policy, snapshot, {}, now, _gates()).go


def test_overrides_still_apply_at_the_recheck(operator_and_policy):
    operator, policy = operator_and_policy
    params = {"override_gates": ["traffic"], "override_reason": "INC-1234 approved by the EOC"}
    verdict = operator.check_gates_still_open(
        policy, {"run_class": "background"}, params, datetime.now(UTC), _gates(traffic="busy")
    )
    assert verdict.go and verdict.overridden == {"traffic": "INC-1234 approved by the EOC"}
