"""Deferrable wait for the PDM gates: re-checks them without holding a worker slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from include.gates.result import GateResult


class GatesOpenTrigger(BaseTrigger):
    """Waits until every gate is open (or overridden), or until the deadline; then yields the verdicts.

    While a gate is closed only because of time (a window that opens later, a package still baking), it
    sleeps until exactly that instant instead of polling; other closed gates are re-checked every
    `poll_seconds`. It yields `{"status": "open" | "closed", "results": [...]}`; it never opens a gate
    it could not evaluate. No side effects: safe to run more than once.
    """

    def __init__(
        self,
        *,
        environment: str,
        policy_path: str,
        run_class: str,
        deadline: str,
        poll_seconds: float = 60.0,
        overrides: dict[str, str] | None = None,
        gates: list[str] | None = None,
        batch: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.batch = list(batch) if batch is not None else None  # classes the run would execute
        self.gates = list(gates) if gates else None  # one sensor's gate; None: all of them
        self.environment = environment
        self.policy_path = policy_path
        self.run_class = run_class
        self.deadline = deadline
        self.poll_seconds = poll_seconds
        self.overrides = overrides or {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "environment": self.environment,
                "policy_path": self.policy_path,
                "run_class": self.run_class,
                "deadline": self.deadline,
                "poll_seconds": self.poll_seconds,
                "overrides": self.overrides,
                "gates": self.gates,
                "batch": self.batch,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from include.classification.classes import MigrationClass
        from include.policy import load_policy
        from pdm_orchestrator.gate_checks import evaluate_gates

        deadline = datetime.fromisoformat(self.deadline)
        cls = MigrationClass.parse(self.run_class)
        policy = await asyncio.to_thread(load_policy, self.policy_path)

        def check_now() -> tuple[datetime, list[GateResult]]:
            # The instant is taken on the worker thread: when many triggers share the triggerer's thread pool a
            # check may wait its turn, and asking the sources about the moment it was queued would miss a gate
            # that opened meanwhile and cost a whole poll interval.
            moment = datetime.now(UTC)
            if self.gates:
                from pdm_orchestrator.sensors.gates import evaluate_gate

                return moment, [
                    evaluate_gate(policy, self.environment, cls, moment, g, self.batch) for g in self.gates
                ]
            return moment, evaluate_gates(policy, self.environment, cls, moment, self.batch)

        while True:
            now, results = await asyncio.to_thread(check_now)
            closed = [r for r in results if not r.open and r.gate not in self.overrides]
            payload = [r.to_dict() for r in results]
            if not closed:
                yield TriggerEvent({"status": "open", "results": payload})
                return
            wake = next_check(now, closed, deadline, timedelta(seconds=self.poll_seconds))
            if wake is None:
                yield TriggerEvent({"status": "closed", "results": payload, "deadline": self.deadline})
                return
            self.log.info(
                "gates closed (%s); next check at %s",
                "; ".join(f"{r.gate}: {r.reason}" for r in closed),
                wake.isoformat(),
            )
            await asyncio.sleep(max(0.0, (wake - datetime.now(UTC)).total_seconds()))


def next_check(
    now: datetime, closed: list[GateResult], deadline: datetime, poll: timedelta
) -> datetime | None:
    """When to look again, or None when nothing can open before the deadline.

    A gate with `retry_at` cannot open before it (time-bound: window, bake time); the run wakes at the
    latest such instant. Other closed gates need polling.
    """
    if now >= deadline:
        return None
    timed = [r.retry_at for r in closed if r.retry_at is not None]
    if any(t > deadline for t in timed):
        return None  # e.g. the window opens after this run's wait bound: record it, do not wait in vain
    earliest = max(timed, default=now)
    needs_polling = len(timed) < len(closed)
    wake = max(earliest, now + poll) if needs_polling else max(earliest, now + timedelta(seconds=1))
    return min(wake, deadline)
