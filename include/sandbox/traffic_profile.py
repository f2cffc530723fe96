"""A weekly request-rate profile shaped like a global SaaS, and its history in OpenMetrics for promtool.

EMEA and AMER business hours are busy, nights and weekends quiet. The simulator and the local run share it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class WeeklyProfile:
    """Request rate (req/s) as a function of time: `trough` at the quietest, `trough * peak_to_trough` at peak."""

    trough: float = 200.0
    peak_to_trough: float = 5.0
    weekend_factor: float = 0.45
    noise: float = 0.04
    seed: int = 1

    def shape(self, ts: datetime) -> float:
        """0 at the quietest hour, 1 at the busiest weekday hour (before noise)."""
        ts = ts.astimezone(UTC)
        hour = ts.hour + ts.minute / 60
        emea = math.exp(-(((hour - 11.0) / 3.2) ** 2))
        amer = math.exp(-(((hour - 18.0) / 3.2) ** 2))
        apac = 0.35 * math.exp(-((((hour + 24 - 2.0) % 24 - 0) / 2.5) ** 2))
        level = min(1.0, max(emea, amer) + 0.25 * min(emea, amer) + apac)
        if ts.weekday() >= 5:
            level *= self.weekend_factor
        return level

    def rate_at(self, ts: datetime) -> float:
        base = self.trough * (1 + (self.peak_to_trough - 1) * self.shape(ts))
        bucket = int(ts.timestamp() // 300)
        digest = hashlib.sha256(f"{self.seed}:{bucket}".encode()).digest()
        jitter = (int.from_bytes(digest[:4], "big") / 2**32 - 0.5) * 2 * self.noise
        return round(base * (1 + jitter), 3)


def openmetrics_history(
    series: dict[str, Callable[[datetime], float]],
    start: datetime,
    end: datetime,
    step: timedelta,
    metric_types: dict[str, str] | None = None,
) -> str:
    """OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.

    `series` maps a series selector (`name{label="v"}`) to a function of time.
    """
    by_metric: dict[str, list[str]] = {}
    for selector in series:
        by_metric.setdefault(selector.split("{", 1)[0], []).append(selector)
    lines: list[str] = []
    for metric, selectors in by_metric.items():
        lines.append(f"# TYPE {metric} {(metric_types or {}).get(metric, 'gauge')}")
        for selector in selectors:
            moment = start
            function = series[selector]
            while moment < end:
                lines.append(f"{selector} {function(moment)} {int(moment.timestamp())}")
                moment += step
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
