"""The scores of one policy's outcome: computed from the outcome and the world only (never from the policy).

Definitions (docs/evaluation.md repeats them for readers):
- peak: a 5-minute step whose request rate is at or above the `peak_percentile` of the whole horizon;
- heavy minutes at peak: minutes of data, schema_heavy and cleanup migrations (their real class) executing
  in peak steps;
- load at peak: Σ over every executed migration of its minutes in peak steps × the request rate then,
  in migration-minutes × 1000 req/s;
- deploy minutes blocked / deployments delayed: minutes a deployment waited for a running PDM, and how
  many waited at all;
- incident rollbacks lost: runs that started while an incident of severity ≤ `rollback_severity` was
  open and moved the rollback line (the deployed package became the oldest one it is safe to return to);
- bake violations: runs that moved the line to a package that had baked less than the policy's `min_bake`
  for the strictest real class the run executed; bake p50 is the median package age at those runs;
- pending age: from the moment a migration is pending (its package finished deploying) to the start of
  the run that executed it; still pending at the end counts its age at the end;
- runs, and manual actions (release manager commands, annotations, approvals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from include.classification.classes import MigrationClass, most_restrictive
from include.simulation.engine import Outcome
from include.simulation.inputs import STEP_MINUTES
from include.simulation.world import HEAVY_CLASSES, World

if TYPE_CHECKING:
    from include.policy.model import Policy

# Scores where lower is safer; the acceptance bar compares the orchestrator with the manual policies on these.
SAFETY_SCORES = (
    "heavy_peak_min",
    "peak_load",
    "deploy_blocked_min",
    "deploys_delayed",
    "incident_rollbacks",
    "bake_violations",
)
# The oracle's objective, compared lexicographically (docs/evaluation.md, "The oracle").
ORACLE_OBJECTIVE = (
    "heavy_peak_min",
    "peak_load",
    "deploy_blocked_min",
    "incident_rollbacks",
    "bake_violations",
)


@dataclass
class Scores:
    policy: str
    heavy_peak_min: float
    peak_load: float
    deploy_blocked_min: float
    deploys_delayed: int
    incident_rollbacks: int
    bake_violations: int
    bake_p50_h: float | None
    pending_age_h: dict[str, tuple[float | None, float | None]]
    max_pending_age_h: float
    pending_p95_h: float | None
    runs: int
    manual_actions: int
    notes: dict[str, Any] = field(default_factory=dict)

    def objective(self) -> tuple[float, ...]:
        """The oracle's lexicographic objective; rounded so float noise never decides an order."""
        return tuple(round(float(getattr(self, name)), 6) for name in ORACLE_OBJECTIVE)


class Meter:
    """Integrals over the horizon's 5-minute steps: peak minutes and peak load between two instants."""

    def __init__(self, world: World) -> None:
        traffic = np.asarray(world.traffic, dtype=float)
        self.threshold = float(np.percentile(traffic, world.peak_percentile))
        peak = traffic >= self.threshold
        self.peak = peak
        peak_rate = np.where(peak, traffic / 1000.0, 0.0)
        # Plain lists: the oracle asks these millions of times, and list indexing beats numpy scalars.
        self._peak = peak.astype(float).tolist()
        self._rate = peak_rate.tolist()
        self._peak_cum = np.concatenate([[0.0], np.cumsum(peak * float(STEP_MINUTES))]).tolist()
        self._load_cum = np.concatenate([[0.0], np.cumsum(peak_rate * STEP_MINUTES)]).tolist()
        self._last = traffic.size - 1
        self.end = float(traffic.size * STEP_MINUTES)

    def _integral(self, cum: list[float], per_minute: list[float], a: float, b: float) -> float:
        a, b = max(0.0, a), min(self.end, b)
        if b <= a:
            return 0.0
        last = self._last
        i = min(int(a // STEP_MINUTES), last)
        j = min(int(b // STEP_MINUTES), last)
        return (cum[j] + (b - j * STEP_MINUTES) * per_minute[j]) - (
            cum[i] + (a - i * STEP_MINUTES) * per_minute[i]
        )

    def peak_minutes(self, a: float, b: float) -> float:
        """Minutes of [a, b) that fall in peak steps."""
        return self._integral(self._peak_cum, self._peak, a, b)

    def peak_load(self, a: float, b: float) -> float:
        """∫ rate/1000 over the peak minutes of [a, b)."""
        return self._integral(self._load_cum, self._rate, a, b)


def score(world: World, outcome: Outcome, policy: Policy, meter: Meter | None = None) -> Scores:
    """The scores of `outcome`; `policy` is the product policy (for the per-class minimum bake)."""
    meter = meter or Meter(world)
    heavy = load = 0.0
    ages: dict[MigrationClass, list[float]] = {cls: [] for cls in MigrationClass}
    bakes: list[float] = []
    violations = incident_losses = 0
    for run in outcome.runs:
        for item in run.executed:
            minutes = meter.peak_minutes(item.start, item.end)
            if item.migration.actual in HEAVY_CLASSES:
                heavy += minutes
            load += meter.peak_load(item.start, item.end)
            ages[item.migration.cls].append(run.start - item.pending_since)
        if not run.line_moved or run.deployment is None:
            continue
        bake = run.start - run.deployment.end
        bakes.append(bake)
        strictest = most_restrictive(i.migration.actual for i in run.executed)
        if bake < policy.class_rule(strictest).min_bake.total_seconds() / 60.0:
            violations += 1
        if any(i.severity <= world.rollback_severity and i.open_at(run.start) for i in world.incidents):
            incident_losses += 1
    for migration, since in outcome.unexecuted:
        ages[migration.cls].append(world.minutes - since)
    blocked = [d.blocked for d in outcome.deployments if d.blocked > 0]
    everything = [a for values in ages.values() for a in values]
    return Scores(
        policy=outcome.policy,
        heavy_peak_min=round(heavy, 3),
        peak_load=round(load, 3),
        deploy_blocked_min=round(float(sum(blocked)), 3),
        deploys_delayed=len(blocked),
        incident_rollbacks=incident_losses,
        bake_violations=violations,
        bake_p50_h=_hours(np.percentile(bakes, 50)) if bakes else None,
        pending_age_h={
            cls.value: ((_hours(np.percentile(v, 50)), _hours(np.percentile(v, 95))) if v else (None, None))
            for cls, v in ages.items()
        },
        max_pending_age_h=_hours(max(everything)) if everything else 0.0,
        pending_p95_h=_hours(np.percentile(everything, 95)) if everything else None,
        runs=len(outcome.runs),
        manual_actions=outcome.manual_actions,
    )


def _hours(minutes: float) -> float:
    return round(float(minutes) / 60.0, 2)
