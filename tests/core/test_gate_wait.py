"""When a deferred gate wait looks again: sleep to a window's opening, poll otherwise, give up past the bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from include.gates.result import GateResult
from pdm_orchestrator.triggers.gates import next_check

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POLL = timedelta(seconds=60)


def _closed(gate, retry_at=None):
    return GateResult(gate, False, None, None, "closed", NOW, retry_at=retry_at)


def test_window_opening_within_bound_wakes_exactly_then():
    opens = NOW + timedelta(hours=2)
    assert next_check(NOW, [_closed("window", opens)], NOW + timedelta(hours=6), POLL) == opens


def test_window_opening_after_bound_gives_up_now():
    assert (
        next_check(NOW, [_closed("window", NOW + timedelta(days=3))], NOW + timedelta(hours=6), POLL) is None
    )


def test_polling_gate_rechecks_after_poll_interval():
    assert next_check(NOW, [_closed("traffic")], NOW + timedelta(hours=6), POLL) == NOW + POLL


def test_window_and_traffic_closed_wakes_at_window_opening():
    opens = NOW + timedelta(hours=2)
    assert (
        next_check(NOW, [_closed("window", opens), _closed("traffic")], NOW + timedelta(hours=6), POLL)
        == opens
    )


def test_deadline_caps_the_wait():
    assert next_check(NOW, [_closed("traffic")], NOW + timedelta(seconds=10), POLL) == NOW + timedelta(
        seconds=10
    )
    assert next_check(NOW, [_closed("traffic")], NOW, POLL) is None
