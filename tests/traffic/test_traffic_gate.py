"""The traffic rule on tables of cases, and the Prometheus hook against a real Prometheus server."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from include.gates.traffic import TrafficObservation, TrafficSettings, evaluate_traffic
from include.gates.traffic_baseline import baseline_threshold, low_traffic_hours
from include.sandbox.traffic_profile import WeeklyProfile

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SETTINGS = TrafficSettings(
    query="q", threshold=600, sustain=timedelta(minutes=10), max_staleness=timedelta(minutes=2)
)


def samples(*values, step=60, end=NOW):
    return [(end - timedelta(seconds=step * (len(values) - 1 - i)), v) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("observation", "is_open", "fragment"),
    [
        (TrafficObservation(samples(*([300.0] * 11))), True, "below 600.0"),
        (TrafficObservation(samples(*([300.0] * 10), 700.0)), False, "700.0 req/s ≥ threshold 600.0"),
        (TrafficObservation(samples(300.0, 600.0, *([300.0] * 9))), False, "600.0 req/s ≥"),
        (TrafficObservation(samples(*([300.0] * 11), end=NOW - timedelta(minutes=5))), False, "stale"),
        (TrafficObservation(samples(300.0, 300.0, step=60)), False, "gap"),
        (TrafficObservation(samples(*([300.0] * 10), math.nan)), False, "invalid sample"),
        (TrafficObservation([]), False, "no data"),
        (TrafficObservation(error="Prometheus api/v1/query_range: HTTP 503"), False, "HTTP 503"),
    ],
)
def test_absolute_threshold(observation, is_open, fragment):
    result = evaluate_traffic(NOW, observation, SETTINGS)
    assert result.open is is_open
    assert fragment in result.reason


def test_health_and_baseline_modes():
    healthy = TrafficSettings(
        query="q", threshold=600, sustain=timedelta(minutes=10), health_query="h", min_health=0.999
    )
    ok = samples(*([300.0] * 11))
    assert evaluate_traffic(NOW, TrafficObservation(ok, health=0.9995), healthy).open
    assert "health 0.9900" in evaluate_traffic(NOW, TrafficObservation(ok, health=0.99), healthy).reason
    assert not evaluate_traffic(NOW, TrafficObservation(ok), healthy).open
    baseline = TrafficSettings(query="q", mode="baseline_percentile", sustain=timedelta(minutes=10))
    assert evaluate_traffic(NOW, TrafficObservation(ok, baseline=350.0), baseline).open
    assert not evaluate_traffic(NOW, TrafficObservation(ok, baseline=250.0), baseline).open
    assert "baseline unknown" in evaluate_traffic(NOW, TrafficObservation(ok), baseline).reason


def test_baseline_from_a_weekly_profile():
    profile = WeeklyProfile(noise=0.0)
    start = NOW - timedelta(weeks=4)
    history = [
        (start + timedelta(minutes=5 * i), profile.rate_at(start + timedelta(minutes=5 * i)))
        for i in range(4 * 7 * 288)
    ]
    weekday_noon = baseline_threshold(history, NOW, 30)
    sunday_night = baseline_threshold(history, datetime(2026, 11, 29, 3, tzinfo=UTC), 30)
    assert weekday_noon > 2 * sunday_night
    quiet = low_traffic_hours(history, 20)
    assert (2, 12) not in quiet and any(day >= 5 for day, _ in quiet)


@pytest.mark.integration
def test_hook_against_real_prometheus(prometheus_with_traffic, monkeypatch):
    from pdm_orchestrator.hooks.prometheus import PrometheusHook

    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", prometheus_with_traffic.url)
    settings = TrafficSettings(
        query='sum(gitlab_component_ops:rate_5m{env="{environment}",type="web"})',
        threshold=600,
        sustain=timedelta(seconds=3),
    )
    prometheus_with_traffic.set_traffic("gprd", 120.0)
    observation = PrometheusHook().traffic_observation(settings, "gprd", datetime.now(UTC))
    assert observation.error is None and observation.samples[-1][1] == 120.0
    prometheus_with_traffic.set_traffic("gprd", 900.0)
    now = datetime.now(UTC)
    closed = evaluate_traffic(now, PrometheusHook().traffic_observation(settings, "gprd", now), settings)
    assert not closed.open and "900.0 req/s" in closed.reason
    prometheus_with_traffic.set_traffic("gprd", 100.0)
    # The backfilled history gives a baseline for this hour-of-week.
    baseline = TrafficSettings(query=settings.query, mode="baseline_percentile", sustain=timedelta(seconds=3))
    observed = PrometheusHook().traffic_observation(baseline, "gprd", datetime.now(UTC))
    assert observed.baseline is not None and observed.baseline > 0
    none = TrafficSettings(query='sum(no_such_metric{env="{environment}"})', sustain=timedelta(seconds=3))
    assert (
        "no data"
        in evaluate_traffic(
            datetime.now(UTC), PrometheusHook().traffic_observation(none, "gprd", datetime.now(UTC)), none
        ).reason
    )


@pytest.mark.integration
def test_unreachable_prometheus_closes_the_gate(monkeypatch):
    from pdm_orchestrator.hooks.prometheus import PrometheusHook

    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", "http://127.0.0.1:9")
    settings = TrafficSettings(query="up", sustain=timedelta(seconds=3))
    observation = PrometheusHook(timeout=2).traffic_observation(settings, "gprd", datetime.now(UTC))
    result = evaluate_traffic(datetime.now(UTC), observation, settings)
    assert not result.open and "api/v1/query_range" in result.reason
