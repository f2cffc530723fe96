"""Learned windows: allow windows whose hours come from data (the stored traffic profile), not from the file.

A window `{learned: low_traffic, max_age: 3d}` is open in the hours of the week (UTC) that the latest
traffic profile of the environment marks as low-traffic. The profile is computed daily by the
`pdm_traffic_profile` DAG and stored in the audit database. No profile, or one older than `max_age`, and
the window is closed, with that reason (fail closed). Change locks still win over a learned window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.policy.durations import format_duration

LEARNED_SOURCES = ("low_traffic",)
HOURS_PER_WEEK = 168
DEFAULT_MAX_AGE = timedelta(days=3)


@dataclass(frozen=True)
class LearnedWindow:
    """A named window whose open hours come from the latest stored traffic profile."""

    name: str
    source: str = "low_traffic"
    max_age: timedelta = DEFAULT_MAX_AGE
    description: str | None = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"learned": self.source, "max_age": format_duration(self.max_age)}
        if self.description:
            data["description"] = self.description
        return data


@dataclass(frozen=True)
class TrafficProfile:
    """An environment's learned weekly traffic: typical level per UTC hour of the week and its quiet hours.

    :param low_traffic_hours: hours of the week (0 = Monday 00:00 UTC … 167 = Sunday 23:00 UTC).
    :param typical: the median request rate of each of the 168 hours (None: no data in that hour).
    :param percentile: an hour is low-traffic when its typical level is at or below this percentile of
        all hours' typical levels.
    """

    environment: str
    computed_at: datetime
    low_traffic_hours: frozenset[int]
    typical: tuple[float | None, ...] = ()
    percentile: float = 30.0
    query: str = ""
    history_start: datetime | None = None
    history_end: datetime | None = None
    samples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.computed_at.tzinfo is None:
            raise ValueError(f"TrafficProfile.computed_at must be timezone-aware, got {self.computed_at!r}")
        bad = [h for h in self.low_traffic_hours if not 0 <= h < HOURS_PER_WEEK]
        if bad:
            raise ValueError(f"TrafficProfile.low_traffic_hours must be within 0..167, got {sorted(bad)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the audit store keeps it as its payload)."""
        return {
            "environment": self.environment,
            "computed_at": self.computed_at.isoformat(),
            "low_traffic_hours": sorted(self.low_traffic_hours),
            "typical": list(self.typical),
            "percentile": self.percentile,
            "query": self.query,
            "history_start": self.history_start.isoformat() if self.history_start else None,
            "history_end": self.history_end.isoformat() if self.history_end else None,
            "samples": self.samples,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrafficProfile:
        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        computed_at = when("computed_at")
        if computed_at is None:
            raise ValueError("traffic profile without computed_at")
        return cls(
            environment=str(data.get("environment") or ""),
            computed_at=computed_at,
            low_traffic_hours=frozenset(int(h) for h in data.get("low_traffic_hours") or ()),
            typical=tuple(None if v is None else float(v) for v in data.get("typical") or ()),
            percentile=float(data.get("percentile", 30.0)),
            query=str(data.get("query") or ""),
            history_start=when("history_start"),
            history_end=when("history_end"),
            samples=int(data.get("samples") or 0),
            extra=dict(data.get("extra") or {}),
        )

    def expires_at(self, window: LearnedWindow) -> datetime:
        return self.computed_at + window.max_age

    def describe_hours(self) -> str:
        """The low-traffic hours as compact UTC ranges, e.g. `Mon 02:00–05:00, Sat 00:00–Sun 24:00`."""
        return describe_hours(self.low_traffic_hours)


def hour_spans(hours: frozenset[int], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The given hours of the week as merged UTC spans intersecting [start, end) (whole spans, unclipped)."""
    if not hours:
        return []
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    monday = (start - timedelta(days=start.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    cursor = monday - timedelta(weeks=1)  # a run of hours may have begun in the week before
    spans: list[list[datetime]] = []
    while cursor < end + timedelta(weeks=1):
        for how in sorted(hours):
            opens = cursor + timedelta(hours=how)
            closes = opens + timedelta(hours=1)
            if spans and spans[-1][1] == opens:
                spans[-1][1] = closes
            else:
                spans.append([opens, closes])
        cursor += timedelta(weeks=1)
    return [(a, b) for a, b in spans if b > start and a < end]


def subtract(
    spans: list[tuple[datetime, datetime]], holes: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """`spans` minus `holes` (both sorted or not); what remains, in order."""
    result: list[tuple[datetime, datetime]] = []
    for opens, closes in sorted(spans):
        pieces = [(opens, closes)]
        for h_open, h_close in holes:
            pieces = [
                part
                for a, b in pieces
                for part in ((a, min(b, h_open)), (max(a, h_close), b))
                if part[1] > part[0]
            ]
        result += pieces
    return sorted(result)


def describe_hours(hours: frozenset[int] | set[int]) -> str:
    """Compact UTC ranges of hours of the week; a run across Sunday→Monday is shown as one range."""
    if not hours:
        return "none"
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    runs: list[list[int]] = []
    for how in sorted(hours):
        if runs and runs[-1][1] == how:
            runs[-1][1] = how + 1
        else:
            runs.append([how, how + 1])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][1] == HOURS_PER_WEEK:
        last = runs.pop()
        runs[0] = [last[0], runs[0][1] + HOURS_PER_WEEK]

    def label(how: int, closing: bool) -> str:
        how %= HOURS_PER_WEEK
        if closing and how % 24 == 0:
            return f"{days[(how // 24 - 1) % 7]} 24:00"
        return f"{days[how // 24]} {how % 24:02d}:00"

    text = []
    for a, b in runs:
        if b - a == HOURS_PER_WEEK:
            return "all week"
        start, stop = label(a, False), label(b, True)
        same_day = start.split()[0] == stop.split()[0]
        text.append(f"{start}–{stop.split()[1]}" if same_day else f"{start}–{stop}")
    return ", ".join(text) + " UTC"
