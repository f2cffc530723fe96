"""Rollback-safety gate: run the PDM only when giving up rollback to older packages is acceptable."""

from __future__ import annotations

import math
from collections.abc import Callable
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
class HealthBounds:
    """Service health the deployed package must show before its rollback path is given up.

    :param apdex_query: PromQL for the apdex (0..1); the worst series counts. None: not checked.
    :param min_apdex: the apdex must be at least this (inclusive).
    :param error_ratio_query: PromQL for the error ratio (0..1); the worst series counts. None: not checked.
    :param max_error_ratio: the error ratio must be at most this (inclusive).
    :param max_staleness: how old a value may be; older counts as no data.
    """

    apdex_query: str | None = None
    min_apdex: float = 0.995
    error_ratio_query: str | None = None
    max_error_ratio: float = 0.01
    max_staleness: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class HealthReading:
    """What Prometheus answered for the health queries (None: no data), or why it could not be asked."""

    apdex: float | None = None
    apdex_at: datetime | None = None
    error_ratio: float | None = None
    error_ratio_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class RollbackObservation:
    """The deployed package and what is going on in production, as read from GitLab (and Prometheus)."""

    deployed: Deployment | None = None
    blocking_issues: list[BlockingIssue] = field(default_factory=list)
    error: str | None = None
    health: HealthReading | None = None  # read only when the policy sets gates.rollback.health
    incident_check: bool = True  # False: the policy chose `incident_projects: []` (said in the reason)


def evaluate_rollback_safety(
    now: datetime, observation: RollbackObservation, min_bake: timedelta, health: HealthBounds | None = None
) -> GateResult:
    """Open when the deployed package has baked for `min_bake`, no incident or change request blocks, and
    (with `health`) apdex and error ratio are within bounds; no data, stale data or NaN there is closed.

    Running the PDM moves the rollback line to the deployed package: if that package has not proven
    itself yet, or an incident may need a rollback, the PDM must wait.
    """
    if observation.error:
        return GateResult.unevaluable(GATE, f"rollback safety unknown: {observation.error}", now)
    deployed = observation.deployed
    threshold = f"baked ≥ {_human(min_bake)}, no blocking incident or change request"
    if not observation.incident_check:
        threshold = f"baked ≥ {_human(min_bake)} (incident and change-request checks off by policy)"
    if health is not None:
        threshold += ", " + _health_bar(health)
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
    healthy = ""
    if not observation.incident_check:
        healthy = "; incident and change-request checks off by policy (gates.rollback.incident_projects: [])"
    if health is not None:
        problem, values = _health_problem(now, observation.health, health)
        observed["health"] = values
        if problem:
            return GateResult(GATE, False, observed, threshold, problem, now)
        healthy = "; " + ", ".join(f"{k} {v:.4g}" for k, v in values.items() if v is not None)
    return GateResult(
        GATE,
        True,
        observed,
        threshold,
        f"package {deployed.ref or deployed.sha[:11]} has baked {_human(baked)}; "
        + ("no blocking incident" if observation.incident_check else "NOT checked for incidents")
        + healthy,
        now,
    )


def _health_bar(bounds: HealthBounds) -> str:
    parts = []
    if bounds.apdex_query:
        parts.append(f"apdex ≥ {bounds.min_apdex:g}")
    if bounds.error_ratio_query:
        parts.append(f"error ratio ≤ {bounds.max_error_ratio:g}")
    return ", ".join(parts) or "no health bound"


def _health_problem(
    now: datetime, reading: HealthReading | None, bounds: HealthBounds
) -> tuple[str | None, dict[str, float | None]]:
    """Why health keeps the gate closed (None: within bounds), and the values seen."""
    if reading is None:
        return "service health unknown: not read", {}
    values = {"apdex": reading.apdex, "error_ratio": reading.error_ratio}
    if reading.error:
        return f"service health unknown: {reading.error}", values
    checks: tuple[tuple[str, str | None, float | None, datetime | None, Callable[[float], bool], str], ...] = (
        ("apdex", bounds.apdex_query, reading.apdex, reading.apdex_at, lambda v: v >= bounds.min_apdex,
         f"below minimum {bounds.min_apdex:g}"),
        ("error ratio", bounds.error_ratio_query, reading.error_ratio, reading.error_ratio_at,
         lambda v: v <= bounds.max_error_ratio, f"above maximum {bounds.max_error_ratio:g}"),
    )  # fmt: skip
    for name, query, value, at, within, breach in checks:
        if not query:
            continue
        if value is None:
            return f"{name} unknown: {query} returned no data", values
        if not math.isfinite(value):
            return f"{name} unknown: invalid value {value!r} from {query}", values
        if at is not None and now - at > bounds.max_staleness:
            return (
                f"{name} data stale: newest value is {_age(now - at)} old (max {_age(bounds.max_staleness)})",
                values,
            )
        if not within(value):
            return f"{name} {value:.4g} {breach}: rollback may be needed", values
    return None, values


def _human(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours >= 48:
        return f"{hours // 24}d {hours % 24}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def _age(delta: timedelta) -> str:
    """Like _human, with seconds when under a minute (staleness bounds are often short)."""
    seconds = int(delta.total_seconds())
    return f"{seconds}s" if 0 <= seconds < 60 else _human(delta)
