"""Health in the rollback-safety gate: a table of cases for the rule, then the real Prometheus fixture."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from include.deployments import Deployment
from include.gates.rollback import HealthBounds, HealthReading, RollbackObservation, evaluate_rollback_safety

NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
BAKED = Deployment(
    1, "gprd", "a" * 40, "17.6.202611240620-2222222222a.3333333333b", "success", NOW, NOW - timedelta(hours=5)
)
BOUNDS = HealthBounds(
    apdex_query="min(apdex)", min_apdex=0.995, error_ratio_query="max(errors)", max_error_ratio=0.01,
    max_staleness=timedelta(minutes=5),
)  # fmt: skip
FRESH = NOW - timedelta(seconds=20)


@pytest.mark.parametrize(
    ("reading", "is_open", "reason"),
    [
        (HealthReading(0.999, FRESH, 0.001, FRESH), True, None),
        (HealthReading(0.995, FRESH, 0.01, FRESH), True, None),  # bounds are inclusive
        (HealthReading(0.99, FRESH, 0.001, FRESH), False, "apdex 0.99 below minimum 0.995: rollback may be needed"),
        (HealthReading(0.999, FRESH, 0.05, FRESH), False, "error ratio 0.05 above maximum 0.01: rollback may be needed"),
        (HealthReading(None, None, 0.001, FRESH), False, "apdex unknown: min(apdex) returned no data"),
        (HealthReading(0.999, FRESH, None, None), False, "error ratio unknown: max(errors) returned no data"),
        (HealthReading(math.nan, FRESH, 0.001, FRESH), False, "apdex unknown: invalid value nan from min(apdex)"),
        (HealthReading(0.999, FRESH, math.inf, FRESH), False, "error ratio unknown: invalid value inf from max(errors)"),
        (
            HealthReading(0.999, NOW - timedelta(minutes=9), 0.001, FRESH),
            False,
            "apdex data stale: newest value is 9m old (max 5m)",
        ),
        (HealthReading(error="http://prom/api/v1/query: HTTP 503: down"), False,
         "service health unknown: http://prom/api/v1/query: HTTP 503: down"),
        (None, False, "service health unknown: not read"),
    ],
)  # fmt: skip
def test_health_bounds(reading, is_open, reason):
    result = evaluate_rollback_safety(
        NOW, RollbackObservation(deployed=BAKED, health=reading), timedelta(hours=2), BOUNDS
    )
    assert result.open is is_open
    if reason:
        assert result.reason == reason
    else:
        assert (
            result.reason.endswith("no blocking incident; apdex 0.999, error_ratio 0.001")
            or "apdex 0.995" in result.reason
        )
    assert "apdex ≥ 0.995, error ratio ≤ 0.01" in result.threshold


def test_without_health_bounds_the_gate_is_unchanged():
    result = evaluate_rollback_safety(NOW, RollbackObservation(deployed=BAKED), timedelta(hours=2))
    assert result.open
    assert result.reason.endswith("no blocking incident")


def test_baking_comes_before_health():
    fresh = Deployment(1, "gprd", "a" * 40, "pkg", "success", NOW, NOW - timedelta(minutes=30))
    result = evaluate_rollback_safety(
        NOW,
        RollbackObservation(deployed=fresh, health=HealthReading(0.5, FRESH, 0.5, FRESH)),
        timedelta(hours=2),
        BOUNDS,
    )
    assert not result.open
    assert result.retry_at == NOW + timedelta(minutes=90)


# -- against the real Prometheus fixture -------------------------------------------------------------------


@pytest.fixture
def prometheus_hook(prometheus_with_traffic, monkeypatch):
    from pdm_orchestrator.hooks.prometheus import PrometheusHook

    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", prometheus_with_traffic.url)
    return PrometheusHook("prometheus_default")


LIVE = HealthBounds(
    apdex_query='min(gitlab_service_apdex:ratio_5m{env="{environment}"})',
    min_apdex=0.999,
    error_ratio_query='max(gitlab_service_errors:ratio_5m{env="{environment}"})',
    max_error_ratio=0.01,
    max_staleness=timedelta(seconds=30),
)


def _set_errors(world, env: str, value: float) -> None:
    world.exporter.set_value(env, "errors", value)
    world.prometheus.wait_for_value(
        f'max(gitlab_service_errors:ratio_5m{{env="{env}"}})',
        lambda seen: seen == value or (math.isnan(value) and math.isnan(seen)),
    )


def test_live_health_moves_the_gate(prometheus_with_traffic, prometheus_hook):
    world = prometheus_with_traffic
    env = "gprd"
    world.set_health(env, 0.9995)
    _set_errors(world, env, 0.002)

    def gate():
        now = datetime.now(UTC)
        reading = prometheus_hook.health_reading(LIVE, env, now)
        return evaluate_rollback_safety(
            now, RollbackObservation(deployed=BAKED, health=reading), timedelta(hours=2), LIVE
        )

    assert gate().open
    _set_errors(world, env, 0.2)
    assert gate().reason == "error ratio 0.2 above maximum 0.01: rollback may be needed"
    _set_errors(world, env, 0.002)
    world.set_health(env, 0.98)
    assert gate().reason == "apdex 0.98 below minimum 0.999: rollback may be needed"
    world.set_health(env, 0.9995)
    assert gate().open


def test_live_no_data_and_unreachable_prometheus(prometheus_with_traffic, prometheus_hook, monkeypatch):
    now = datetime.now(UTC)
    reading = prometheus_hook.health_reading(LIVE, "nowhere", now)
    result = evaluate_rollback_safety(
        now, RollbackObservation(deployed=BAKED, health=reading), timedelta(hours=2), LIVE
    )
    assert result.reason.startswith(
        'apdex unknown: min(gitlab_service_apdex:ratio_5m{env="{environment}"}) returned no data'
    )

    from pdm_orchestrator.hooks.prometheus import PrometheusHook

    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", "http://127.0.0.1:9")
    down = PrometheusHook("prometheus_default", timeout=2).health_reading(LIVE, "gprd", now)
    result = evaluate_rollback_safety(
        now, RollbackObservation(deployed=BAKED, health=down), timedelta(hours=2), LIVE
    )
    assert not result.open
    assert result.reason.startswith(
        "service health unknown: http://127.0.0.1:9/api/v1/query: ConnectionError"
    )
