"""The weekly traffic baseline (pandas): typical level per hour-of-week and the learned low-traffic hours.

Hours of the week are counted in UTC, Monday 00:00 = 0 to Sunday 23:00 = 167, because request rates
follow the world's working day, not the policy's time zone, and a UTC week has no DST hole or repeat.
pandas is imported inside the functions so that callers importing this module stay cheap to parse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

HOURS_PER_WEEK = 168


def hour_of_week(moment: datetime) -> int:
    """0 (Monday 00:00–00:59 UTC) … 167 (Sunday 23:00–23:59 UTC)."""
    if moment.tzinfo is None:
        raise ValueError(f"hour_of_week needs a timezone-aware time, got naive {moment.isoformat()}")
    moment = moment.astimezone(UTC)
    return moment.weekday() * 24 + moment.hour


def _frame(history: Iterable[tuple[datetime, float]]) -> pd.DataFrame:
    """Samples with their hour-of-week; NaN, infinite and negative values are dropped as meaningless."""
    import pandas as pd

    rows = [(t, float(v)) for t, v in history if math.isfinite(float(v)) and float(v) >= 0]
    frame = pd.DataFrame(rows, columns=["ts", "value"])
    if frame.empty:
        return frame.assign(how=pd.Series(dtype=int))
    stamps = pd.to_datetime(frame["ts"], utc=True)
    return frame.assign(how=stamps.dt.dayofweek * 24 + stamps.dt.hour)


def _check_percentile(percentile: float) -> None:
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be within 0..100, got {percentile!r}")


def hourly_percentiles(history: Iterable[tuple[datetime, float]], percentile: float) -> pd.Series:
    """The `percentile`-th percentile of the samples in each of the 168 hours of the week (NaN: no data)."""
    import pandas as pd

    _check_percentile(percentile)
    frame = _frame(history)
    levels = frame.groupby("how")["value"].quantile(percentile / 100.0) if not frame.empty else pd.Series()
    return levels.reindex(range(HOURS_PER_WEEK)).astype(float).rename_axis("hour_of_week")


def typical_levels(history: Iterable[tuple[datetime, float]]) -> pd.Series:
    """The typical (median) request rate of each of the 168 hours of the week (NaN: no data)."""
    return hourly_percentiles(history, 50)


def baseline_threshold(
    history: Iterable[tuple[datetime, float]], at: datetime, percentile: float
) -> float | None:
    """The `percentile`-th percentile of past samples in `at`'s hour of the week; None without any there.

    "Below p30 of this hour over 4 weeks" means quieter than 70 % of what this hour usually sees.
    """
    value = hourly_percentiles(history, percentile).get(hour_of_week(at))
    return None if value is None or math.isnan(value) else float(value)


def low_traffic_hours(history: Iterable[tuple[datetime, float]], percentile: float) -> list[tuple[int, int]]:
    """The learned low-traffic hours: (weekday 0=Monday, hour UTC) whose typical level is at or below the
    `percentile`-th percentile of all hours' typical levels; hours without data are never low."""
    _check_percentile(percentile)
    levels = typical_levels(history).dropna()
    if levels.empty:
        return []
    cutoff = levels.quantile(percentile / 100.0)
    return [(int(how) // 24, int(how) % 24) for how, level in levels.items() if level <= cutoff]
