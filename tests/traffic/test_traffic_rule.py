"""The low-traffic rule on tables of cases: thresholds, sustain, coverage, freshness, bad data, health."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.gates.traffic import TrafficObservation, TrafficSettings, evaluate_traffic

NOW = datetime(2026, 11, 25, 14, 5, tzinfo=UTC)  # a Wednesday
MINUTE = timedelta(minutes=1)
ABSOLUTE = TrafficSettings(
    query="q", threshold=600.0, sustain=timedelta(minutes=10), max_staleness=2 * MINUTE
)
HEALTHY = TrafficSettings(
    query="q", threshold=600.0, sustain=timedelta(minutes=10), health_query="h", min_health=0.999
)
BASELINE = TrafficSettings(query="q", mode="baseline_percentile", percentile=30, baseline_weeks=4)


def minutes(*values: float, end: datetime = NOW) -> list[tuple[datetime, float]]:
    """One sample a minute, the last at `end`."""
    return [(end - (len(values) - 1 - i) * MINUTE, v) for i, v in enumerate(values)]


def seen(samples: list[tuple[datetime, float]], **fields: object) -> TrafficObservation:
    return TrafficObservation(samples=samples, resolution=MINUTE, **fields)  # type: ignore[arg-type]


QUIET = minutes(*[300.0] * 11)  # 14:55 … 14:05, every minute, all quiet


ABSOLUTE_CASES = [
    (
        "below the threshold throughout",
        seen(QUIET),
        True,
        "traffic peaked at 300.0 req/s, below threshold 600.0 (absolute) for the last 10m",
        300.0,
    ),
    ("just below", seen(minutes(*[300.0] * 10, 599.9)), True, "peaked at 599.9 req/s", 599.9),
    (
        "above at the end",
        seen(minutes(*[300.0] * 10, 812.0)),
        False,
        "traffic 812.0 req/s ≥ threshold 600.0 (absolute) at 14:05 UTC",
        812.0,
    ),
    (
        "equal is not below",
        seen(minutes(*[300.0] * 10, 600.0)),
        False,
        "600.0 req/s ≥ threshold 600.0",
        600.0,
    ),
    (
        "sustain broken by one sample",
        seen(minutes(*[300.0] * 5, 650.0, *[300.0] * 5)),
        False,
        "traffic 650.0 req/s ≥ threshold 600.0 (absolute) at 14:00 UTC",
        650.0,
    ),
    (
        "a busy sample before the sustain period does not count",
        seen([(NOW - 11 * MINUTE, 900.0), *QUIET]),
        True,
        "below threshold",
        300.0,
    ),
    (
        "a hole of 4 minutes",
        seen([s for s in QUIET if not NOW - 7 * MINUTE < s[0] < NOW - 3 * MINUTE]),
        False,
        "traffic data has a 4m gap (13:58–14:02 UTC) in the last 10m (max 3m)",
        300.0,
    ),
    (
        "data only for the last 5 minutes",
        seen(minutes(*[300.0] * 6)),
        False,
        "traffic data has a 5m gap (13:55–14:00 UTC)",
        300.0,
    ),
    (
        "stale",
        seen(minutes(*[300.0] * 11, end=NOW - 3 * MINUTE)),
        False,
        "traffic data stale: newest sample at 14:02 UTC is 3m old (max 2m)",
        300.0,
    ),
    (
        "NaN",
        seen(minutes(*[300.0] * 10, math.nan)),
        False,
        "traffic unknown: invalid sample nan (not a number) at 14:05 UTC",
        None,
    ),
    ("infinite", seen(minutes(math.inf, *[300.0] * 10)), False, "invalid sample inf (infinite)", None),
    (
        "negative",
        seen(minutes(*[300.0] * 5, -1.0, *[300.0] * 5)),
        False,
        "invalid sample -1.0 (negative)",
        None,
    ),
    ("no data", seen([]), False, "traffic unknown: no data in the last 10m", None),
    (
        "only data older than the sustain period",
        seen(minutes(*[300.0] * 3, end=NOW - timedelta(hours=1))),
        False,
        "no data",
        None,
    ),
    (
        "an error",
        TrafficObservation(error="http://prom:9090/api/v1/query_range: HTTP 503: unavailable"),
        False,
        "traffic unknown: http://prom:9090/api/v1/query_range: HTTP 503: unavailable",
        None,
    ),
    ("unsorted samples", seen(list(reversed(QUIET))), True, "peaked at 300.0", 300.0),
]


@pytest.mark.parametrize(
    ("case", "observation", "is_open", "reason", "observed"),
    ABSOLUTE_CASES,
    ids=[c[0] for c in ABSOLUTE_CASES],
)
def test_absolute_threshold(case, observation, is_open, reason, observed):
    result = evaluate_traffic(NOW, observation, ABSOLUTE)
    assert (result.gate, result.open) == ("traffic", is_open), result.reason
    assert reason in result.reason
    assert result.observed == observed
    assert result.evaluated_at == NOW
    assert "\n" not in result.reason
    json.dumps(result.to_dict())  # the audit store and XCom take it as is


@pytest.mark.parametrize(
    ("health", "health_at", "is_open", "reason"),
    [
        (0.9995, NOW, True, "below threshold 600.0"),
        (0.999, NOW, True, "below threshold 600.0"),  # the minimum itself is good enough
        (0.995, NOW, False, "database health 0.9950 < minimum 0.9990 (traffic 300.0 req/s was below 600.0)"),
        (None, None, False, "database health unknown: the health query returned no data"),
        (math.nan, NOW, False, "database health unknown: invalid value nan"),
        (0.9995, NOW - 10 * MINUTE, False, "database health data stale: taken at 13:55 UTC, 10m old"),
    ],
)
def test_database_health(health, health_at, is_open, reason):
    result = evaluate_traffic(NOW, seen(QUIET, health=health, health_at=health_at), HEALTHY)
    assert result.open is is_open
    assert reason in result.reason


def test_health_is_ignored_when_not_configured():
    assert evaluate_traffic(NOW, seen(QUIET, health=0.5, health_at=NOW), ABSOLUTE).open


@pytest.mark.parametrize(
    ("baseline", "is_open", "reason", "threshold"),
    [
        (350.0, True, "below threshold 350.0 (p30 of this hour-of-week over 4 weeks)", 350.0),
        (
            250.0,
            False,
            "traffic 300.0 req/s ≥ threshold 250.0 (p30 of this hour-of-week over 4 weeks) at 14:05 UTC",
            250.0,
        ),
        (None, False, "traffic baseline unknown: no usable history for the p30 of this hour-of-week", None),
        (math.nan, False, "traffic baseline unknown", None),
        (-3.0, False, "traffic baseline unknown", None),
    ],
)
def test_baseline_mode(baseline, is_open, reason, threshold):
    result = evaluate_traffic(NOW, seen(QUIET, baseline=baseline), BASELINE)
    assert result.open is is_open
    assert reason in result.reason
    assert result.threshold == threshold


def test_the_allowed_gap_follows_the_resolution_or_the_settings():
    every_20s = [(NOW - timedelta(seconds=20 * i), 300.0) for i in range(31)]
    hole_start, hole_end = NOW - 5 * MINUTE, NOW - timedelta(minutes=3, seconds=40)
    hole = [s for s in every_20s if not hole_start < s[0] < hole_end]  # 80 s without samples
    fine = timedelta(seconds=20)
    assert not evaluate_traffic(NOW, TrafficObservation(hole, resolution=fine), ABSOLUTE).open  # > 3 × 20 s
    assert evaluate_traffic(NOW, TrafficObservation(hole), ABSOLUTE).open  # unknown step: sustain / 4 = 150 s
    strict = TrafficSettings(query="q", threshold=600, max_gap=timedelta(seconds=30))
    assert "max 30s" in evaluate_traffic(NOW, TrafficObservation(hole), strict).reason


def test_samples_a_moment_ahead_of_our_clock_count():
    ahead = [*QUIET, (NOW + timedelta(seconds=2), 700.0)]
    assert not evaluate_traffic(NOW, seen(ahead), ABSOLUTE).open


def test_details_say_what_was_seen():
    result = evaluate_traffic(NOW, seen(QUIET), ABSOLUTE)
    assert result.details["samples"] == 11
    assert result.details["max_gap_seconds"] == 180
    assert result.details["newest_sample_at"] == NOW.isoformat()


def test_a_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_traffic(NOW.replace(tzinfo=None), seen(QUIET), ABSOLUTE)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "relative"}, "mode must be one of absolute, baseline_percentile"),
        ({"threshold": -1.0}, "threshold must be a number of req/s"),
        ({"threshold": math.nan}, "threshold must be a number of req/s"),
        ({"percentile": 101}, "percentile must be within 0..100"),
        ({"baseline_weeks": 0}, "baseline_weeks must be at least 1"),
        ({"sustain": timedelta(0)}, "sustain must be positive"),
        ({"max_staleness": -MINUTE}, "max_staleness must be positive"),
        ({"max_gap": timedelta(0)}, "max_gap must be positive"),
    ],
)
def test_settings_refuse_nonsense(fields, message):
    with pytest.raises(ValueError, match=message):
        TrafficSettings(query="q", **fields)


rates = st.floats(min_value=0, max_value=5000, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(rates, min_size=1, max_size=15), threshold=st.floats(min_value=0, max_value=5000))
def test_never_open_when_any_recent_sample_reaches_the_threshold(values, threshold):
    gate = TrafficSettings(query="q", threshold=threshold, sustain=timedelta(minutes=10))
    result = evaluate_traffic(NOW, seen(minutes(*values)), gate)
    recent = values[-11:]
    covered = len(values) >= 8  # the first of 8 minutely samples is 3 minutes (3 × resolution) in
    if result.open:
        assert covered and max(recent) < threshold
    elif covered and max(recent) < threshold:
        pytest.fail(f"closed although every sample was below {threshold}: {result.reason}")
