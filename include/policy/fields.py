"""Reads one field of the policy at a time (text, numbers, durations, zones, times, days...), reporting each problem with its key path and line."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from include.isotime import parse_iso_datetime
from include.policy import schema
from include.policy.durations import parse_duration
from include.policy.errors import PolicyError
from include.policy.learned import LearnedWindow
from include.policy.windows import DAY_NAMES, RecurringRule

WALL_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MISSING = object()


class FieldReader:
    """One validation pass; collects every problem instead of stopping at the first."""

    def __init__(self, source: str, lines: dict[str, int], prefix: str = "") -> None:
        self.source = source
        self.lines = lines
        self.prefix = prefix
        self.errors: list[str] = []
        self.broken_windows: set[str] = set()  # defined but invalid: already reported, not "unknown" again
        self.learned_windows: dict[str, LearnedWindow] = {}  # `learned:` windows, filled by parse_windows

    # -- reporting ----------------------------------------------------------------------------------
    def error(self, path: str, problem: str, *, with_line: bool = True) -> None:
        full = f"{self.prefix}{path}" if path else self.prefix.rstrip(".")
        line = self._line(full) if with_line else None
        where = f" (line {line})" if line else ""
        self.errors.append(f"{self.source}: {full or '(top level)'}: {problem}{where}")

    def _line(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            shorter = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", path)
            path = "" if shorter == path else shorter
        return None

    def fail_if_errors(self) -> None:
        if self.errors:
            raise PolicyError("\n".join(self.errors))

    # -- value checks -------------------------------------------------------------------------------
    def mapping(
        self, value: Any, path: str, allowed: Collection[str] | None = None, what: str = "key"
    ) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {kind_of(value)}")
            return {}
        for key in value:
            if not isinstance(key, str):
                self.error(
                    join_path(path, str(key)), f"{what} names must be text, got {kind_of(key)} {key!r}"
                )
            elif allowed is not None and key not in allowed:
                self.error(join_path(path, key), unknown_key(what, key, allowed))
        return {k: v for k, v in value.items() if isinstance(k, str)}

    def text(self, value: Any, path: str, default: str | None = None, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.error(path, "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"expected non-empty text, got {kind_of(value)} {value!r}")
            return default
        return value

    def choice(self, value: Any, path: str, options: tuple[str, ...]) -> str:
        if value is None:
            return options[0]
        if value not in options:
            self.error(path, f"expected one of {', '.join(options)}, got {value!r}")
            return options[0]
        return options[options.index(value)]

    def boolean(self, value: Any, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, got {value!r}")
            return default
        return value

    def number(
        self,
        value: Any,
        path: str,
        default: float,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
    ) -> float:
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (integer and value != int(value))
        ):
            self.error(path, f"expected {'a whole number' if integer else 'a number'}, got {value!r}")
            return default
        if minimum is not None and value < minimum:
            self.error(path, f"must be at least {minimum:g}, got {value:g}")
        if maximum is not None and value > maximum:
            self.error(path, f"must be at most {maximum:g}, got {value:g}")
        return float(value)

    def duration(
        self, value: Any, path: str, default: timedelta | None, *, positive: bool = False
    ) -> timedelta | None:
        if value is None:
            return default
        try:
            result = parse_duration(value)
        except ValueError as exc:
            self.error(path, str(exc))
            return default
        if positive and result <= timedelta(0):
            self.error(path, f"must be longer than zero, got {value!r}")
        return result

    def declared(self, spec: dict[str, Any], path: str) -> Any:
        """The setting at `path` read from its section's `spec` with the schema's type, default and bounds."""
        item = schema.field(path)
        value = spec.get(item.key)
        if item.kind == "duration":
            return self.duration(value, path, item.default, positive=item.positive)
        if item.kind in ("number", "integer"):
            number = self.number(
                value, path, item.default, item.minimum, item.maximum, item.kind == "integer"
            )
            return int(number) if item.kind == "integer" else number
        if item.kind == "choice":
            return self.choice(value, path, item.choices)
        if item.kind == "texts":
            return self.texts(value, path, item.default or ())
        if item.kind == "text":
            return self.text(value, path, item.default)
        raise KeyError(f"{path}: the schema's {item.kind!r} is read by the loader's own code")

    def texts(self, value: Any, path: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        if value is None:
            return default
        if not isinstance(value, list):
            self.error(path, f"expected a list of text, got {kind_of(value)}")
            return default
        good = []
        for index, item in enumerate(value):
            if isinstance(item, str) and item.strip():
                good.append(item)
            else:
                self.error(f"{path}[{index}]", f"expected non-empty text, got {item!r}")
        return tuple(good)

    def zone(self, value: Any, path: str, default: ZoneInfo) -> ZoneInfo:
        if value is None:
            return default
        if isinstance(value, str) and value.strip():
            try:
                return ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        self.error(path, f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin or UTC)")
        return default

    def wall_time(self, value: Any, path: str, *, is_end: bool) -> time | None | object:
        """A local time of day; None stands for 24:00 (ends only). Returns MISSING when invalid."""
        allowed = "00:00 to 24:00" if is_end else "00:00 to 23:59"
        if value is None:
            self.error(path, f'is required (a time "HH:MM" from {allowed})')
            return MISSING
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 06:00 as the sexagesimal number 360.
            hours, minutes = divmod(value, 60)
            self.error(
                path, f'write the time in quotes, e.g. "{hours:02d}:{minutes:02d}" (YAML read {value!r})'
            )
            return MISSING
        match = WALL_TIME.match(value) if isinstance(value, str) else None
        if match:
            hours, minutes = int(match.group(1)), int(match.group(2))
            if is_end and (hours, minutes) == (24, 0):
                return None
            if hours < 24 and minutes < 60:
                return time(hours, minutes)
        self.error(path, f'expected a time "HH:MM" from {allowed}, got {value!r}')
        return MISSING

    def days(self, value: Any, path: str) -> frozenset[int]:
        if not isinstance(value, list) or not value:
            self.error(path, f"expected a non-empty list of days ({', '.join(DAY_NAMES)}), got {value!r}")
            return frozenset()
        found = set()
        for index, day in enumerate(value):
            name = day.strip().lower() if isinstance(day, str) else None
            if name in DAY_NAMES:
                found.add(DAY_NAMES.index(name))
            elif name in FULL_DAY_NAMES:
                found.add(FULL_DAY_NAMES.index(name))
            else:
                self.error(
                    f"{path}[{index}]", f"unknown day {day!r} (expected one of {', '.join(DAY_NAMES)})"
                )
        return frozenset(found)

    def recurring(self, name: str, spec: dict[str, Any], path: str, tz: ZoneInfo) -> RecurringRule | None:
        days = self.days(spec.get("days"), f"{path}.days")
        start = self.wall_time(spec.get("start"), f"{path}.start", is_end=False)
        end = self.wall_time(spec.get("end"), f"{path}.end", is_end=True)
        zone = self.zone(spec.get("timezone"), f"{path}.timezone", tz)
        description = self.text(spec.get("description"), f"{path}.description")
        if not isinstance(start, time) or not (end is None or isinstance(end, time)) or not days:
            return None
        return RecurringRule(name, days, start, end, zone, description)

    def instant(self, value: Any, path: str, tz: ZoneInfo, *, closing: bool) -> datetime | None:
        """A lock boundary. A bare date is a whole local day: from its start, or to its end when closing."""
        if value is None:
            self.error(path, "is required (an ISO-8601 date-time with offset, or a date)")
            return None
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value + timedelta(days=1 if closing else 0), time(0, 0))
        elif isinstance(value, str):
            text = value.strip()
            try:
                if len(text) == 10:
                    day = date.fromisoformat(text)
                    moment = datetime.combine(day + timedelta(days=1 if closing else 0), time(0, 0))
                else:
                    moment = parse_iso_datetime(text)
            except ValueError:
                self.error(
                    path,
                    f"expected an ISO-8601 date-time such as 2026-12-21T00:00:00Z or a date, got {value!r}",
                )
                return None
        else:
            self.error(path, f"expected an ISO-8601 date-time or a date, got {kind_of(value)} {value!r}")
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment.astimezone(UTC)

    def variables(self, value: Any, path: str, placeholders: tuple[str, ...]) -> dict[str, str]:
        """CI variables: text values (true/false and numbers as YAML wrote them), known placeholders only."""
        result: dict[str, str] = {}
        for key, raw in self.mapping(value, path, what="variable").items():
            if isinstance(raw, bool):
                raw = "true" if raw else "false"
            if not isinstance(raw, (str, int, float)):
                self.error(f"{path}.{key}", f"expected text, got {kind_of(raw)}")
                continue
            text = str(raw)
            try:
                names = template_fields(text)
            except ValueError as exc:
                self.error(f"{path}.{key}", f"not a valid template: {exc}")
                continue
            escaped = set(re.findall(r"\{\{([^{}]*)\}\}", text)) & set(placeholders)
            if escaped:
                # `{{decision_id}}` renders the literal text "{decision_id}": one value for every decision,
                # so every run would "resume" the first run's pipeline.
                self.error(
                    f"{path}.{key}",
                    f"escaped placeholder {{{{{sorted(escaped)[0]}}}}} renders the same text for every run; "
                    f"write {{{sorted(escaped)[0]}}}",
                )
            for name in names:
                if name not in placeholders:
                    self.error(
                        f"{path}.{key}",
                        f"unknown placeholder {{{name}}} (known: {', '.join('{' + p + '}' for p in placeholders)})",
                    )
            result[key] = text
        return result


def or_default(value: timedelta | None, default: timedelta) -> timedelta:
    """`value` unless it is missing; unlike `or`, keeps a zero duration."""
    return default if value is None else value


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def kind_of(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def unknown_key(what: str, key: str, allowed: Collection[str]) -> str:
    import difflib  # only when a key is wrong: declaring a DAG never needs it

    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f'did you mean "{close[0]}"? ' if close else ""
    return f"unknown {what} ({hint}allowed: {', '.join(allowed)})"


def template_fields(text: str) -> list[str]:
    """The placeholders `str.format` fills in `text` (escaped `{{...}}` is literal text, not a field)."""
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
