"""A policy whose only windows are a short weekend slot at an hour far from now, and the last full weekend."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from tests.support.policies import e2e_policy


def weekend_slot_hour(now: datetime) -> int:
    """An hour twelve hours away from now: the slot is never open while the test runs."""
    return (now.hour + 12) % 24


def weekend_policy(now: datetime, max_wait: str = "8s") -> dict[str, Any]:
    """Every automatic class may run only Saturday and Sunday, HH:00–HH:45 UTC; pdm_gprd is scheduled.

    A slot shorter than the timetable's 2-hour re-check grid gets exactly one run: at its opening.
    """
    hour = weekend_slot_hour(now)
    policy = e2e_policy(now, max_wait=max_wait)
    policy["windows"] = {
        "weekend_slot": {"days": ["sat", "sun"], "start": f"{hour:02d}:00", "end": f"{hour:02d}:45"}
    }
    for rule in policy["classes"].values():
        if rule.get("automatic"):
            rule["windows"] = ["weekend_slot"]
    policy["environments"]["gprd"]["schedule"] = True
    return policy


def last_full_weekend(now: datetime) -> tuple[datetime, datetime]:
    """[Saturday 00:00, Monday 00:00) UTC of the latest weekend that is wholly in the past."""
    today = now.astimezone(UTC).date()
    since_saturday = (today.weekday() - 5) % 7
    if since_saturday < 2:  # Saturday or Sunday today: the weekend before
        since_saturday += 7
    saturday = datetime.combine(today - timedelta(days=since_saturday), time(0), tzinfo=UTC)
    return saturday, saturday + timedelta(days=2)
