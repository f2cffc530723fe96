"""Window gate: the policy's calendar allows this class now (allow windows minus change locks)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.gates.result import GateResult

if TYPE_CHECKING:
    from include.policy.learned import TrafficProfile
    from include.policy.model import Policy

GATE = "window"


def evaluate_window(
    now: datetime,
    policy: Policy,
    cls: MigrationClass,
    profile: TrafficProfile | None = None,
    profile_error: str | None = None,
) -> GateResult:
    """Open inside an allowed window for `cls`; closed otherwise, with when the next one opens.

    `retry_at` is the next opening, so a waiting run sleeps until exactly then instead of polling.
    `profile` (a TrafficProfile) and `profile_error` matter only for a class with learned windows.
    """
    if profile is not None or profile_error is not None:
        verdict = policy.window_verdict(cls, now, profile=profile, profile_error=profile_error)
    else:
        verdict = policy.window_verdict(cls, now)
    observed = {"window": verdict.window, "lock": getattr(verdict, "lock", None)}
    threshold = {"class": cls.value, "windows": list(policy.class_rule(cls).windows)}
    if verdict.allowed:
        observed["closes_at"] = verdict.closes_at.isoformat() if verdict.closes_at else None
        return GateResult(GATE, True, observed, threshold, verdict.reason, now)
    next_open = verdict.next_opens_at
    observed["next_opens_at"] = next_open.isoformat() if next_open else None
    return GateResult(GATE, False, observed, threshold, verdict.reason, now, retry_at=next_open)
