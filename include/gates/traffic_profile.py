"""The learned traffic profile of an environment: typical level per UTC hour of the week and its quiet hours.

Computed daily by the `pdm_traffic_profile` DAG from weeks of Prometheus history (pandas, through
traffic_baseline.py), stored in the audit database, and read by the window gate for `learned` windows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from include.gates.traffic_baseline import low_traffic_hours, typical_levels
from include.policy.learned import TrafficProfile


class NoTrafficHistory(ValueError):
    """Prometheus returned no usable sample: no profile can be learned (and none is stored)."""


def build_traffic_profile(
    environment: str,
    history: Iterable[tuple[datetime, float]],
    computed_at: datetime,
    low_percentile: float,
    *,
    query: str = "",
    history_start: datetime | None = None,
) -> TrafficProfile:
    """The profile of `history`: median rate per hour of the week, and the hours whose median is at or
    below the `low_percentile`-th percentile of all hours' medians. Raises NoTrafficHistory when empty."""
    samples = [(t, float(v)) for t, v in history]
    usable = [(t, v) for t, v in samples if math.isfinite(v) and v >= 0]
    if not usable:
        raise NoTrafficHistory(
            f"{environment}: no usable traffic sample "
            f"({len(samples)} returned{f' for {query}' if query else ''}); no profile learned"
        )
    levels = typical_levels(usable)
    hours = frozenset(day * 24 + hour for day, hour in low_traffic_hours(usable, low_percentile))
    return TrafficProfile(
        environment=environment,
        computed_at=computed_at,
        low_traffic_hours=hours,
        typical=tuple(None if math.isnan(v) else round(float(v), 3) for v in levels.tolist()),
        percentile=low_percentile,
        query=query,
        history_start=history_start or min(t for t, _ in usable),
        history_end=computed_at,
        samples=len(usable),
    )
