"""The weekly traffic profile and its OpenMetrics history (pure), and promtool accepting that history."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from include.sandbox.traffic_profile import WeeklyProfile, openmetrics_history, series_selector

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)
WEEK_GRID = [MONDAY + i * timedelta(minutes=5) for i in range(7 * 288)]


def test_quietest_and_busiest_moments_match_the_configured_ratio():
    profile = WeeklyProfile(base=150.0, peak_to_trough=6.0, noise=0.0)
    rates = [profile.rate_at(t) for t in WEEK_GRID]
    assert min(rates) == pytest.approx(150.0)
    assert max(rates) == pytest.approx(900.0)
    assert profile.peak == 900.0


def test_business_hours_are_busy_nights_and_weekends_quiet():
    profile = WeeklyProfile(noise=0.0)
    wednesday = MONDAY + timedelta(days=2)
    saturday = MONDAY + timedelta(days=5)
    emea_midday = profile.rate_at(wednesday + timedelta(hours=12))
    amer_afternoon = profile.rate_at(wednesday + timedelta(hours=18))
    night = profile.rate_at(wednesday + timedelta(hours=23))
    assert emea_midday > 3 * night and amer_afternoon > 3 * night
    assert profile.rate_at(saturday + timedelta(hours=12)) < 0.6 * emea_midday
    assert profile.shape(wednesday + timedelta(hours=12)) > 0.95


def test_noise_is_seeded_bounded_and_changes_every_five_minutes():
    noisy, again, other = (
        WeeklyProfile(noise=0.05, seed=7),
        WeeklyProfile(noise=0.05, seed=7),
        WeeklyProfile(noise=0.05, seed=8),
    )
    assert [noisy.rate_at(t) for t in WEEK_GRID[:50]] == [again.rate_at(t) for t in WEEK_GRID[:50]]
    assert [noisy.rate_at(t) for t in WEEK_GRID[:50]] != [other.rate_at(t) for t in WEEK_GRID[:50]]
    for moment in WEEK_GRID[::7]:
        expected = noisy.expected_rate_at(moment)
        assert abs(noisy.rate_at(moment) - expected) <= 0.05 * expected + 0.001
    start = MONDAY + timedelta(hours=3)
    assert noisy.rate_at(start) / noisy.expected_rate_at(start) == pytest.approx(
        noisy.rate_at(start + timedelta(minutes=4)) / noisy.expected_rate_at(start + timedelta(minutes=4)),
        abs=1e-5,
    )


def test_scaled_profiles_keep_the_shape():
    profile = WeeklyProfile(noise=0.0)
    moment = MONDAY + timedelta(hours=15)
    assert profile.scaled(0.1).rate_at(moment) == pytest.approx(profile.rate_at(moment) / 10, abs=0.001)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"base": 0}, "base must be a positive"),
        ({"peak_to_trough": 0.5}, "peak_to_trough must be ≥ 1"),
        ({"weekend_factor": 0}, "weekend_factor must be in"),
        ({"noise": 1.0}, "noise must be in"),
    ],
)
def test_profile_refuses_nonsense(fields, message):
    with pytest.raises(ValueError, match=message):
        WeeklyProfile(**fields)


def test_profile_needs_timezone_aware_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        WeeklyProfile().rate_at(datetime(2026, 11, 23, 12))


def test_openmetrics_text_groups_families_and_ends_with_eof():
    start = datetime(2026, 11, 23, 12, tzinfo=UTC)
    up = series_selector("up", {"job": "a"})
    text = openmetrics_history(
        {
            series_selector("rate", {"env": "gprd"}): lambda t: 1.5,
            up: lambda t: 1,
            series_selector("rate", {"env": 'we"ird'}): lambda t: math.nan,
        },
        start,
        start + timedelta(minutes=2),
        timedelta(minutes=1),
    )
    stamp = int(start.timestamp())
    assert text.splitlines() == [
        "# TYPE rate gauge",
        f'rate{{env="gprd"}} 1.5 {stamp}',
        f'rate{{env="gprd"}} 1.5 {stamp + 60}',
        f'rate{{env="we\\"ird"}} NaN {stamp}',
        f'rate{{env="we\\"ird"}} NaN {stamp + 60}',
        "# TYPE up gauge",
        f'up{{job="a"}} 1.0 {stamp}',
        f'up{{job="a"}} 1.0 {stamp + 60}',
        "# EOF",
    ]


def test_fractional_steps_write_fractional_timestamps():
    start = datetime(2026, 11, 23, 12, tzinfo=UTC)
    text = openmetrics_history(
        {"x": lambda t: math.inf}, start, start + timedelta(seconds=1), timedelta(seconds=0.5)
    )
    assert f"x +Inf {start.timestamp() + 0.5:.3f}" in text


@pytest.mark.parametrize(
    ("series", "step", "end_offset", "message"),
    [
        (
            {"not a selector": lambda t: 1.0},
            timedelta(minutes=1),
            timedelta(hours=1),
            "not a series selector",
        ),
        ({"x": lambda t: 1.0}, timedelta(0), timedelta(hours=1), "step must be positive"),
        ({"x": lambda t: 1.0}, timedelta(minutes=1), timedelta(0), "is not after start"),
    ],
)
def test_openmetrics_history_refuses_bad_input(series, step, end_offset, message):
    with pytest.raises(ValueError, match=message):
        openmetrics_history(series, MONDAY, MONDAY + end_offset, step)


@pytest.mark.integration
def test_promtool_imports_the_history(tmp_path):
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.path.exists(promtool):
        pytest.skip("promtool is not installed (Debian package prometheus)")
    profile = WeeklyProfile()
    source = tmp_path / "history.om"
    source.write_text(
        openmetrics_history(
            {series_selector("gitlab_component_ops:rate_5m", {"env": "gprd"}): profile.rate_at},
            MONDAY - timedelta(days=2),
            MONDAY,
            timedelta(minutes=5),
        )
    )
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(tmp_path / "tsdb")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    dump = subprocess.run([promtool, "tsdb", "list", str(tmp_path / "tsdb")], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    samples = sum(int(line.split()[4]) for line in dump.stdout.splitlines()[1:])
    assert samples == 2 * 288  # two days of 5-minute samples, none lost
