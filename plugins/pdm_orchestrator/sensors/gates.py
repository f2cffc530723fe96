"""One deferrable sensor per PDM gate (window and low traffic, no deploy lock, rollback safety), so the graph
shows which gate holds a run: that sensor is the one deferred.

Each sensor follows Airflow's conventions: `poke()` answers for the classic modes, `deferrable=True` (default)
frees the worker slot while waiting (the trigger re-checks only this gate), `timeout` bounds the wait, and
`soft_fail` stays False — a gate still closed at `gates.max_wait` is an explicit result (`open: false`) that the
decide step turns into an outcome, never a skip (see the Airflow notes on apache/airflow#61130). An overridden
gate returns at once, marked overridden with who and why, and the sensor's log says so.

Sensors finish at different times, so their answers are not one instant's: `recheck_all` evaluates every gate
again, together, for the decide step, which triggers only if all are open (or overridden) then.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.classification.classes import MigrationClass
    from include.policy.model import Policy

# gate → task id in the graph (names a release manager reads in the grid)
GATE_TASKS: dict[str, str] = {
    "window": "gate_window",
    "traffic": "gate_low_traffic",
    "deploy_lock": "gate_no_deploy_lock",
    "rollback_safety": "gate_rollback_safe",
}


def evaluate_gate(
    policy: Policy,
    environment: str,
    cls: MigrationClass,
    now: datetime,
    gate: str,
    batch: list[str] | None = None,
) -> Any:
    """One gate's verdict (the same checks as the decision's), for a sensor or its trigger; `batch` is the
    classes of the migrations the run would execute (the window's fit and the deploy-lock forecast)."""
    from pdm_orchestrator import gate_checks

    env_policy = policy.for_environment(environment)
    if gate == "window":
        return gate_checks.window_gate(env_policy, environment, cls, now, batch)
    if gate == "traffic":
        return gate_checks.traffic_gate(env_policy, environment, cls, now)
    if gate == "deploy_lock":
        return gate_checks.deploy_lock_gate(env_policy, environment, now, cls, batch)
    if gate == "rollback_safety":
        return gate_checks.rollback_gate(env_policy, environment, cls, now)
    raise ValueError(f"unknown gate {gate!r} (known: {', '.join(GATE_TASKS)})")


class GateSensor(BaseSensorOperator):
    """Waits until one gate is open (or overridden) for the run's class; returns that gate's verdict.

    :param gate: window, traffic, deploy_lock or rollback_safety.
    :param environment: the policy's environment name.
    :param policy_path: the policy file.
    :param run_class: the class to schedule for (templated; the classify task's XCom).
    :param snapshot_task_id: the task whose XCom is the run's snapshot; its batch (the classes of the
        migrations the run would execute) is what the window's fit and the deploy-lock forecast predict.
        None: judged on the run class alone.
    """

    template_fields = ("run_class",)
    ui_color = "#fff3cd"

    def __init__(
        self,
        *,
        gate: str,
        environment: str,
        policy_path: str,
        run_class: str,
        snapshot_task_id: str | None = None,
        deferrable: bool = True,
        poke_interval: float = 60,
        timeout: float = 7 * 24 * 3600,
        **kwargs: Any,
    ) -> None:
        if gate not in GATE_TASKS:
            raise ValueError(f"GateSensor: unknown gate {gate!r} (known: {', '.join(GATE_TASKS)})")
        kwargs.setdefault("soft_fail", False)
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.gate = gate
        self.environment = environment
        self.policy_path = policy_path
        self.run_class = run_class
        self.snapshot_task_id = snapshot_task_id
        self.deferrable = deferrable

    def _inputs(self, context: Context) -> tuple[Policy, MigrationClass, dict[str, str]]:
        from include.classification.classes import MigrationClass
        from include.policy import load_policy
        from pdm_orchestrator.params import gate_overrides

        policy = load_policy(self.policy_path).for_environment(self.environment)
        return policy, MigrationClass.parse(self.run_class), gate_overrides(context["params"])

    def _batch(self, context: Context) -> list[str] | None:
        """The run's batch from the snapshot's XCom (None without a snapshot task)."""
        if self.snapshot_task_id is None:
            return None
        from pdm_orchestrator.run_steps import batch_classes

        snapshot = context["ti"].xcom_pull(task_ids=self.snapshot_task_id)
        return batch_classes(snapshot) if snapshot else None

    def _overridden(self, context: Context, reason: str) -> dict[str, Any]:
        user = getattr(context["dag_run"], "triggering_user_name", None) or "unknown"
        self.log.info(
            "gate %s: OVERRIDDEN by %s — %s (not evaluated by this sensor)", self.gate, user, reason
        )
        return {"gate": self.gate, "open": True, "overridden": True, "override_user": user, "reason": reason}

    def poke(self, context: Context) -> PokeReturnValue | bool:
        policy, cls, overrides = self._inputs(context)
        if self.gate in overrides:
            return PokeReturnValue(True, self._overridden(context, overrides[self.gate]))
        batch = self._batch(context)
        result = evaluate_gate(policy, self.environment, cls, datetime.now(UTC), self.gate, batch)
        self.log.info("gate %s: %s — %s", self.gate, "open" if result.open else "closed", result.reason)
        return PokeReturnValue(result.open, result.to_dict()) if result.open else False

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from pdm_orchestrator.triggers.gates import GatesOpenTrigger, next_check

        policy, cls, overrides = self._inputs(context)
        if self.gate in overrides:
            return self._overridden(context, overrides[self.gate])
        now = datetime.now(UTC)
        batch = self._batch(context)
        result = evaluate_gate(policy, self.environment, cls, now, self.gate, batch)
        self.log.info("gate %s: %s — %s", self.gate, "open" if result.open else "closed", result.reason)
        if result.open:
            return result.to_dict()
        deadline = min(now + policy.gates.max_wait, now + timedelta(seconds=self.timeout))
        if next_check(now, [result], deadline, policy.gates.poll_interval) is None:
            self.log.info(
                "gate %s stays closed past the wait bound (%s): explicit closed result", self.gate, deadline
            )
            return result.to_dict()
        self.defer(
            trigger=GatesOpenTrigger(
                environment=self.environment,
                policy_path=self.policy_path,
                run_class=cls.value,
                deadline=deadline.isoformat(),
                poll_seconds=policy.gates.poll_interval.total_seconds(),
                gates=[self.gate],
                batch=batch,
            ),
            method_name="execute_complete",
            timeout=(deadline - now) + timedelta(minutes=10),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        results: list[dict[str, Any]] = event["results"]
        (result,) = [r for r in results if r["gate"] == self.gate]
        self.log.info("gate %s: %s — %s", self.gate, "open" if result["open"] else "closed", result["reason"])
        return result


def recheck_all(
    environment: str, policy_path: str, run_class: str, context: Context, batch: list[str] | None = None
) -> dict[str, Any]:
    """Every gate evaluated again at one instant, for the decide step (the sensors' answers are older);
    `batch` as for the sensors."""
    from include.classification.classes import MigrationClass
    from include.policy import load_policy
    from pdm_orchestrator.gate_checks import evaluate_gates
    from pdm_orchestrator.params import gate_overrides

    policy = load_policy(policy_path).for_environment(environment)
    results = evaluate_gates(policy, environment, MigrationClass.parse(run_class), datetime.now(UTC), batch)
    overrides = gate_overrides(context["params"])
    closed = [r for r in results if not r.open and r.gate not in overrides]
    return {
        "status": "closed" if closed else "open",
        "results": [r.to_dict() for r in results],
        "overrides": overrides,
    }
