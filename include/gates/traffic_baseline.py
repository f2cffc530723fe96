"""Weekly traffic baseline (pandas): the typical level per hour-of-week and the learned low-traffic hours."""

from __future__ import annotations

from datetime import UTC, datetime


def hour_of_week(moment: datetime) -> int:
    moment = moment.astimezone(UTC)
    return moment.weekday() * 24 + moment.hour


def hourly_percentiles(history: list[tuple[datetime, float]], percentile: float):
    """A Series indexed by hour-of-week (0 = Monday 00:00 UTC) with the p-th percentile of the samples."""
    import pandas as pd

    frame = pd.DataFrame(history, columns=["ts", "value"])
    if frame.empty:
        return pd.Series(dtype=float)
    frame["how"] = [hour_of_week(t) for t in frame.ts]
    return frame.groupby("how")["value"].quantile(percentile / 100.0)


def baseline_threshold(
    history: list[tuple[datetime, float]], at: datetime, percentile: float
) -> float | None:
    """The p-th percentile of past samples in the same hour-of-week as `at`; None without history there."""
    levels = hourly_percentiles(history, percentile)
    value = levels.get(hour_of_week(at))
    return None if value is None else float(value)


def low_traffic_hours(history: list[tuple[datetime, float]], percentile: float) -> list[tuple[int, int]]:
    """(weekday, hour) buckets whose median level is at or below the p-th percentile of all buckets."""
    medians = hourly_percentiles(history, 50)
    if medians.empty:
        return []
    cutoff = medians.quantile(percentile / 100.0)
    return sorted((int(how) // 24, int(how) % 24) for how, value in medians.items() if value <= cutoff)
