"""The outcome of one gate: open or closed, with what was seen, the bar, and why (product.md §5)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

GATE_NAMES = ("window", "traffic", "deploy_lock", "rollback_safety")
"""Every gate, in the order a run evaluates them (the trigger form's override list, the sensors, the audit)."""


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict at one instant.

    A gate that could not be evaluated is reported closed with the reason (fail closed), never open.
    `retry_at` is when re-evaluating may change the answer (for a window: when it opens); None means
    "poll again later".
    """

    gate: str
    open: bool
    observed: Any
    threshold: Any
    reason: str
    evaluated_at: datetime | None = None
    retry_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for XCom and the audit store."""
        data = asdict(self)
        for key in ("evaluated_at", "retry_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        values = dict(data)
        for key in ("evaluated_at", "retry_at"):
            if values.get(key):
                values[key] = datetime.fromisoformat(values[key])
        return cls(**values)

    @classmethod
    def unevaluable(cls, gate: str, reason: str, now: datetime | None = None) -> GateResult:
        """Fail closed: the gate could not be evaluated, so it is closed with that reason."""
        return cls(gate=gate, open=False, observed=None, threshold=None, reason=reason, evaluated_at=now)
