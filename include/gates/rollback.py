"""Rollback-safety gate: run the PDM only when giving up rollback to older packages is acceptable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from include.deployments import Deployment
from include.gates.result import GateResult

GATE = "rollback_safety"


@dataclass(frozen=True)
class BlockingIssue:
    """An incident or change request that makes now a bad time to lose the ability to roll back."""

    project: str
    iid: int
    title: str
    labels: tuple[str, ...]
    web_url: str = ""


@dataclass(frozen=True)
class RollbackObservation:
    """The deployed package and what is going on in production, as read from GitLab."""

    deployed: Deployment | None = None
    blocking_issues: list[BlockingIssue] = field(default_factory=list)
    error: str | None = None


def evaluate_rollback_safety(
    now: datetime, observation: RollbackObservation, min_bake: timedelta
) -> GateResult:
    """Open when the deployed package has baked for `min_bake` and no incident or change request blocks.

    Running the PDM moves the rollback line to the deployed package: if that package has not proven
    itself yet, or an incident may need a rollback, the PDM must wait.
    """
    if observation.error:
        return GateResult.unevaluable(GATE, f"rollback safety unknown: {observation.error}", now)
    deployed = observation.deployed
    threshold = f"baked ≥ {_human(min_bake)}, no blocking incident or change request"
    if deployed is None or deployed.finished_at is None:
        return GateResult(
            GATE, False, None, threshold, "no finished deployment of the environment found", now
        )
    baked = now - deployed.finished_at
    observed: dict[str, Any] = {
        "package": deployed.ref,
        "sha": deployed.sha,
        "baked_seconds": int(baked.total_seconds()),
        "blocking_issues": [f"{i.project}#{i.iid}" for i in observation.blocking_issues],
    }
    if observation.blocking_issues:
        issues = ", ".join(
            f"{i.project}#{i.iid} {i.title!r} ({', '.join(i.labels)})" for i in observation.blocking_issues
        )
        return GateResult(GATE, False, observed, threshold, f"rollback may be needed: {issues}", now)
    if baked < min_bake:
        ready = deployed.finished_at + min_bake
        return GateResult(
            GATE,
            False,
            observed,
            threshold,
            f"package {deployed.ref or deployed.sha[:11]} has baked {_human(baked)} of {_human(min_bake)}",
            now,
            retry_at=ready,
        )
    return GateResult(
        GATE,
        True,
        observed,
        threshold,
        f"package {deployed.ref or deployed.sha[:11]} has baked {_human(baked)}; no blocking incident",
        now,
    )


def _human(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours >= 48:
        return f"{hours // 24}d {hours % 24}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"
