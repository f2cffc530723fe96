"""Calendar rules: allow windows and change locks, each turned into UTC spans for any stretch of time.

DST rules (documented in docs/policy.md, tested in tests/policy/test_dst.py): windows are local wall-clock
times. A wall time that does not exist on a spring-forward day is taken as the first instant after the
gap (for a start and for an end alike). A wall time that occurs twice on a fall-back night is taken at
its first occurrence for a start and at its second occurrence for an end, so such a window is longer in
real time. An end that is not after the start crosses midnight into the next day; "24:00" is the
midnight that ends the day. An instance belongs to the day it starts on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Span = tuple[datetime, datetime]


def local_to_utc(day: date, wall: time, tz: ZoneInfo, *, as_end: bool = False) -> datetime:
    """A local wall-clock moment as a UTC instant, resolving DST gaps and repeats by the module's rules."""
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return first
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        # Occurs twice (fall back): the earlier instant opens, the later one closes.
        return second if as_end else first
    return _end_of_gap(naive, tz, min(first, second), max(first, second))


def _end_of_gap(naive: datetime, tz: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first instant whose wall time is at or after `naive`: the moment the clock jumped over it."""
    # Invariant: wall(low) < naive <= wall(high). Whole seconds are enough: zones change on the second.
    while high - low > timedelta(seconds=1):
        middle = low + timedelta(seconds=int((high - low).total_seconds()) // 2)
        if middle.astimezone(tz).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high


def format_wall_time(value: time | None) -> str:
    """`HH:MM`, with None as the `24:00` that ends a day."""
    return "24:00" if value is None else value.strftime("%H:%M")


@dataclass(frozen=True)
class RecurringRule:
    """Days of the week with a start and an end wall time in a time zone: a window or a recurring lock."""

    name: str
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time | None  # None = 24:00
    tz: ZoneInfo
    description: str | None = None

    def spans(self, start: datetime, end: datetime) -> list[Span]:
        """Instances intersecting [start, end), as UTC spans in order (not clipped)."""
        result: list[Span] = []
        # An instance starts at most one local day before it is seen (crossing midnight), and local days
        # can be offset from UTC by up to a day either way.
        day = start.astimezone(self.tz).date() - timedelta(days=2)
        last_day = end.astimezone(self.tz).date() + timedelta(days=1)
        while day <= last_day:
            if day.weekday() in self.days:
                opens = local_to_utc(day, self.start, self.tz)
                if self.end is None:
                    closes = local_to_utc(day + timedelta(days=1), time(0, 0), self.tz, as_end=True)
                elif self.end > self.start:
                    closes = local_to_utc(day, self.end, self.tz, as_end=True)
                else:
                    closes = local_to_utc(day + timedelta(days=1), self.end, self.tz, as_end=True)
                # Both ends inside one DST gap leave nothing.
                if closes > opens and closes > start and opens < end:
                    result.append((opens, closes))
            day += timedelta(days=1)
        return result

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "days": [DAY_NAMES[d] for d in sorted(self.days)],
            "start": format_wall_time(self.start),
            "end": format_wall_time(self.end),
            "timezone": self.tz.key,
        }
        if self.description:
            data["description"] = self.description
        return data


@dataclass(frozen=True)
class OneOffLock:
    """A dated freeze between two instants (an end-of-year change lock, a database upgrade)."""

    name: str
    opens: datetime
    closes: datetime
    description: str | None = None

    def spans(self, start: datetime, end: datetime) -> list[Span]:
        return [(self.opens, self.closes)] if self.closes > start and self.opens < end else []

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"from": _iso(self.opens), "to": _iso(self.closes)}
        if self.description:
            data["description"] = self.description
        return data


@dataclass(frozen=True)
class DatesLock:
    """Whole local days (family-and-friends days)."""

    name: str
    dates: frozenset[date]
    tz: ZoneInfo
    description: str | None = None

    def spans(self, start: datetime, end: datetime) -> list[Span]:
        return _whole_days(sorted(self.dates), self.tz, start, end)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "dates": [d.isoformat() for d in sorted(self.dates)],
            "timezone": self.tz.key,
        }
        if self.description:
            data["description"] = self.description
        return data


@dataclass(frozen=True)
class HolidayLock:
    """Public holidays of countries (and subdivisions such as US-CA), as whole local days."""

    name: str
    countries: tuple[str, ...]
    tz: ZoneInfo
    description: str | None = None

    def spans(self, start: datetime, end: datetime) -> list[Span]:
        first_year = start.astimezone(self.tz).year
        last_year = end.astimezone(self.tz).year
        days: set[date] = set()
        for country in self.countries:
            for year in range(first_year, last_year + 1):
                days |= holiday_dates(country, year)
        return _whole_days(sorted(days), self.tz, start, end)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"holidays": {"countries": list(self.countries)}, "timezone": self.tz.key}
        if self.description:
            data["description"] = self.description
        return data


LockRule = RecurringRule | OneOffLock | DatesLock | HolidayLock


@lru_cache(maxsize=512)
def holiday_dates(country: str, year: int) -> frozenset[date]:
    """Public holidays (observed days included) of `US` or `US-CA` style codes in one year, cached."""
    import holidays

    code, _, subdivision = country.partition("-")
    return frozenset(holidays.country_holidays(code, subdiv=subdivision or None, years=year).keys())


def _whole_days(days: Iterable[date], tz: ZoneInfo, start: datetime, end: datetime) -> list[Span]:
    result = []
    for day in days:
        opens = local_to_utc(day, time(0, 0), tz)
        closes = local_to_utc(day + timedelta(days=1), time(0, 0), tz, as_end=True)
        if closes > start and opens < end:
            result.append((opens, closes))
    return result


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def merge(spans: Iterable[Span]) -> list[Span]:
    """Union of spans: sorted, overlapping or touching spans joined."""
    merged: list[list[datetime]] = []
    for opens, closes in sorted(spans):
        if merged and opens <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], closes)
        else:
            merged.append([opens, closes])
    return [(a, b) for a, b in merged]


def subtract(spans: list[Span], holes: list[Span]) -> list[Span]:
    """Spans minus holes (both merged and sorted): deny wins over allow."""
    result: list[Span] = []
    for opens, closes in spans:
        cursor = opens
        for hole_open, hole_close in holes:
            if hole_close <= cursor or hole_open >= closes:
                continue
            if hole_open > cursor:
                result.append((cursor, hole_open))
            cursor = max(cursor, hole_close)
            if cursor >= closes:
                break
        if cursor < closes:
            result.append((cursor, closes))
    return result
