"""Durations as written in the policy ("90s", "30m", "4h", "2d", "1w", "1h30m") and back."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[smhdw]\s*)+$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """A policy duration. A bare number is refused (is `6` minutes or hours?), except 0."""
    if isinstance(value, timedelta):
        return value
    if value == 0 and not isinstance(value, bool):
        return timedelta(0)
    if not isinstance(value, str) or not _WHOLE.match(value):
        raise ValueError(f"expected a duration with a unit such as 90s, 30m, 4h, 2d or 1h30m, got {value!r}")
    seconds = sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in _PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact policy spelling: 2d, 4h, 90m, 45s."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def describe_wait(value: timedelta) -> str:
    """A wait as a release manager reads it: 2d 3h, 5h 12m, 12m, 40s."""
    seconds = max(0, int(value.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"
