"""Predicted duration of the pending batch, and whether it fits before the window closes.

Today's PDM pipeline runs every pending migration, so how long a run takes depends on what is pending, not
on how long past runs of the same class took: a Thursday-night run after one deployment executes two
migrations, a Saturday run after a quiet week forty. The prediction is therefore per batch:

    (pipeline overhead + the `quantile` of the sum of the pending migrations' durations) × safety factor

Each class's past per-migration durations give its mean and variance when at least `min_samples` are
known; the sum's quantile is then approximated by Σ mean + z·√(Σ variance). With fewer samples (a new
class, a fresh install) a migration counts as the conservative default, GitLab.com's post-deploy time
limit (10 minutes), with no spread. `unknown` always takes its default: nothing
learned about other migrations bounds a migration the classifier could not bound.

`fit_reason` is the second half of "run daily when the work fits": the predicted run must end before the
class's window closes (the low-traffic hours end and traffic rises).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

from include.classification.classes import MigrationClass
from include.gates.deploy_forecast import DurationEstimate


@dataclass(frozen=True)
class BatchDurationSettings:
    """How the batch prediction is made; the policy's gates.deploy_lock.forecast fills these in."""

    overhead: timedelta = timedelta(minutes=10)
    quantile: float = 90.0
    safety_factor: float = 1.5
    min_samples: int = 10


def per_migration_estimate(samples: Iterable[float], quantile: float) -> float:
    """The `quantile` (0–100, linear interpolation) of per-migration durations in seconds."""
    ordered = sorted(float(s) for s in samples if s is not None and math.isfinite(float(s)) and float(s) >= 0)
    if not ordered:
        raise ValueError("no usable duration sample")
    if not 0 <= quantile <= 100:
        raise ValueError(f"quantile must be within [0, 100], got {quantile!r}")
    rank = (len(ordered) - 1) * quantile / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def predict_batch_duration(
    pending: Iterable[MigrationClass],
    history: Mapping[MigrationClass, Iterable[float]],
    defaults: Mapping[MigrationClass, timedelta],
    settings: BatchDurationSettings,
) -> DurationEstimate:
    """The predicted run time of one pipeline run over `pending` (their classes, one entry per migration).

    `history` holds past per-migration durations in seconds by class; `defaults` the conservative estimate
    of a class with too little history (a class missing from both counts as `unknown`'s default).
    The batch is a sum of independent durations, so a sum of per-migration quantiles would grow far faster
    than the batch's own quantile: the estimate is Σ mean + z·√(Σ variance), z the normal quantile of
    `quantile`, and never less than the `quantile` of the slowest class's single migration.
    """
    if settings.safety_factor < 1:
        raise ValueError(f"safety_factor must be at least 1, got {settings.safety_factor!r}")
    if not 0 < settings.quantile < 100:
        raise ValueError(f"quantile must be within (0, 100), got {settings.quantile!r}")
    counts: dict[MigrationClass, int] = {}
    for cls in pending:
        counts[cls] = counts.get(cls, 0) + 1
    z = NormalDist().inv_cdf(settings.quantile / 100.0)
    mean = variance = single = 0.0
    parts: list[str] = []
    for cls in sorted(counts, key=lambda c: c.rank):
        samples = [] if cls is MigrationClass.UNKNOWN else _usable(history.get(cls, ()))
        if len(samples) >= max(2, settings.min_samples):
            cls_mean, cls_var = statistics.fmean(samples), statistics.variance(samples)
            high = per_migration_estimate(samples, settings.quantile)
            source = f"{len(samples)} past"
        else:
            fallback = defaults.get(cls, defaults.get(MigrationClass.UNKNOWN))
            if fallback is None:
                raise ValueError(f"no history and no default duration for class {cls.value}")
            cls_mean, cls_var, high = fallback.total_seconds(), 0.0, fallback.total_seconds()
            source = "default"
        mean += counts[cls] * cls_mean
        variance += counts[cls] * cls_var
        single = max(single, high)
        parts.append(f"{counts[cls]} {cls.value} ({source}, mean {_minutes(cls_mean)})")
    work = max(mean + z * math.sqrt(variance), single) if counts else 0.0
    total = settings.overhead.total_seconds() + work
    predicted = timedelta(seconds=total * settings.safety_factor)
    detail = ", ".join(parts) if parts else "nothing pending"
    basis = (
        f"({_minutes(settings.overhead.total_seconds())} overhead + p{settings.quantile:g} of {detail}: "
        f"{_minutes(work)}) × {settings.safety_factor:g}"
    )
    return DurationEstimate(predicted, basis)


def _usable(samples: Iterable[float]) -> list[float]:
    return [float(s) for s in samples if s is not None and math.isfinite(float(s)) and float(s) >= 0]


def fit_reason(now: datetime, duration: timedelta, closes_at: datetime | None) -> str | None:
    """One line when a run of `duration` started `now` would still run when the window closes, else None."""
    if closes_at is None:
        return None
    ends = now + duration
    if ends <= closes_at:
        return None
    return (
        f"predicted run of {_minutes(duration.total_seconds())} would end "
        f"{ends.astimezone(UTC):%a %H:%M UTC}, after its window closes {closes_at.astimezone(UTC):%a %H:%M UTC}"
    )


def _minutes(seconds: float) -> str:
    minutes = seconds / 60.0
    return f"{minutes:.0f}m" if minutes >= 1 else f"{seconds:.0f}s"
