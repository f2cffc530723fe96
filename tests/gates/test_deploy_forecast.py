"""Next-deployment forecast and predicted PDM duration: pure rules, tables of cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.deployments import Deployment
from include.gates.deploy_forecast import (
    DeployForecast,
    DurationEstimate,
    expect_next_deployment,
    overlap_reason,
    predict_pdm_duration,
)
from include.gates.deploy_lock import DeployLockObservation, evaluate_deploy_lock

# Wednesday 2026-11-25 10:30 UTC
NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
FOUR_WEEKS = timedelta(weeks=4)


def weekly(weekday: int, hour: int, minute: int = 10, weeks: int = 4) -> list[datetime]:
    """A deployment starting at weekday/hour:minute UTC in each of the last `weeks` weeks (before NOW)."""
    monday = (NOW - timedelta(days=NOW.weekday())).replace(hour=0, minute=0)
    this_week = monday + timedelta(days=weekday, hours=hour, minutes=minute)
    first = this_week if this_week <= NOW else this_week - timedelta(weeks=1)
    return [first - timedelta(weeks=k) for k in range(weeks)]


def test_no_history_expects_no_deployment():
    found = expect_next_deployment([], NOW, FOUR_WEEKS)
    assert found.expected_at is None
    assert found.basis == "no deployment started in the last 28d"


def test_weekly_pattern_expects_the_next_deploy_hour():
    starts = weekly(2, 14) + weekly(3, 2)  # Wednesdays 14:10 and Thursdays 02:10, every week
    found = expect_next_deployment(starts, NOW, FOUR_WEEKS)
    assert found.expected_at == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    assert found.basis == "deployments started Wed 14:00–14:59 UTC in 4 of 4 weeks"


def test_an_hour_seen_in_too_few_weeks_is_not_a_deploy_hour():
    starts = weekly(2, 14, weeks=1) + weekly(4, 9)  # Wed 14:xx once; Fri 09:xx every week
    found = expect_next_deployment(starts, NOW, FOUR_WEEKS, min_share=0.5)
    assert found.expected_at is not None
    # Median gap (from the last Friday start) may come earlier than Friday 09:00; it never picks Wed 14:00.
    assert found.expected_at != datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    assert found.expected_at <= datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_current_hour_counts_until_its_deployment_started():
    starts = weekly(2, 10, minute=45)[1:]  # Wed 10:45 in the 3 previous weeks, not yet this week
    found = expect_next_deployment(starts, NOW, FOUR_WEEKS)
    assert found.expected_at == NOW  # due any minute now
    started = expect_next_deployment([*starts, NOW - timedelta(minutes=5)], NOW, FOUR_WEEKS)
    assert started.expected_at != NOW


def test_median_gap_after_the_last_start():
    starts = [NOW - timedelta(hours=h) for h in (7, 5, 3, 1)]  # every 2 hours: no weekly pattern yet
    found = expect_next_deployment(starts, NOW, FOUR_WEEKS, min_share=1)
    assert found.expected_at == NOW + timedelta(hours=1)
    assert "median gap 2h" in found.basis


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        expect_next_deployment([], NOW.replace(tzinfo=None), FOUR_WEEKS)


@pytest.mark.parametrize(
    ("durations", "class_max", "expected", "basis"),
    [
        ([600, 1200, 1800], None, timedelta(minutes=30), "median of 3 past data runs (20m) × 1.5"),
        (
            [600, 1200],
            timedelta(hours=2),
            timedelta(hours=2),
            "2 past data runs (< 3): the class's max_predicted_duration",
        ),
        ([], None, timedelta(hours=1), "0 past data runs (< 3): the forecast's default_duration"),
        (
            [600, float("nan"), 1200, -5, 1800],
            None,
            timedelta(minutes=30),
            "median of 3 past data runs (20m) × 1.5",
        ),
    ],
)
def test_predicted_duration(durations, class_max, expected, basis):
    found = predict_pdm_duration(
        durations, safety_factor=1.5, min_runs=3, class_name="data", class_max=class_max,
        default=timedelta(hours=1),
    )  # fmt: skip
    assert (found.duration, found.basis) == (expected, basis)


def forecast(expected_in: timedelta | None, duration: timedelta) -> DeployForecast:
    from include.gates.deploy_forecast import DeploymentExpectation

    at = NOW + expected_in if expected_in is not None else None
    return DeployForecast(
        expected=DeploymentExpectation(at, "deployments started Wed 14:00–14:59 UTC in 4 of 4 weeks", 4),
        duration=DurationEstimate(duration, "median of 5 past data runs (1h) × 1.5"),
    )


@pytest.mark.parametrize(
    ("expected_in", "duration", "is_open"),
    [
        (timedelta(hours=3), timedelta(hours=1, minutes=30), True),
        (timedelta(hours=1), timedelta(hours=1, minutes=30), False),
        (timedelta(hours=1, minutes=30), timedelta(hours=1, minutes=30), True),  # ends exactly then
        (timedelta(0), timedelta(minutes=1), False),
        (None, timedelta(hours=10), True),
    ],
)
def test_deploy_lock_closes_when_the_predicted_pdm_overlaps(expected_in, duration, is_open):
    result = evaluate_deploy_lock(NOW, DeployLockObservation(forecast=forecast(expected_in, duration)))
    assert result.open is is_open
    assert "\n" not in result.reason
    if not is_open:
        assert result.reason.startswith("predicted PDM of ")
        assert "would end Wed" in result.reason and "next deployment expected Wed" in result.reason
    assert overlap_reason(NOW, forecast(expected_in, duration)) == (None if is_open else result.reason)


def test_overlap_reason_names_both_times():
    reason = overlap_reason(NOW, forecast(timedelta(hours=1), timedelta(hours=1, minutes=30)))
    assert reason == (
        "predicted PDM of 1h 30m (median of 5 past data runs (1h) × 1.5) would end Wed 12:00 UTC, after the "
        "next deployment expected Wed 11:30 UTC (deployments started Wed 14:00–14:59 UTC in 4 of 4 weeks)"
    )


def test_forecast_error_closes_the_gate():
    result = evaluate_deploy_lock(
        NOW, DeployLockObservation(forecast=DeployForecast(error="GET x: HTTP 502"))
    )
    assert not result.open
    assert result.reason == "next-deployment forecast unknown: GET x: HTTP 502"


def test_holders_and_forecast_are_reported_together():
    running = Deployment(7, "gprd", "a" * 40, "pkg", "running", NOW, None)
    result = evaluate_deploy_lock(
        NOW,
        DeployLockObservation(
            active_deployments=[running], forecast=forecast(timedelta(minutes=10), timedelta(hours=1))
        ),
    )
    assert not result.open
    assert result.reason.startswith("deployment 7 to gprd is running (pkg); predicted PDM of 1h")
    assert result.observed["next_deployment"]["expected_at"] == (NOW + timedelta(minutes=10)).isoformat()


def every(minutes: list[int], last: datetime) -> list[datetime]:
    """Starts ending at `last`, separated by the given gaps (oldest gap first)."""
    starts = [last]
    for gap in reversed(minutes):
        starts.insert(0, starts[0] - timedelta(minutes=gap))
    return starts


def test_low_gap_percentile_expects_the_earliest_plausible_start():
    last = NOW - timedelta(minutes=60)
    starts = every([180, 200, 220, 240, 190, 210], last)
    found = expect_next_deployment(starts, NOW, FOUR_WEEKS, gap_percentile=0, weekly_pattern=False)
    assert found.expected_at == last + timedelta(minutes=180)
    assert "p0 gap 3h" in found.basis and "weekday gaps" in found.basis


def test_overdue_deployment_is_expected_now_until_the_late_gap():
    last = NOW - timedelta(minutes=200)
    starts = every([180, 200, 220, 240, 190, 210], last)
    found = expect_next_deployment(starts, NOW, FOUR_WEEKS, gap_percentile=5, weekly_pattern=False)
    assert found.expected_at == NOW
    assert found.basis.startswith("overdue:")
    late = expect_next_deployment(
        starts, last + timedelta(minutes=300), FOUR_WEEKS, gap_percentile=5, weekly_pattern=False
    )
    assert late.expected_at is None  # later than every gap seen: the cadence says nothing


def test_weekend_gaps_are_learned_apart_from_weekday_gaps():
    saturday = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    weekend = [saturday - timedelta(weeks=k) + timedelta(days=d) for k in range(3) for d in (0, 1)]
    weekday = [
        saturday - timedelta(weeks=k, days=1) + timedelta(hours=h) for k in range(3) for h in (0, 3, 6)
    ]
    starts = sorted(weekend + weekday)
    now = saturday + timedelta(hours=3)
    found = expect_next_deployment(starts, now, FOUR_WEEKS, gap_percentile=5, weekly_pattern=False)
    assert found.expected_at is not None and found.expected_at > now + timedelta(hours=12)
    assert "weekend gaps" in found.basis


def test_gap_percentile_out_of_range_is_refused():
    with pytest.raises(ValueError, match="gap_percentile"):
        expect_next_deployment([NOW], NOW, FOUR_WEEKS, gap_percentile=101)
