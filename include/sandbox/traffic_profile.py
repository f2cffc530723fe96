"""A weekly request-rate profile shaped like a global SaaS, and its history as OpenMetrics text for promtool.

Pure: no I/O, no clock. The sandbox exporter, the backfilled Prometheus history and the simulator share it,
so "what the profile implies" is one function everyone can recompute.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

NOISE_BUCKET_SECONDS = 300  # the noise changes every 5 minutes, like a 5m rate would
_SHAPE_GRID = timedelta(minutes=5)


@dataclass(frozen=True)
class WeeklyProfile:
    """Request rate (req/s) over a UTC week: EMEA and AMER business hours busy, nights and weekends quiet.

    Before noise, the quietest moment of the week is exactly `base` and the busiest exactly
    `base * peak_to_trough`, so thresholds in tests and demos can be reasoned about. Noise is a
    deterministic ±`noise` fraction per 5-minute bucket, drawn from `seed` (same seed, same curve, on any
    machine and in any process).
    """

    base: float = 200.0
    peak_to_trough: float = 5.0
    weekend_factor: float = 0.45
    noise: float = 0.04
    seed: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base) and self.base > 0):
            raise ValueError(f"WeeklyProfile.base must be a positive number of req/s, got {self.base!r}")
        if not (math.isfinite(self.peak_to_trough) and self.peak_to_trough >= 1):
            raise ValueError(f"WeeklyProfile.peak_to_trough must be ≥ 1, got {self.peak_to_trough!r}")
        if not 0 < self.weekend_factor <= 1:
            raise ValueError(f"WeeklyProfile.weekend_factor must be in (0, 1], got {self.weekend_factor!r}")
        if not 0 <= self.noise < 1:
            raise ValueError(f"WeeklyProfile.noise must be in [0, 1), got {self.noise!r}")

    @property
    def peak(self) -> float:
        """The busiest rate of the week before noise."""
        return self.base * self.peak_to_trough

    def shape(self, ts: datetime) -> float:
        """Where `ts` sits between the week's quietest (0.0) and busiest (1.0) moment, before noise."""
        low, high = _shape_range(self.weekend_factor)
        return min(1.0, max(0.0, (_raw_shape(_utc(ts), self.weekend_factor) - low) / (high - low)))

    def expected_rate_at(self, ts: datetime) -> float:
        """The rate the profile implies at `ts` without noise."""
        return self.base * (1 + (self.peak_to_trough - 1) * self.shape(ts))

    def rate_at(self, ts: datetime) -> float:
        """The rate at `ts` with the seeded noise, rounded to milli-req/s (what the exporter would show)."""
        bucket = int(_utc(ts).timestamp() // NOISE_BUCKET_SECONDS)
        digest = hashlib.sha256(f"{self.seed}:{bucket}".encode()).digest()
        jitter = (int.from_bytes(digest[:4], "big") / 2**32 - 0.5) * 2 * self.noise
        return round(self.expected_rate_at(ts) * (1 + jitter), 3)

    def scaled(self, factor: float) -> WeeklyProfile:
        """The same curve at another size (staging sees a fraction of production's traffic)."""
        return WeeklyProfile(
            self.base * factor, self.peak_to_trough, self.weekend_factor, self.noise, self.seed
        )


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"the traffic profile needs a timezone-aware time, got naive {ts.isoformat()}")
    return ts.astimezone(UTC)


def _raw_shape(ts: datetime, weekend_factor: float) -> float:
    hour = ts.hour + ts.minute / 60 + ts.second / 3600
    emea = math.exp(-(((hour - 12.0) / 3.0) ** 2))  # Europe's working day, centred on 12:00 UTC
    amer = math.exp(-(((hour - 17.5) / 3.5) ** 2))  # the Americas, centred on 17:30 UTC
    apac = 0.3 * math.exp(-(((((hour - 3.0) + 12) % 24 - 12) / 2.5) ** 2))  # a smaller APAC hump
    level = max(emea, amer) + 0.3 * min(emea, amer) + apac
    return level * (weekend_factor if ts.weekday() >= 5 else 1.0)


@lru_cache(maxsize=32)
def _shape_range(weekend_factor: float) -> tuple[float, float]:
    """The raw shape's minimum and maximum over one week, on a 5-minute grid (used to normalise)."""
    monday = datetime(2024, 1, 1, tzinfo=UTC)
    values = [_raw_shape(monday + step * _SHAPE_GRID, weekend_factor) for step in range(7 * 24 * 12)]
    return min(values), max(values)


_SELECTOR = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})?$')


def series_selector(metric: str, labels: Mapping[str, str]) -> str:
    """`metric{label="value",...}` with values escaped as the exposition formats require."""

    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    inner = ",".join(f'{key}="{escape(str(value))}"' for key, value in labels.items())
    return f"{metric}{{{inner}}}" if inner else metric


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def openmetrics_history(
    series: Mapping[str, Callable[[datetime], float]],
    start: datetime,
    end: datetime,
    step: timedelta,
    metric_types: Mapping[str, str] | None = None,
) -> str:
    """OpenMetrics text of every series sampled from `start` (inclusive) to `end` (exclusive) every `step`.

    `series` maps a selector (`name{label="v"}`, see `series_selector`) to a function of time. The output
    groups samples by metric family, carries unix-second timestamps and ends with `# EOF`, which is what
    `promtool tsdb create-blocks-from openmetrics` needs. Types default to gauge.
    """
    if step <= timedelta(0):
        raise ValueError(f"openmetrics_history: step must be positive, got {step}")
    if end <= start:
        raise ValueError(f"openmetrics_history: end {end.isoformat()} is not after start {start.isoformat()}")
    whole_seconds = step.total_seconds().is_integer() and _utc(start).timestamp().is_integer()
    moments: list[tuple[datetime, str]] = []
    moment = start
    while moment < end:
        stamp = moment.timestamp()
        moments.append((moment, str(int(stamp)) if whole_seconds else f"{stamp:.3f}"))
        moment += step
    by_metric: dict[str, list[str]] = {}
    for selector in series:
        if not _SELECTOR.match(selector):
            raise ValueError(f'openmetrics_history: {selector!r} is not a series selector like name{{a="b"}}')
        by_metric.setdefault(selector.split("{", 1)[0], []).append(selector)
    lines: list[str] = []
    for metric, selectors in by_metric.items():
        lines.append(f"# TYPE {metric} {(metric_types or {}).get(metric, 'gauge')}")
        for selector in selectors:
            function = series[selector]
            lines.extend(f"{selector} {_format_value(function(at))} {stamp}" for at, stamp in moments)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
