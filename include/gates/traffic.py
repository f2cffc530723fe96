"""Low-traffic gate: the request rate stayed below the threshold for the sustain period (product.md §5)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from include.gates.result import GateResult

GATE = "traffic"


@dataclass(frozen=True)
class TrafficSettings:
    """How to judge traffic; `threshold` is absolute (req/s) unless `mode` is baseline_percentile."""

    query: str
    mode: str = "absolute"  # absolute | baseline_percentile
    threshold: float = 600.0
    percentile: float = 30.0
    baseline_weeks: int = 4
    sustain: timedelta = timedelta(minutes=10)
    max_staleness: timedelta = timedelta(minutes=5)
    health_query: str | None = None
    min_health: float = 0.999
    max_gap: timedelta | None = None  # largest hole allowed between samples; default sustain / 4 (≥ 30 s)


@dataclass(frozen=True)
class TrafficObservation:
    """What Prometheus said: recent samples over the sustain period, the baseline, health; or an error."""

    samples: list[tuple[datetime, float]] = field(default_factory=list)
    baseline: float | None = None
    health: float | None = None
    health_at: datetime | None = None
    error: str | None = None


def evaluate_traffic(now: datetime, observation: TrafficObservation, settings: TrafficSettings) -> GateResult:
    """Open only if every sample of the last `sustain` is below the threshold, the samples cover that period
    without gaps, the newest is fresh, and database health (if configured) is good. Anything else: closed."""
    if observation.error:
        return GateResult.unevaluable(GATE, f"traffic unknown: {observation.error}", now)
    if settings.mode == "baseline_percentile":
        threshold = observation.baseline
        bar = f"p{settings.percentile:g} of this hour-of-week over {settings.baseline_weeks} weeks"
        if threshold is None or not math.isfinite(threshold):
            return GateResult.unevaluable(GATE, f"traffic baseline unknown: no history for {bar}", now)
    else:
        threshold = settings.threshold
        bar = "absolute threshold"
    window_start = now - settings.sustain
    # A little slack on both sides: Prometheus' clock and ours may differ by a moment.
    slack = timedelta(seconds=5)
    recent = sorted(
        (t, v) for t, v in observation.samples if window_start - timedelta(seconds=1) <= t <= now + slack
    )
    if not recent:
        return GateResult(
            GATE,
            False,
            None,
            threshold,
            f"traffic unknown: no data in the last {_human(settings.sustain)}",
            now,
        )
    bad = [(t, v) for t, v in recent if not math.isfinite(v) or v < 0]
    if bad:
        return GateResult(
            GATE,
            False,
            None,
            threshold,
            f"traffic unknown: invalid sample {bad[0][1]!r} at {bad[0][0]:%H:%M:%S}",
            now,
        )
    newest_at, newest = recent[-1]
    if now - newest_at > settings.max_staleness:
        return GateResult(
            GATE,
            False,
            newest,
            threshold,
            f"traffic data stale: newest sample is {_human(now - newest_at)} old",
            now,
        )
    max_gap = settings.max_gap or max(timedelta(seconds=30), settings.sustain / 4)
    points = [window_start, *(t for t, _ in recent)]
    gaps = [b - a for a, b in zip(points, points[1:], strict=False)]
    if gaps and max(gaps) > max_gap:
        return GateResult(
            GATE,
            False,
            newest,
            threshold,
            f"traffic data has a {_human(max(gaps))} gap in the last {_human(settings.sustain)}",
            now,
        )
    peak_at, peak = max(recent, key=lambda s: s[1])
    if peak >= threshold:
        return GateResult(
            GATE,
            False,
            peak,
            threshold,
            f"traffic {peak:.1f} req/s ≥ threshold {threshold:.1f} ({bar}) at {peak_at:%H:%M:%S} UTC, within the last {_human(settings.sustain)}",
            now,
        )
    if settings.health_query:
        if observation.health is None or not math.isfinite(observation.health):
            return GateResult(
                GATE, False, newest, threshold, "database health unknown: no data for the health query", now
            )
        if observation.health < settings.min_health:
            return GateResult(
                GATE,
                False,
                newest,
                threshold,
                f"database health {observation.health:.4f} < {settings.min_health:.4f}",
                now,
            )
    return GateResult(
        GATE,
        True,
        peak,
        threshold,
        f"traffic ≤ {peak:.1f} req/s, below {threshold:.1f} ({bar}) for {_human(settings.sustain)}",
        now,
    )


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"
