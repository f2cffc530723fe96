"""Traffic pulled from a real Prometheus (the shared fixture with 4 weeks of weekly-profile history)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from include.sandbox.traffic_exporter import OPS
from include.simulation.inputs import STEP_MINUTES, STEPS_PER_WEEK, InputError, traffic_from_prometheus


def test_a_week_of_history_folds_onto_the_weekly_profile(prometheus_with_traffic):
    world = prometheus_with_traffic
    end = world.history_end - timedelta(minutes=STEP_MINUTES)
    week = traffic_from_prometheus(world.url, f'sum({OPS}{{env="gprd"}})', end)
    assert len(week) == STEPS_PER_WEEK
    monday = (end - timedelta(days=end.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    for index in range(0, STEPS_PER_WEEK, 37):
        moment = monday + timedelta(minutes=index * STEP_MINUTES)
        expected = world.profile.expected_rate_at(moment)
        assert week[index] == pytest.approx(expected, rel=world.profile.noise * 1.5 + 0.01), moment


def test_an_empty_answer_is_an_input_error_naming_the_query(prometheus_with_traffic):
    with pytest.raises(InputError, match=r"query 'sum\(no_such_metric\)' returned no series"):
        traffic_from_prometheus(
            prometheus_with_traffic.url, "sum(no_such_metric)", prometheus_with_traffic.history_end
        )


def test_an_unreachable_prometheus_is_an_input_error():
    from datetime import UTC, datetime

    with pytest.raises(InputError, match="prometheus http://127.0.0.1:9: range query failed"):
        traffic_from_prometheus("http://127.0.0.1:9", "up", datetime.now(UTC), timeout=2)
