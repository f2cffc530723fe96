"""The weekly baseline: hour-of-week buckets, per-bucket percentiles, the learned low-traffic hours."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from include.gates.traffic_baseline import (
    baseline_threshold,
    hour_of_week,
    hourly_percentiles,
    low_traffic_hours,
    typical_levels,
)
from include.sandbox.traffic_profile import WeeklyProfile

MONDAY = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "bucket"),
    [
        (MONDAY, 0),
        (MONDAY + timedelta(minutes=59, seconds=59), 0),
        (MONDAY + timedelta(hours=1), 1),
        (MONDAY + timedelta(days=2, hours=14, minutes=5), 62),
        (MONDAY + timedelta(days=7) - timedelta(seconds=1), 167),
        (datetime(2026, 11, 2, 1, 30, tzinfo=timezone(timedelta(hours=2))), 167),  # Sunday 23:30 UTC
    ],
)
def test_hour_of_week_counts_in_utc(moment, bucket):
    assert hour_of_week(moment) == bucket


def test_hour_of_week_refuses_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        hour_of_week(datetime(2026, 11, 2))


def test_percentile_of_the_same_hour_across_weeks():
    wednesday_14h = MONDAY + timedelta(days=2, hours=14)
    history = [
        (wednesday_14h - timedelta(weeks=w, minutes=-m), 100.0 * w) for w in (1, 2, 3, 4) for m in (0, 30)
    ]
    history.append((wednesday_14h + timedelta(hours=1), 9999.0))  # another hour: not in this bucket
    at = wednesday_14h + timedelta(minutes=20)
    assert baseline_threshold(history, at, 0) == 100.0
    assert baseline_threshold(history, at, 50) == 250.0  # linear between the 4th and 5th of 8 values
    assert baseline_threshold(history, at, 100) == 400.0
    assert baseline_threshold(history, at + timedelta(hours=3), 30) is None  # nothing known about 17:00


def test_meaningless_values_are_ignored():
    at = MONDAY + timedelta(hours=5)
    history = [(at, 100.0), (at, math.nan), (at, -50.0), (at, math.inf), (at + timedelta(minutes=1), 200.0)]
    assert baseline_threshold(history, at, 50) == 150.0
    assert baseline_threshold([(at, math.nan)], at, 50) is None


def test_no_history_no_baseline():
    assert baseline_threshold([], MONDAY, 30) is None
    assert low_traffic_hours([], 30) == []
    levels = typical_levels([])
    assert len(levels) == 168 and levels.isna().all()


@pytest.mark.parametrize("percentile", [-1, 100.5])
def test_percentile_must_be_a_percentage(percentile):
    with pytest.raises(ValueError, match="percentile must be within 0..100"):
        hourly_percentiles([(MONDAY, 1.0)], percentile)
    with pytest.raises(ValueError, match="percentile must be within 0..100"):
        low_traffic_hours([(MONDAY, 1.0)], percentile)


def four_weeks_of(profile: WeeklyProfile) -> list[tuple[datetime, float]]:
    return [
        (MONDAY + i * timedelta(minutes=5), profile.rate_at(MONDAY + i * timedelta(minutes=5)))
        for i in range(4 * 2016)
    ]


def test_the_baseline_follows_the_weekly_profile():
    profile = WeeklyProfile()
    history = four_weeks_of(profile)
    levels = typical_levels(history)
    assert len(levels) == 168 and not levels.isna().any()
    weekday_noon = baseline_threshold(history, MONDAY + timedelta(weeks=4, days=2, hours=12), 30)
    sunday_night = baseline_threshold(history, MONDAY + timedelta(weeks=4, days=6, hours=5), 30)
    assert weekday_noon > 0.9 * profile.peak
    assert sunday_night < 1.1 * profile.base
    assert weekday_noon > 4 * sunday_night


def test_low_traffic_hours_are_the_quietest_of_the_week():
    profile = WeeklyProfile()
    history = four_weeks_of(profile)
    quiet = low_traffic_hours(history, 30)
    assert abs(len(quiet) - 0.3 * 168) <= 2  # a percentile of the 168 typical levels
    assert quiet == sorted(quiet)
    levels = typical_levels(history)
    loudest_quiet = max(levels[day * 24 + hour] for day, hour in quiet)
    assert all(
        levels[day * 24 + hour] > loudest_quiet
        for day in range(7)
        for hour in range(24)
        if (day, hour) not in quiet
    )
    assert (5, 5) in quiet and (6, 5) in quiet  # weekend early mornings
    assert not any(day < 5 and 9 <= hour <= 19 for day, hour in quiet)  # never weekday business hours
    assert low_traffic_hours(history, 0) == [
        min(((d, h) for d in range(7) for h in range(24)), key=lambda dh: levels[dh[0] * 24 + dh[1]])
    ]
