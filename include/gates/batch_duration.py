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

The DAG and the simulator learn from the same facts, the ones the audit store keeps for every PDM run: the
classes of the migrations the run executed (its `snapshot`) and the pipeline's duration (its `outcome`).
`history_from_batches` turns those per-run facts into per-migration samples (`PastBatch`), and
`predict_pending` is the one call both make.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.gates.deploy_forecast import DurationEstimate

if TYPE_CHECKING:
    from include.policy.model import ForecastSettings


@dataclass(frozen=True)
class BatchDurationSettings:
    """How the batch prediction is made; the policy's gates.deploy_lock.forecast fills these in."""

    overhead: timedelta = timedelta(minutes=10)
    quantile: float = 90.0
    safety_factor: float = 1.5
    min_samples: int = 10
    # What a migration of a class with too little history counts as (predict_pending's defaults).
    per_migration_default: timedelta = timedelta(minutes=10)


def per_migration_estimate(samples: Iterable[float], quantile: float) -> float:
    """The `quantile` (0–100, linear interpolation) of per-migration durations in seconds."""
    ordered = sorted(float(s) for s in samples if math.isfinite(float(s)) and float(s) >= 0)
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
    return [float(s) for s in samples if math.isfinite(float(s)) and float(s) >= 0]


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


@dataclass(frozen=True)
class PastBatch:
    """One past PDM run as the audit store keeps it: how many migrations of each class, and how long it took."""

    classes: Mapping[MigrationClass, int]
    seconds: float


def history_from_batches(
    batches: Iterable[PastBatch], overhead: timedelta
) -> dict[MigrationClass, list[float]]:
    """Per-migration duration samples by class, from whole runs.

    A run's own work (its duration less the pipeline overhead) is shared evenly by its migrations, each
    giving one sample to its class. For a run of one migration, or of one class, that is exact on average;
    in a mixed run a heavy migration lends time to the light ones, which errs on the slow side for them.
    `unknown` learns nothing (its prediction is always the default).
    """
    history: dict[MigrationClass, list[float]] = {}
    for batch in batches:
        count = sum(n for n in batch.classes.values() if n > 0)
        if count == 0 or not math.isfinite(batch.seconds) or batch.seconds < 0:
            continue
        each = max(0.0, batch.seconds - overhead.total_seconds()) / count
        for cls, n in batch.classes.items():
            if n > 0 and cls is not MigrationClass.UNKNOWN:
                history.setdefault(cls, []).extend([each] * n)
    return history


def settings_from_forecast(forecast: ForecastSettings | None) -> BatchDurationSettings | None:
    """The policy's gates.deploy_lock.forecast as batch settings; None when the batch prediction is off."""
    if forecast is None or not forecast.enabled or forecast.per_migration_quantile is None:
        return None
    return BatchDurationSettings(
        overhead=forecast.pipeline_overhead,
        quantile=forecast.per_migration_quantile,
        safety_factor=forecast.safety_factor,
        min_samples=forecast.min_samples,
        per_migration_default=forecast.per_migration_default,
    )


def predict_pending(
    pending: Sequence[MigrationClass], batches: Iterable[PastBatch], settings: BatchDurationSettings | None
) -> DurationEstimate | None:
    """The pending batch's predicted run, learned from past runs' per-batch facts; None without `settings`
    (settings_from_forecast: the policy does not predict per batch, so the class's whole past runs are used)."""
    if settings is None:
        return None
    defaults = {cls: settings.per_migration_default for cls in MigrationClass}
    return predict_batch_duration(
        pending, history_from_batches(batches, settings.overhead), defaults, settings
    )


def describe_batch(pending: Sequence[MigrationClass]) -> str:
    """ "batch of 14 (3 schema_heavy, 1 cleanup)": its size and its heavy classes, strictest first."""
    counts: dict[MigrationClass, int] = {}
    for cls in pending:
        counts[cls] = counts.get(cls, 0) + 1
    heavy = [
        f"{counts[c]} {c.value}"
        for c in sorted(counts, key=lambda c: c.rank, reverse=True)
        if c not in (MigrationClass.NOOP, MigrationClass.BACKGROUND)
    ]
    return f"batch of {len(pending)}" + (f" ({', '.join(heavy)})" if heavy else "")


def batch_fit_reason(
    pending: Sequence[MigrationClass], duration: timedelta, now: datetime, closes_at: datetime | None
) -> str | None:
    """Why the batch does not fit before its window closes, in one line naming the batch; None if it fits."""
    if closes_at is None or fit_reason(now, duration, closes_at) is None:
        return None
    ends = (now + duration).astimezone(UTC)
    return (
        f"{describe_batch(pending)} predicted {_hours(duration.total_seconds())} would end {ends:%a %H:%M} UTC, "
        f"after the window closes {closes_at.astimezone(UTC):%a %H:%M} UTC"
    )


def _hours(seconds: float) -> str:
    minutes = round(seconds / 60.0)
    return f"{minutes // 60}h{minutes % 60:02d}" if minutes >= 60 else f"{minutes}m"
