"""Which window a late or backfilled run was created for, and the `window_missed` outcome it records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pendulum

from include.policy import load_policy
from pdm_orchestrator.run_steps import missed_outcome, window_missed
from pdm_orchestrator.timetables.policy_windows import PolicyWindowTimetable
from tests.backfill.support import last_full_weekend, weekend_policy, weekend_slot_hour
from tests.support.policies import write_policy

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # a Wednesday


def policy_file(tmp_path, now=NOW):
    return write_policy(tmp_path / "policy.yaml", weekend_policy(now))


def test_the_last_full_weekend_is_in_the_past_whatever_the_day():
    for offset in range(7):
        now = NOW + timedelta(days=offset)
        saturday, monday = last_full_weekend(now)
        assert saturday.weekday() == 5 and monday - saturday == timedelta(days=2) and monday <= now
        assert now - monday < timedelta(days=7)


def test_the_timetable_gives_one_run_per_window_opening_of_the_weekend(tmp_path):
    path = policy_file(tmp_path)
    saturday, monday = last_full_weekend(NOW)
    hour = weekend_slot_hour(NOW)
    times = PolicyWindowTimetable(str(path), "gprd").run_times(
        pendulum.instance(saturday), pendulum.instance(monday)
    )
    assert times == [saturday + timedelta(hours=hour), saturday + timedelta(days=1, hours=hour)]


def test_a_run_for_a_window_that_closed_is_window_missed(tmp_path):
    policy = load_policy(policy_file(tmp_path)).for_environment("gprd")
    saturday, _ = last_full_weekend(NOW)
    opening = saturday + timedelta(hours=weekend_slot_hour(NOW))
    missed = window_missed(policy, "background", pendulum.instance(opening), NOW)
    assert missed == {
        "window": "weekend_slot",
        "class": "background",
        "scheduled_for": opening.isoformat(),
        "opened_at": opening.isoformat(),
        "closed_at": (opening + timedelta(minutes=45)).isoformat(),
        "next_opens_at": (opening + timedelta(days=7)).isoformat(),
        "max_wait_seconds": 8.0,
    }
    outcome = missed_outcome(missed, "window: closed")
    assert outcome["outcome"] == "window_missed" and outcome["window"] == missed
    assert outcome["reason"].startswith(
        f"window missed: weekend_slot (background) opened {opening.isoformat()} and closed "
        f"{(opening + timedelta(minutes=45)).isoformat()}"
    )


def test_no_miss_while_the_window_is_open_or_when_the_run_was_not_made_for_one(tmp_path):
    policy = load_policy(policy_file(tmp_path)).for_environment("gprd")
    saturday, _ = last_full_weekend(NOW)
    opening = saturday + timedelta(hours=weekend_slot_hour(NOW))
    # Still open: the run can go ahead, nothing was missed.
    assert window_missed(policy, "background", opening, opening + timedelta(minutes=10)) is None
    # A manual run at a time outside every window waits for its window; it did not miss one.
    assert window_missed(policy, "background", NOW, NOW + timedelta(seconds=8)) is None
    # No class (nothing pending) or no logical date (manual run without one): nothing to say.
    assert window_missed(policy, None, opening, NOW) is None
    assert window_missed(policy, "background", None, NOW) is None
    # A class without windows never misses one (a human decides).
    assert window_missed(policy, "unknown", opening, NOW) is None
