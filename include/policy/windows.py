"""Calendar arithmetic for windows and change locks: local wall-clock rules turned into UTC spans.

DST rules (documented in docs/policy.md): a start time that does not exist on a spring-forward day begins
at the first instant after the gap; a wall time that occurs twice on a fall-back night is taken at its
first occurrence for a start and its second occurrence for an end, so such a window is longer in real
time. Windows whose end is not after their start cross midnight into the next day; "24:00" is midnight
at the end of the day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Span = tuple[datetime, datetime]


def local_to_utc(day: date, wall: time, tz: ZoneInfo, *, as_end: bool = False) -> datetime:
    """A local wall-clock moment as a UTC instant, with the DST rules of this module."""
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    first_utc, second_utc = first.astimezone(UTC), second.astimezone(UTC)
    if first_utc == second_utc:
        return first_utc  # an ordinary moment
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        # In a spring-forward gap: the first instant whose wall time is at or after the requested one.
        low, high = min(first_utc, second_utc), max(first_utc, second_utc)
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if middle.astimezone(tz).replace(tzinfo=None) >= naive:
                high = middle
            else:
                low = middle
        return high.replace(microsecond=0) if high.microsecond else high
    # Ambiguous (fall back): first occurrence for a start, second for an end.
    return second_utc if as_end else first_utc


@dataclass(frozen=True)
class RecurringRule:
    """Days of the week with a start and end wall time in a time zone (a window or a recurring lock)."""

    name: str
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time | None  # None = 24:00
    tz: ZoneInfo

    def spans(self, start: datetime, end: datetime) -> list[Span]:
        """Instances that intersect [start, end), as UTC spans, in order."""
        result: list[Span] = []
        first_day = start.astimezone(self.tz).date() - timedelta(days=2)
        last_day = end.astimezone(self.tz).date() + timedelta(days=1)
        day = first_day
        while day <= last_day:
            if day.weekday() in self.days:
                opens = local_to_utc(day, self.start, self.tz)
                if self.end is None:
                    closes = local_to_utc(day + timedelta(days=1), time(0, 0), self.tz, as_end=True)
                elif self.end > self.start:
                    closes = local_to_utc(day, self.end, self.tz, as_end=True)
                else:
                    closes = local_to_utc(day + timedelta(days=1), self.end, self.tz, as_end=True)
                if closes > start and opens < end and closes > opens:
                    result.append((opens, closes))
            day += timedelta(days=1)
        return result


@dataclass(frozen=True)
class DatedRule:
    """A one-off span (a dated freeze) or whole local days (family-and-friends days, holidays)."""

    name: str
    fixed: tuple[Span, ...] = ()
    days: frozenset[date] = frozenset()
    tz: ZoneInfo = ZoneInfo("UTC")
    holiday_countries: tuple[str, ...] = ()

    def spans(self, start: datetime, end: datetime) -> list[Span]:
        result = [(a, b) for a, b in self.fixed if b > start and a < end]
        days = set(self.days)
        if self.holiday_countries:
            years = range(start.astimezone(self.tz).year - 1, end.astimezone(self.tz).year + 2)
            for country in self.holiday_countries:
                days |= holiday_dates(country, tuple(years))
        for day in sorted(days):
            opens = local_to_utc(day, time(0, 0), self.tz)
            closes = local_to_utc(day + timedelta(days=1), time(0, 0), self.tz, as_end=True)
            if closes > start and opens < end:
                result.append((opens, closes))
        return sorted(result)


_HOLIDAYS: dict[tuple[str, tuple[int, ...]], frozenset[date]] = {}


def holiday_dates(country: str, years: tuple[int, ...]) -> frozenset[date]:
    """Public holidays of a country (optionally `US-CA` style with a subdivision), cached per years."""
    key = (country, years)
    if key not in _HOLIDAYS:
        import holidays

        code, _, subdivision = country.partition("-")
        calendar = holidays.country_holidays(code, subdiv=subdivision or None, years=list(years))
        _HOLIDAYS[key] = frozenset(calendar.keys())
    return _HOLIDAYS[key]


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
    """Spans minus holes (both merged and sorted)."""
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
