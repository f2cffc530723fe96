"""Low-traffic gate: the request rate stayed below the threshold for the sustain period (product.md §5).

Pure rule over what Prometheus answered; the hook (plugins/.../hooks/prometheus.py) does the asking.

Coverage, decided here: the samples are the query's value at evenly spaced instants (a Prometheus range
query at `resolution`). An instant without a value means Prometheus had nothing there (target down,
staleness marker, recording rule not evaluated). The sustain period counts as covered when no two
consecutive instants, and neither the start of the period and the first instant, are further apart than
`max_gap`: by default 3 × the resolution (two missed points are tolerated, a third is a hole), or a quarter
of the sustain period when the resolution is unknown. The end of the period is judged by `max_staleness`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from include.gates.result import GateResult

if TYPE_CHECKING:
    from include.classification.classes import MigrationClass
    from include.policy.model import Policy

GATE = "traffic"
MODES = ("absolute", "baseline_percentile")
CLOCK_SLACK = timedelta(seconds=5)  # Prometheus' clock and ours may disagree by a moment


@dataclass(frozen=True)
class TrafficSettings:
    """How the traffic gate judges an environment.

    :param query: PromQL returning one series; `{environment}` is replaced by the environment name.
    :param mode: "absolute" (below `threshold` req/s) or "baseline_percentile" (below the `percentile`-th
        percentile of the same hour-of-week over the last `baseline_weeks` weeks).
    :param sustain: how long traffic must have stayed below the threshold.
    :param max_staleness: how old the newest sample may be.
    :param health_query: optional PromQL for database health (e.g. Patroni apdex); the worst series counts.
    :param min_health: the health value the database must reach (inclusive).
    :param max_gap: the largest hole allowed between samples; None = 3 × the sample resolution.
    """

    query: str
    mode: str = "absolute"
    threshold: float = 600.0
    percentile: float = 30.0
    baseline_weeks: int = 4
    sustain: timedelta = timedelta(minutes=10)
    max_staleness: timedelta = timedelta(minutes=5)
    health_query: str | None = None
    min_health: float = 0.999
    max_gap: timedelta | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"TrafficSettings.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "absolute" and not (math.isfinite(self.threshold) and self.threshold >= 0):
            raise ValueError(
                f"TrafficSettings.threshold must be a number of req/s ≥ 0, got {self.threshold!r}"
            )
        if not 0 <= self.percentile <= 100:
            raise ValueError(f"TrafficSettings.percentile must be within 0..100, got {self.percentile!r}")
        if self.baseline_weeks < 1:
            raise ValueError(
                f"TrafficSettings.baseline_weeks must be at least 1, got {self.baseline_weeks!r}"
            )
        for name in ("sustain", "max_staleness"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"TrafficSettings.{name} must be positive, got {getattr(self, name)}")
        if self.max_gap is not None and self.max_gap <= timedelta(0):
            raise ValueError(f"TrafficSettings.max_gap must be positive, got {self.max_gap}")

    def describe_threshold(self) -> str:
        """Where the bar comes from, in the words the reason uses."""
        if self.mode == "baseline_percentile":
            return f"p{self.percentile:g} of this hour-of-week over {self.baseline_weeks} weeks"
        return "absolute"


@dataclass(frozen=True)
class TrafficObservation:
    """What Prometheus said for one environment, or why it said nothing.

    :param samples: (time, req/s) over the sustain period, oldest first or in any order.
    :param baseline: the learned threshold for now (baseline mode), None when history has nothing.
    :param health: the worst database-health value, with `health_at` the time it was taken.
    :param resolution: the spacing Prometheus was asked to return samples at (sets the default max gap).
    :param error: why Prometheus could not be asked (names the endpoint); the gate is then closed.
    :param newest_sample_at: when the newest sample was really taken; range-query points carry evaluation
        times (any sample within Prometheus' lookback), so staleness is judged on this when known.
    """

    samples: list[tuple[datetime, float]] = field(default_factory=list)
    baseline: float | None = None
    health: float | None = None
    health_at: datetime | None = None
    resolution: timedelta | None = None
    error: str | None = None
    newest_sample_at: datetime | None = None  # the newest raw sample's own time (PromQL timestamp())


def settings_for_class(policy: Policy, cls: MigrationClass) -> TrafficSettings:
    """The traffic rule's settings for a class: the class threshold overrides the gate default. One place, so
    the DAG's gate checks and the simulator cannot drift apart."""
    gate = policy.gates.traffic
    rule = policy.class_rule(cls)
    threshold = rule.traffic_threshold if rule.traffic_threshold is not None else gate.threshold
    return TrafficSettings(
        query=gate.query,
        mode=gate.mode,
        threshold=threshold,
        percentile=gate.percentile,
        baseline_weeks=gate.baseline_weeks,
        sustain=gate.sustain,
        max_staleness=gate.max_staleness,
        health_query=gate.health_query,
        min_health=gate.min_health,
    )


def evaluate_traffic(now: datetime, observation: TrafficObservation, settings: TrafficSettings) -> GateResult:
    """Open only if every sample of the last `sustain` is below the threshold, the samples cover that
    period, the newest is fresher than `max_staleness`, and database health (if configured) is at least
    `min_health`. Anything else (no data, stale, gaps, NaN/Inf, negative rates, an error) is closed, and
    the reason says which; `observed` is the highest rate seen (or the newest, when data is unusable)."""
    if now.tzinfo is None:
        raise ValueError(f"evaluate_traffic needs a timezone-aware now, got naive {now.isoformat()}")
    bar = settings.describe_threshold()
    window_start = now - settings.sustain
    details: dict[str, Any] = {
        "mode": settings.mode,
        "sustain_seconds": settings.sustain.total_seconds(),
        "window_start": window_start.isoformat(),
    }

    def closed(reason: str, observed: float | None, threshold: float | None) -> GateResult:
        return GateResult(GATE, False, observed, threshold, reason, now, details=details)

    if observation.error:
        return closed(f"traffic unknown: {observation.error}", None, None)

    threshold = settings.threshold
    if settings.mode == "baseline_percentile":
        baseline = observation.baseline
        details["baseline"] = baseline
        if baseline is None or not math.isfinite(baseline) or baseline < 0:
            return closed(f"traffic baseline unknown: no usable history for the {bar}", None, None)
        threshold = baseline

    recent = sorted(
        (t, v) for t, v in observation.samples if window_start - CLOCK_SLACK <= t <= now + CLOCK_SLACK
    )
    details["samples"] = len(recent)
    if not recent:
        return closed(f"traffic unknown: no data in the last {_human(settings.sustain)}", None, threshold)

    for at, value in recent:
        if not math.isfinite(value) or value < 0:
            what = "not a number" if math.isnan(value) else "infinite" if math.isinf(value) else "negative"
            return closed(
                f"traffic unknown: invalid sample {value!r} ({what}) at {_clock(at)}", None, threshold
            )

    newest_at, newest = recent[-1]
    if observation.newest_sample_at is not None:
        newest_at = min(newest_at, observation.newest_sample_at)
    details["newest_sample_at"] = newest_at.isoformat()
    age = now - newest_at
    if age > settings.max_staleness:
        return closed(
            f"traffic data stale: newest sample at {_clock(newest_at)} is {_human(age)} old "
            f"(max {_human(settings.max_staleness)})",
            newest,
            threshold,
        )

    max_gap = settings.max_gap or (
        3 * observation.resolution if observation.resolution else settings.sustain / 4
    )
    details["max_gap_seconds"] = max_gap.total_seconds()
    edges = [window_start, *(t for t, _ in recent)]
    gap, gap_start, gap_end = max((b - a, a, b) for a, b in zip(edges, edges[1:], strict=False))
    if gap > max_gap:
        return closed(
            f"traffic data has a {_human(gap)} gap ({_clock(gap_start, zone=False)}–{_clock(gap_end)}) in the last "
            f"{_human(settings.sustain)} (max {_human(max_gap)})",
            newest,
            threshold,
        )

    peak_at, peak = max(recent, key=lambda sample: (sample[1], sample[0]))
    if peak >= threshold:
        return closed(
            f"traffic {peak:.1f} req/s ≥ threshold {threshold:.1f} ({bar}) at {_clock(peak_at)}",
            peak,
            threshold,
        )

    if settings.health_query:
        health, health_at = observation.health, observation.health_at
        details["health"] = health
        if health is None:
            return closed("database health unknown: the health query returned no data", peak, threshold)
        if not math.isfinite(health):
            return closed(f"database health unknown: invalid value {health!r}", peak, threshold)
        if health_at is not None and now - health_at > settings.max_staleness:
            return closed(
                f"database health data stale: taken at {_clock(health_at)}, {_human(now - health_at)} old",
                peak,
                threshold,
            )
        if health < settings.min_health:
            return closed(
                f"database health {health:.4f} < minimum {settings.min_health:.4f} "
                f"(traffic {peak:.1f} req/s was below {threshold:.1f})",
                peak,
                threshold,
            )

    return GateResult(
        GATE,
        True,
        peak,
        threshold,
        f"traffic peaked at {peak:.1f} req/s, below threshold {threshold:.1f} ({bar}) "
        f"for the last {_human(settings.sustain)}",
        now,
        details=details,
    )


def _clock(moment: datetime, zone: bool = True) -> str:
    """14:05 UTC, or 14:05:07 UTC when the seconds matter."""
    moment = moment.astimezone(UTC)
    text = f"{moment:%H:%M}" if moment.second == 0 else f"{moment:%H:%M:%S}"
    return f"{text} UTC" if zone else text


def _human(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:g}s" if seconds < 10 else f"{int(seconds)}s"
    if seconds < 7200:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes}m" if rest == 0 else f"{minutes}m {rest}s"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h" if rest < 60 else f"{hours}h {rest // 60}m"
