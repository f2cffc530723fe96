"""Builds the `windows` (recurring and learned) and `change_locks` (one-off, recurring, dates, holidays) sections."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from include.policy import schema
from include.policy.fields import FieldReader, kind_of
from include.policy.holiday_codes import calendar_problem
from include.policy.learned import LEARNED_SOURCES, LearnedWindow
from include.policy.windows import (
    DatesLock,
    HolidayLock,
    LockRule,
    OneOffLock,
    RecurringRule,
)

WINDOW_KEYS = schema.keys("windows.<name>")
LEARNED_WINDOW_KEYS = schema.keys("windows.<name> (learned)")
LOCK_KINDS = {
    kind: schema.keys(f"change_locks[i] ({kind})") for kind in ("one-off", "recurring", "dates", "holidays")
}
LOCK_KEYS = tuple(dict.fromkeys(k for keys in LOCK_KINDS.values() for k in keys))


class WindowsAndLocks(FieldReader):
    """Builds the `windows` and `change_locks` sections."""

    def parse_windows(self, value: Any, tz: ZoneInfo) -> dict[str, RecurringRule]:
        windows: dict[str, RecurringRule] = {}
        for name, spec in self.mapping(value, "windows", what="window").items():
            path = f"windows.{name}"
            if not isinstance(spec, dict):
                self.error(path, f"expected a mapping with days, start, end, got {kind_of(spec)}")
                self.broken_windows.add(name)
                continue
            if "learned" in spec:
                learned = self.learned(name, spec, path)
                if learned:
                    self.learned_windows[name] = learned
                else:
                    self.broken_windows.add(name)
                continue
            rule = self.recurring(name, self.mapping(spec, path, WINDOW_KEYS), path, tz)
            if rule:
                windows[name] = rule
            else:
                self.broken_windows.add(name)
        return windows

    def learned(self, name: str, spec: dict[str, Any], path: str) -> LearnedWindow | None:
        """`{learned: low_traffic, max_age: 3d}`: open in the stored profile's low-traffic hours."""
        spec = self.mapping(spec, path, LEARNED_WINDOW_KEYS)
        source = spec.get("learned")
        if source not in LEARNED_SOURCES:
            self.error(f"{path}.learned", f"expected one of {', '.join(LEARNED_SOURCES)}, got {source!r}")
            return None
        max_age = self.duration(spec.get("max_age"), f"{path}.max_age", timedelta(days=3), positive=True)
        description = self.text(spec.get("description"), f"{path}.description")
        if max_age is None or max_age <= timedelta(0):
            return None
        return LearnedWindow(name, source, max_age, description)

    def parse_locks(self, value: Any, tz: ZoneInfo) -> list[LockRule]:
        locks: list[LockRule] = []
        if value is None:
            return locks
        if not isinstance(value, list):
            self.error("change_locks", f"expected a list of locks, got {kind_of(value)}")
            return locks
        names: dict[str, int] = {}
        for index, spec in enumerate(value):
            path = f"change_locks[{index}]"
            if not isinstance(spec, dict):
                self.error(path, f"expected a mapping with a name, got {kind_of(spec)}")
                continue
            spec = self.mapping(spec, path, LOCK_KEYS)
            name = self.text(spec.get("name"), f"{path}.name", required=True) or f"change lock {index}"
            if name in names:
                self.error(f"{path}.name", f'"{name}" is already the name of change_locks[{names[name]}]')
            names.setdefault(name, index)
            kinds = [
                kind
                for kind, marker in (
                    ("one-off", "from"),
                    ("recurring", "days"),
                    ("dates", "dates"),
                    ("holidays", "holidays"),
                )
                if marker in spec or (kind == "one-off" and "to" in spec)
            ]
            if len(kinds) != 1:
                found = " and ".join(kinds) if kinds else "none"
                self.error(
                    path,
                    "give exactly one kind of lock: from/to (one-off), days/start/end (recurring), dates, "
                    f"or holidays (found: {found})",
                )
                continue
            kind = kinds[0]
            for key in spec:
                if key in LOCK_KEYS and key not in LOCK_KINDS[kind]:
                    self.error(
                        f"{path}.{key}",
                        f"does not belong to a {kind} lock (its keys: {', '.join(LOCK_KINDS[kind])})",
                    )
            zone = self.zone(spec.get("timezone"), f"{path}.timezone", tz)
            description = self.text(spec.get("description"), f"{path}.description")
            lock = self.parse_lock(kind, name, spec, path, zone, description)
            if lock is not None:
                locks.append(lock)
        return locks

    def parse_lock(
        self, kind: str, name: str, spec: dict[str, Any], path: str, zone: ZoneInfo, description: str | None
    ) -> LockRule | None:
        if kind == "one-off":
            opens = self.instant(spec.get("from"), f"{path}.from", zone, closing=False)
            closes = self.instant(spec.get("to"), f"{path}.to", zone, closing=True)
            if opens is None or closes is None:
                return None
            if closes <= opens:
                self.error(
                    f"{path}.to",
                    f"must be after from ({closes.isoformat()} is not after {opens.isoformat()})",
                )
                return None
            return OneOffLock(name, opens, closes, description)
        if kind == "recurring":
            return self.recurring(name, spec, path, zone)
        if kind == "dates":
            items = spec["dates"]
            if not isinstance(items, list) or not items:
                self.error(f"{path}.dates", f"expected a non-empty list of dates YYYY-MM-DD, got {items!r}")
                return None
            days = set()
            for index, item in enumerate(items):
                try:
                    if isinstance(item, datetime):
                        raise ValueError
                    days.add(item if isinstance(item, date) else date.fromisoformat(str(item)))
                except ValueError:
                    self.error(f"{path}.dates[{index}]", f"expected a date YYYY-MM-DD, got {item!r}")
            return DatesLock(name, frozenset(days), zone, description)
        holidays_spec = self.mapping(
            spec["holidays"], f"{path}.holidays", schema.keys("change_locks[i].holidays")
        )
        countries = self.texts(holidays_spec.get("countries"), f"{path}.holidays.countries")
        if not countries:
            self.error(
                f"{path}.holidays.countries",
                "expected a non-empty list of country codes such as US, GB, US-CA",
            )
        for index, country in enumerate(countries):
            problem = calendar_problem(country)
            if problem:
                self.error(f"{path}.holidays.countries[{index}]", problem)
        return HolidayLock(name, countries, zone, description)
