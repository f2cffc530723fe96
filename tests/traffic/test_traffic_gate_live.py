"""The traffic gate end to end against the real Prometheus: hook queries, the baseline the backfilled
profile implies, live traffic opening and closing the gate, and Prometheus going away."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from include.gates.traffic import TrafficSettings, evaluate_traffic
from include.gates.traffic_baseline import baseline_threshold, low_traffic_hours
from include.sandbox.prometheus_server import PrometheusServer
from include.sandbox.traffic_exporter import TrafficExporter

pytestmark = pytest.mark.integration

OPS = 'sum(gitlab_component_ops:rate_5m{env="{environment}",type="web"})'
SUSTAIN = timedelta(seconds=3)
LIVE = TrafficSettings(query=OPS, threshold=600.0, sustain=SUSTAIN, max_staleness=timedelta(seconds=10))
HEALTHY = TrafficSettings(
    query=OPS,
    threshold=600.0,
    sustain=SUSTAIN,
    health_query='min(gitlab_service_apdex:ratio_5m{env="{environment}",type="patroni"})',
    min_health=0.999,
)


@pytest.fixture
def traffic(prometheus_with_traffic, monkeypatch):
    """The shared Prometheus as the default connection; values back to the defaults afterwards."""
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", prometheus_with_traffic.url)
    yield prometheus_with_traffic
    prometheus_with_traffic.reset()


def hook():
    from pdm_orchestrator.hooks.prometheus import PrometheusHook

    return PrometheusHook()


def gate(settings: TrafficSettings, environment: str = "gprd"):
    now = datetime.now(UTC)
    return evaluate_traffic(now, hook().traffic_observation(settings, environment, now), settings)


def test_instant_query_sees_the_live_value(traffic):
    traffic.set_traffic("gstg", 42.5)
    before = datetime.now(UTC)
    [(labels, value, at)] = hook().query('gitlab_component_ops:rate_5m{env="gstg"}', before)
    assert value == 42.5 and at == pytest.approx(before, abs=timedelta(milliseconds=1))
    assert labels["env"] == "gstg" and labels["job"] == "traffic" and labels["type"] == "web"


def test_range_query_returns_the_backfilled_profile(traffic):
    start = traffic.history_end - timedelta(days=1)
    [(labels, points)] = hook().query_range(
        'gitlab_component_ops:rate_5m{env="gprd"}', start, traffic.history_end - timedelta(minutes=5), 300
    )
    assert labels["instance"] == "traffic-exporter"
    assert len(points) == 288
    assert points == [(moment, traffic.profile.rate_at(moment)) for moment, _ in points]
    assert points[0][0] == start


def test_the_baseline_is_what_the_profile_implies(traffic):
    settings = TrafficSettings(
        query=OPS, mode="baseline_percentile", percentile=30, baseline_weeks=4, sustain=SUSTAIN
    )
    now = datetime.now(UTC)
    observation = hook().traffic_observation(settings, "gprd", now)
    assert observation.error is None
    # The hook reads this hour of each of the last 4 weeks at 1-minute steps; each step sees the 5-minute
    # history sample before it. Recompute that from the profile alone.
    hour = now.replace(minute=0, second=0, microsecond=0)
    implied = []
    for weeks in range(1, 5):
        for minute in range(60):
            moment = hour - timedelta(weeks=weeks) + timedelta(minutes=minute)
            implied.append((moment, traffic.profile.rate_at(moment - timedelta(minutes=minute % 5))))
    assert observation.baseline == pytest.approx(baseline_threshold(implied, now, 30), rel=1e-9)


def test_low_traffic_hours_learned_from_prometheus_match_the_profile(traffic):
    query = OPS.replace("{environment}", "gprd")
    history = hook().history(query, traffic.history_start, traffic.history_end - timedelta(minutes=5))
    assert len(history) == 4 * 7 * 288  # the 4-week span asks for 5-minute steps
    from_profile = [(moment, traffic.profile.rate_at(moment)) for moment, _ in history]
    assert low_traffic_hours(history, 30) == low_traffic_hours(from_profile, 30)


def test_low_traffic_opens_the_gate_once_sustained_and_high_traffic_closes_it(traffic):
    traffic.set_traffic("gprd", 900.0)
    busy = gate(LIVE)
    assert not busy.open and busy.observed == 900.0
    assert busy.reason.startswith("traffic 900.0 req/s ≥ threshold 600.0 (absolute) at ")
    traffic.set_traffic("gprd", 120.0)
    assert not gate(LIVE).open, "the busy samples are still within the sustain period"
    time.sleep(SUSTAIN.total_seconds() + 1)
    quiet = gate(LIVE)
    assert quiet.open, quiet.reason
    assert quiet.observed == 120.0 and quiet.threshold == 600.0
    assert quiet.reason == "traffic peaked at 120.0 req/s, below threshold 600.0 (absolute) for the last 3s"


def test_poor_database_health_keeps_the_gate_closed(traffic):
    traffic.set_traffic("gprd", 100.0)
    traffic.set_health("gprd", 0.99)
    time.sleep(SUSTAIN.total_seconds())
    result = gate(HEALTHY)
    assert not result.open
    assert result.reason == "database health 0.9900 < minimum 0.9990 (traffic 100.0 req/s was below 600.0)"
    traffic.set_health("gprd", 0.9995)
    assert gate(HEALTHY).open


def test_a_query_without_series_is_no_data(traffic):
    settings = TrafficSettings(query='sum(no_such_metric{env="{environment}"})', sustain=SUSTAIN)
    result = gate(settings)
    assert not result.open and result.reason == "traffic unknown: no data in the last 3s"


def test_an_unaggregated_query_is_refused(traffic):
    settings = TrafficSettings(query="gitlab_component_ops:rate_5m", sustain=SUSTAIN)
    assert "returns 2 series; aggregate it to one" in gate(settings).reason


def test_a_stopped_prometheus_closes_the_gate_naming_the_endpoint(tmp_path, monkeypatch):
    with TrafficExporter() as exporter:
        server = PrometheusServer(tmp_path, [exporter.address]).start()
        monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", server.url)
        assert hook().query("vector(1)", datetime.now(UTC))[0][1] == 1.0
        server.stop()
        result = gate(LIVE)
    assert not result.open and result.observed is None
    assert result.reason.startswith(f"traffic unknown: {server.url}/api/v1/query_range: ConnectionError")
