"""Deploy-lock gate: nothing else may hold the environment while the PDM pipeline runs (product.md §5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from include.deployments import Deployment
from include.gates.deploy_forecast import DeployForecast, describe, overlap_reason
from include.gates.result import GateResult
from include.pipelines import PipelineRun

GATE = "deploy_lock"


@dataclass(frozen=True)
class ExplicitLock:
    """A lock a person or tool placed on the environment; it lapses at `expires_at` (a dead holder's too)."""

    holder: str
    reason: str
    expires_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class DeployLockObservation:
    """What holds the environment now, as read from GitLab and the lock store."""

    active_deployments: list[Deployment] = field(default_factory=list)
    running_deploy_pipelines: list[PipelineRun] = field(default_factory=list)
    running_pdm_pipelines: list[PipelineRun] = field(default_factory=list)
    explicit_lock: ExplicitLock | None = None
    error: str | None = None
    # The next-deployment forecast (policy gates.deploy_lock.forecast); None when the forecast is off.
    forecast: DeployForecast | None = None


def evaluate_deploy_lock(now: datetime, observation: DeployLockObservation) -> GateResult:
    """Open only when no deployment, deploy pipeline, other PDM pipeline or explicit lock holds the environment,
    and (with a forecast) the predicted PDM run ends before the next deployment is expected."""
    if observation.error:
        return GateResult.unevaluable(GATE, f"deploy lock unknown: {observation.error}", now)
    forecast = observation.forecast
    if forecast is not None and forecast.error:
        return GateResult.unevaluable(GATE, f"next-deployment forecast unknown: {forecast.error}", now)
    holders: list[str] = []
    holders += [
        f"deployment {d.id} to {d.environment} is {d.status} ({d.ref or d.sha[:11]})"
        for d in observation.active_deployments
    ]
    holders += [
        f"deploy pipeline {p.id} is {p.status}{f' ({p.note})' if p.note else ''}"
        for p in observation.running_deploy_pipelines
    ]
    holders += [
        f"PDM pipeline {p.id} is already {p.status}{f' ({p.note})' if p.note else ''}"
        for p in observation.running_pdm_pipelines
    ]
    lock = observation.explicit_lock
    if lock and lock.active(now):
        until = f" until {lock.expires_at.isoformat()}" if lock.expires_at else ""
        holders.append(f"explicit lock by {lock.holder}{until}: {lock.reason}")
    overlap = overlap_reason(now, forecast) if forecast is not None else None
    if overlap:
        holders.append(overlap)
    observed: dict[str, Any] = {
        "active_deployments": [d.id for d in observation.active_deployments],
        "running_deploy_pipelines": [p.id for p in observation.running_deploy_pipelines],
        "running_pdm_pipelines": [p.id for p in observation.running_pdm_pipelines],
        "explicit_lock": lock.holder if lock and lock.active(now) else None,
    }
    if forecast is not None:
        observed["next_deployment"] = forecast.expected.to_dict() if forecast.expected else None
        observed["predicted_pdm"] = forecast.duration.to_dict() if forecast.duration else None
    if holders:
        return GateResult(GATE, False, observed, "nothing holds the environment", "; ".join(holders), now)
    return GateResult(
        GATE,
        True,
        observed,
        "nothing holds the environment",
        "no deployment, deploy pipeline, PDM pipeline or lock holds the environment"
        + (f"; {describe(now, forecast)}" if forecast is not None else ""),
        now,
    )
