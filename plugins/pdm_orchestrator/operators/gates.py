"""Operator that waits for the PDM gates, deferred, and returns every gate's verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class WaitForGatesOperator(BaseOperator):
    """Checks the window, traffic, deploy-lock and rollback-safety gates for the run's class.

    Open (or overridden) now: returns at once. Closed: defers to :class:`GatesOpenTrigger`, which sleeps
    until a window opens or re-checks the other gates, freeing the worker slot, until the policy's
    `gates.max_wait`. The outcome is explicit, never a soft fail: the return value is
    `{"status": "open"|"closed", "results": [GateResult...], "overrides": {...}}` and the next task
    decides.

    :param environment: environment name from the policy (gstg, gprd).
    :param policy_path: the policy file.
    :param run_class: the class to schedule for (templated; usually the classify task's XCom).
    """

    template_fields = ("run_class",)
    ui_color = "#fff3cd"

    def __init__(self, *, environment: str, policy_path: str, run_class: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.policy_path = policy_path
        self.run_class = run_class

    def execute(self, context: Context) -> dict[str, Any]:
        from include.classification.classes import MigrationClass
        from include.policy import load_policy
        from pdm_orchestrator.gate_checks import evaluate_gates
        from pdm_orchestrator.params import gate_overrides
        from pdm_orchestrator.triggers.gates import GatesOpenTrigger, next_check

        policy = load_policy(self.policy_path).for_environment(self.environment)
        overrides = gate_overrides(context["params"])
        cls = MigrationClass.parse(self.run_class)
        now = datetime.now(UTC)
        results = evaluate_gates(policy, self.environment, cls, now)
        closed = [r for r in results if not r.open and r.gate not in overrides]
        for result in results:
            self.log.info("gate %s: %s — %s", result.gate, "open" if result.open else "closed", result.reason)
        if not closed:
            return {"status": "open", "results": [r.to_dict() for r in results], "overrides": overrides}
        deadline = now + policy.gates.max_wait
        if next_check(now, closed, deadline, policy.gates.poll_interval) is None:
            return {"status": "closed", "results": [r.to_dict() for r in results], "overrides": overrides}
        self.defer(
            trigger=GatesOpenTrigger(
                environment=self.environment,
                policy_path=self.policy_path,
                run_class=cls.value,
                deadline=deadline.isoformat(),
                poll_seconds=policy.gates.poll_interval.total_seconds(),
                overrides=overrides,
            ),
            method_name="execute_complete",
            timeout=policy.gates.max_wait + timedelta(minutes=10),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from pdm_orchestrator.params import gate_overrides

        return {
            "status": event["status"],
            "results": event["results"],
            "overrides": gate_overrides(context["params"]),
        }
