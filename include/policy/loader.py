"""Reads and validates a policy file; every problem is reported at once as `file: key.path: problem`."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from include.classification.classes import MigrationClass
from include.isotime import parse_iso_datetime
from include.policy import schema
from include.policy.calendar import allowed_blocks, covering, lock_blocks
from include.policy.durations import format_duration, parse_duration
from include.policy.errors import PolicyError
from include.policy.learned import LEARNED_SOURCES, LearnedWindow
from include.policy.model import (
    DEFAULT_APPROVAL_TIMEOUT,
    ApprovalSettings,
    ClassRule,
    DeployLockSettings,
    EnvironmentPolicy,
    ForecastSettings,
    GateSettings,
    GitLabSettings,
    NotificationSettings,
    PipelineMatch,
    PipelineSettings,
    Policy,
    RollbackHealthSettings,
    RollbackSettings,
    TrafficGateSettings,
    TrafficProfileSettings,
)
from include.policy.schema import DEFAULT_TRAFFIC_QUERY
from include.policy.windows import (
    DAY_NAMES,
    DatesLock,
    HolidayLock,
    LockRule,
    OneOffLock,
    RecurringRule,
)

# Every section's keys, from the one schema (include/policy/schema.py).
TOP_KEYS = schema.keys("")
WINDOW_KEYS = schema.keys("windows.<name>")
LEARNED_WINDOW_KEYS = schema.keys("windows.<name> (learned)")
PROFILE_KEYS = schema.keys("gates.traffic.profile")
FORECAST_KEYS = schema.keys("gates.deploy_lock.forecast")
HEALTH_KEYS = schema.keys("gates.rollback.health")
MAX_APPROVAL_TIMEOUT = timedelta(days=30)
LOCK_KINDS = {
    kind: schema.keys(f"change_locks[i] ({kind})") for kind in ("one-off", "recurring", "dates", "holidays")
}
LOCK_KEYS = tuple(dict.fromkeys(k for keys in LOCK_KINDS.values() for k in keys))
CLASS_KEYS = schema.keys("classes.<class>")
GATE_KEYS = schema.keys("gates")
TRAFFIC_KEYS = schema.keys("gates.traffic")
DEPLOY_LOCK_KEYS = schema.keys("gates.deploy_lock")
ROLLBACK_KEYS = schema.keys("gates.rollback")
GITLAB_KEYS = schema.keys("gitlab")
PIPELINE_KEYS = schema.keys("gitlab.pdm_pipeline")
ENV_KEYS = schema.keys("environments.<name>")
PIPELINE_PLACEHOLDERS = ("environment", "sha", "package", "decision_id", "versions")

_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Recurring locks repeat weekly; one year holds both DST changes, so it shows whether a class can ever run.
_SAMPLE_YEAR = (datetime(2026, 1, 5, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC))
_MISSING = object()


def load_policy(path: str | Path) -> Policy:
    """Parse and validate a policy file; raises PolicyError naming the file, key path, line and problem.

    A valid policy is kept by its path and content (a Policy is pure): the DAG file and each DAG's
    timetable load the same file in one parse, and re-reading an unchanged file costs a hash.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror}") from None
    key = (str(path), hashlib.sha256(text.encode("utf-8")).hexdigest())
    policy = _LOADED.get(key)
    if policy is None:
        policy = _load_text(path, text)
        if len(_LOADED) >= 16:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = policy
    return policy


_LOADED: dict[tuple[str, str], Policy] = {}
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_text(path: Path, text: str) -> Policy:
    """Parse and validate the text of the policy file at `path` (its name goes into every message)."""
    try:
        try:  # libyaml when PyYAML has it: the same nodes and values, a tenth of the time
            node = yaml.compose(text, Loader=_FAST_LOADER)
            data = yaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 - a safe loader (C or Python)
        except yaml.YAMLError:  # the message of the pure-Python parser, as before
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PolicyError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    lines: dict[str, int] = {}
    duplicates: list[tuple[str, str]] = []
    if node is not None:
        _walk(node, "", lines, duplicates)
    return _Parser(str(path), lines).parse(data, duplicates)


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    """Validate policy data (as loaded from YAML or built in code) and build the typed Policy."""
    return _Parser(source, {}).parse(data, [])


def _walk(node: yaml.Node, path: str, lines: dict[str, int], duplicates: list[tuple[str, str]]) -> None:
    """Record the line of every key path, and every key written twice in one mapping."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key == "<<":
                continue
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                duplicates.append(
                    (
                        child,
                        f"defined twice (lines {seen[key]} and {line}); YAML would silently keep the last",
                    )
                )
            else:
                seen[key] = line
                lines[child] = line
            _walk(value_node, child, lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, f"{path}[{index}]", lines, duplicates)


class _Parser:
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
            self.error(path, f"expected a mapping, got {_kind(value)}")
            return {}
        for key in value:
            if not isinstance(key, str):
                self.error(_join(path, str(key)), f"{what} names must be text, got {_kind(key)} {key!r}")
            elif allowed is not None and key not in allowed:
                self.error(_join(path, key), _unknown(what, key, allowed))
        return {k: v for k, v in value.items() if isinstance(k, str)}

    def text(self, value: Any, path: str, default: str | None = None, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.error(path, "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"expected non-empty text, got {_kind(value)} {value!r}")
            return default
        return value

    def choice(self, value: Any, path: str, options: tuple[str, ...]) -> str:
        if value is None:
            return options[0]
        if value not in options:
            self.error(path, f"expected one of {', '.join(options)}, got {value!r}")
            return options[0]
        return value

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
            self.error(path, f"expected a list of text, got {_kind(value)}")
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
        """A local time of day; None stands for 24:00 (ends only). Returns _MISSING when invalid."""
        allowed = "00:00 to 24:00" if is_end else "00:00 to 23:59"
        if value is None:
            self.error(path, f'is required (a time "HH:MM" from {allowed})')
            return _MISSING
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 06:00 as the sexagesimal number 360.
            hours, minutes = divmod(value, 60)
            self.error(
                path, f'write the time in quotes, e.g. "{hours:02d}:{minutes:02d}" (YAML read {value!r})'
            )
            return _MISSING
        match = _TIME.match(value) if isinstance(value, str) else None
        if match:
            hours, minutes = int(match.group(1)), int(match.group(2))
            if is_end and (hours, minutes) == (24, 0):
                return None
            if hours < 24 and minutes < 60:
                return time(hours, minutes)
        self.error(path, f'expected a time "HH:MM" from {allowed}, got {value!r}')
        return _MISSING

    def days(self, value: Any, path: str) -> frozenset[int]:
        if not isinstance(value, list) or not value:
            self.error(path, f"expected a non-empty list of days ({', '.join(DAY_NAMES)}), got {value!r}")
            return frozenset()
        found = set()
        for index, day in enumerate(value):
            name = day.strip().lower() if isinstance(day, str) else None
            if name in DAY_NAMES:
                found.add(DAY_NAMES.index(name))
            elif name in _FULL_DAY_NAMES:
                found.add(_FULL_DAY_NAMES.index(name))
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
            self.error(path, f"expected an ISO-8601 date-time or a date, got {_kind(value)} {value!r}")
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment.astimezone(UTC)

    # -- the file -----------------------------------------------------------------------------------
    def parse(self, data: Any, duplicates: list[tuple[str, str]]) -> Policy:
        for path, problem in duplicates:
            self.error(path, problem, with_line=False)
        if not isinstance(data, dict):
            self.error(
                "", f"the policy must be a mapping of keys ({', '.join(TOP_KEYS[:5])}, …), got {_kind(data)}"
            )
            self.fail_if_errors()
        self.mapping(data, "", TOP_KEYS)
        version = data.get("version", 1)
        if version != 1 or isinstance(version, bool):
            self.error("version", f"unsupported policy version {version!r} (this release reads version 1)")
        tz = self.zone(data.get("timezone", "UTC"), "timezone", ZoneInfo("UTC"))
        target = self.declared(data, "target")
        mode = self.declared(data, "execution_mode")
        windows = self.parse_windows(data.get("windows"), tz)
        locks = self.parse_locks(data.get("change_locks"), tz)
        gates = self.parse_gates(data.get("gates"))
        classes = self.parse_classes(data.get("classes"), {**windows, **self.learned_windows}, gates)
        gitlab = self.parse_gitlab(data.get("gitlab"))
        prometheus = self.mapping(data.get("prometheus"), "prometheus", schema.keys("prometheus"))
        environments = self.parse_environments(data.get("environments"))
        notifications = self.parse_notifications(data.get("notifications"))
        approval = self.parse_approval(data.get("approval"))
        prometheus_conn_id = self.declared(prometheus, "prometheus.conn_id")
        pipeline_vars = getattr(getattr(gitlab, "pdm_pipeline", None), "variables", None) or {}
        if mode == "selected_versions" and not any("{versions}" in str(v) for v in pipeline_vars.values()):
            self.error(
                "execution_mode",
                "selected_versions needs a gitlab.pdm_pipeline variable carrying {versions}: without the list the "
                "pipeline runs every pending migration, including those no gate was evaluated for",
            )
        self.fail_if_errors()
        policy = Policy(
            source=self.source,
            raw=copy.deepcopy(data),  # the caller's dict may change later; the policy must not
            timezone=tz.key,
            target=target,
            execution_mode=mode,
            windows=windows,
            locks=locks,
            classes=classes,
            gates=gates,
            gitlab=gitlab,
            prometheus_conn_id=prometheus_conn_id or "prometheus_default",
            environments=environments,
            notifications=notifications,
            learned_windows=dict(self.learned_windows),
            approval=approval,
        )
        self.check_every_class_can_run(policy)
        if not self.prefix:
            self.parse_overrides(policy)
        self.fail_if_errors()
        return policy

    def parse_windows(self, value: Any, tz: ZoneInfo) -> dict[str, RecurringRule]:
        windows: dict[str, RecurringRule] = {}
        for name, spec in self.mapping(value, "windows", what="window").items():
            path = f"windows.{name}"
            if not isinstance(spec, dict):
                self.error(path, f"expected a mapping with days, start, end, got {_kind(spec)}")
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
            self.error("change_locks", f"expected a list of locks, got {_kind(value)}")
            return locks
        names: dict[str, int] = {}
        for index, spec in enumerate(value):
            path = f"change_locks[{index}]"
            if not isinstance(spec, dict):
                self.error(path, f"expected a mapping with a name, got {_kind(spec)}")
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
            problem = _holiday_calendar_problem(country)
            if problem:
                self.error(f"{path}.holidays.countries[{index}]", problem)
        return HolidayLock(name, countries, zone, description)

    def parse_classes(
        self, value: Any, windows: dict[str, RecurringRule], gates: GateSettings
    ) -> dict[MigrationClass, ClassRule]:
        spec = self.mapping(value, "classes", [c.value for c in MigrationClass], what="class")
        given: dict[MigrationClass, dict[str, Any]] = {}
        for cls in MigrationClass:
            if cls.value in spec:
                item = spec[cls.value]
                given[cls] = (
                    self.mapping(item, f"classes.{cls.value}", CLASS_KEYS) if item is not None else {}
                )
        rules: dict[MigrationClass, ClassRule] = {}
        # A class without a rule is scheduled like the nearest stricter class that has one (never lighter);
        # so walk from the strictest down.
        for cls in reversed(list(MigrationClass)):
            if cls not in given:
                rules[cls] = _default_rule(cls, rules, gates)
                continue
            rules[cls] = self.parse_class(cls, given[cls], windows, gates)
        return {cls: rules[cls] for cls in MigrationClass}

    def parse_class(
        self,
        cls: MigrationClass,
        item: dict[str, Any],
        windows: dict[str, RecurringRule],
        gates: GateSettings,
    ) -> ClassRule:
        path = f"classes.{cls.value}"
        names = self.texts(item.get("windows"), f"{path}.windows")
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in self.broken_windows:
                pass
            elif name not in windows:
                known = ", ".join(sorted(windows)) or "none defined"
                self.error(f"{path}.windows[{index}]", f'unknown window "{name}" (known: {known})')
            elif name in seen:
                self.error(f"{path}.windows[{index}]", f'window "{name}" is listed twice')
            seen.add(name)
        is_unknown = cls is MigrationClass.UNKNOWN
        automatic = self.boolean(item.get("automatic"), f"{path}.automatic", not is_unknown)
        if is_unknown and automatic:
            self.error(f"{path}.automatic", "unknown migrations are never run automatically: set it to false")
        elif automatic and not names:
            self.error(
                f"{path}.windows", "an automatic class needs at least one window (or set automatic: false)"
            )
        threshold = item.get("traffic_threshold")
        min_bake = item.get("min_bake")
        return ClassRule(
            windows=tuple(dict.fromkeys(n for n in names if n in windows)),
            automatic=automatic and not is_unknown,
            approval_required=self.boolean(
                item.get("approval_required"), f"{path}.approval_required", is_unknown
            ),
            traffic_threshold=self.number(threshold, f"{path}.traffic_threshold", gates.traffic.threshold, 0),
            max_predicted_duration=self.duration(
                item.get("max_predicted_duration"), f"{path}.max_predicted_duration", None, positive=True
            ),
            min_bake=_or(self.duration(min_bake, f"{path}.min_bake", None), gates.rollback.min_bake),
        )

    def parse_gates(self, value: Any) -> GateSettings:
        spec = self.mapping(value, "gates", GATE_KEYS)
        traffic = self.mapping(spec.get("traffic"), "gates.traffic", TRAFFIC_KEYS)
        lock = self.mapping(spec.get("deploy_lock"), "gates.deploy_lock", DEPLOY_LOCK_KEYS)
        rollback = self.mapping(spec.get("rollback"), "gates.rollback", ROLLBACK_KEYS)
        if "incident_projects" not in rollback:
            # Left out, the incident check would be skipped while the gate said "no blocking incident".
            self.error(
                "gates.rollback.incident_projects",
                "is required: list the projects whose open incidents block the PDM, or [] to run without "
                "the incident check (an explicit choice, shown in the gate's reason)",
            )
        profile = self.mapping(traffic.get("profile"), "gates.traffic.profile", PROFILE_KEYS)
        matches = []
        pipelines = lock.get("deploy_pipelines")
        if pipelines is not None and not isinstance(pipelines, list):
            self.error("gates.deploy_lock.deploy_pipelines", f"expected a list, got {_kind(pipelines)}")
            pipelines = []
        for index, item in enumerate(pipelines or []):
            path = f"gates.deploy_lock.deploy_pipelines[{index}]"
            item = self.mapping(item, path, schema.keys("gates.deploy_lock.deploy_pipelines[i]"))
            matches.append(
                PipelineMatch(
                    project=self.text(item.get("project"), f"{path}.project", required=True) or "",
                    ref=self.text(item.get("ref"), f"{path}.ref"),
                    variables=self.variables(item.get("variables"), f"{path}.variables", ("environment",)),
                )
            )
        t = "gates.traffic"
        return GateSettings(
            poll_interval=self.declared(spec, "gates.poll_interval") or timedelta(minutes=1),
            max_wait=self.declared(spec, "gates.max_wait") or timedelta(hours=6),
            traffic=TrafficGateSettings(
                query=self.declared(traffic, f"{t}.query") or DEFAULT_TRAFFIC_QUERY,
                mode=self.declared(traffic, f"{t}.mode"),
                threshold=self.declared(traffic, f"{t}.threshold"),
                percentile=self.declared(traffic, f"{t}.percentile"),
                baseline_weeks=self.declared(traffic, f"{t}.baseline_weeks"),
                sustain=self.declared(traffic, f"{t}.sustain") or timedelta(0),
                max_staleness=self.declared(traffic, f"{t}.max_staleness") or timedelta(minutes=5),
                health_query=self.declared(traffic, f"{t}.health_query"),
                min_health=self.declared(traffic, f"{t}.min_health"),
                profile=TrafficProfileSettings(
                    weeks=self.declared(profile, f"{t}.profile.weeks"),
                    low_percentile=self.declared(profile, f"{t}.profile.low_percentile"),
                ),
            ),
            deploy_lock=DeployLockSettings(
                deployment_statuses=self.declared(lock, "gates.deploy_lock.deployment_statuses"),
                deploy_pipelines=tuple(matches),
                lock_variable=self.declared(lock, "gates.deploy_lock.lock_variable")
                or "pdm_lock_{environment}",
                forecast=self.forecast(lock.get("forecast")),
            ),
            rollback=RollbackSettings(
                min_bake=self.declared(rollback, "gates.rollback.min_bake") or timedelta(0),
                incident_projects=self.declared(rollback, "gates.rollback.incident_projects"),
                incident_labels_any=self.declared(rollback, "gates.rollback.incident_labels_any"),
                change_request_labels_all=self.declared(rollback, "gates.rollback.change_request_labels_all"),
                change_request_labels_any=self.declared(rollback, "gates.rollback.change_request_labels_any"),
                health=self.rollback_health(rollback.get("health")),
            ),
        )

    def forecast(self, value: Any) -> ForecastSettings:
        """gates.deploy_lock.forecast; absent or `enabled: false` turns the next-deployment forecast off."""
        path = "gates.deploy_lock.forecast"
        spec = self.mapping(value, path, FORECAST_KEYS)
        base = ForecastSettings()
        return ForecastSettings(
            enabled=self.boolean(spec.get("enabled"), f"{path}.enabled", bool(spec)),
            history=self.duration(spec.get("history"), f"{path}.history", base.history, positive=True)
            or base.history,
            min_share=self.number(spec.get("min_share"), f"{path}.min_share", base.min_share, 0.01, 1),
            safety_factor=self.number(
                spec.get("safety_factor"), f"{path}.safety_factor", base.safety_factor, 1, 10
            ),
            min_runs=int(self.number(spec.get("min_runs"), f"{path}.min_runs", base.min_runs, 1, 1000, True)),
            duration_history=self.duration(
                spec.get("duration_history"), f"{path}.duration_history", base.duration_history, positive=True
            )
            or base.duration_history,
            default_duration=self.duration(
                spec.get("default_duration"), f"{path}.default_duration", base.default_duration, positive=True
            )
            or base.default_duration,
            gap_percentile=self.number(
                spec.get("gap_percentile"), f"{path}.gap_percentile", base.gap_percentile, 0, 100
            ),
            weekly_pattern=self.boolean(
                spec.get("weekly_pattern"), f"{path}.weekly_pattern", base.weekly_pattern
            ),
            per_migration_quantile=(
                None
                if spec.get("per_migration_quantile") is None
                else self.number(
                    spec.get("per_migration_quantile"), f"{path}.per_migration_quantile", 90.0, 1, 100
                )
            ),
            pipeline_overhead=self.duration(
                spec.get("pipeline_overhead"), f"{path}.pipeline_overhead", base.pipeline_overhead
            )
            or base.pipeline_overhead,
            min_samples=int(
                self.number(spec.get("min_samples"), f"{path}.min_samples", base.min_samples, 1, 10000, True)
            ),
            per_migration_default=self.duration(
                spec.get("per_migration_default"),
                f"{path}.per_migration_default",
                base.per_migration_default,
                positive=True,
            )
            or base.per_migration_default,
            max_hold=self.duration(spec.get("max_hold"), f"{path}.max_hold", None, positive=True),
            max_hold_lead=self.duration(
                spec.get("max_hold_lead"), f"{path}.max_hold_lead", None, positive=True
            ),
            deploy_margin=self.duration(
                spec.get("deploy_margin"), f"{path}.deploy_margin", base.deploy_margin
            )
            or base.deploy_margin,
        )

    def rollback_health(self, value: Any) -> RollbackHealthSettings | None:
        """gates.rollback.health: null (not checked) or bounds with at least one query."""
        if value is None:
            return None
        path = "gates.rollback.health"
        spec = self.mapping(value, path, HEALTH_KEYS)
        apdex = self.text(spec.get("apdex_query"), f"{path}.apdex_query")
        errors = self.text(spec.get("error_ratio_query"), f"{path}.error_ratio_query")
        if isinstance(value, dict) and not apdex and not errors:
            self.error(path, "set apdex_query, error_ratio_query or both (or health: null to check none)")
        return RollbackHealthSettings(
            apdex_query=apdex,
            min_apdex=self.number(spec.get("min_apdex"), f"{path}.min_apdex", 0.995, 0, 1),
            error_ratio_query=errors,
            max_error_ratio=self.number(spec.get("max_error_ratio"), f"{path}.max_error_ratio", 0.01, 0, 1),
            max_staleness=self.duration(
                spec.get("max_staleness"), f"{path}.max_staleness", timedelta(minutes=5), positive=True
            )
            or timedelta(minutes=5),
        )

    def variables(self, value: Any, path: str, placeholders: tuple[str, ...]) -> dict[str, str]:
        """CI variables: text values (true/false and numbers as YAML wrote them), known placeholders only."""
        result: dict[str, str] = {}
        for key, raw in self.mapping(value, path, what="variable").items():
            if isinstance(raw, bool):
                raw = "true" if raw else "false"
            if not isinstance(raw, (str, int, float)):
                self.error(f"{path}.{key}", f"expected text, got {_kind(raw)}")
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

    def parse_gitlab(self, value: Any) -> GitLabSettings:
        spec = self.mapping(value, "gitlab", GITLAB_KEYS)
        pipeline = self.mapping(spec.get("pdm_pipeline"), "gitlab.pdm_pipeline", PIPELINE_KEYS)
        if "pdm_pipeline" not in spec:
            self.error(
                "gitlab.pdm_pipeline", "is required (the project, ref and variables of the PDM pipeline)"
            )
        variables = self.variables(
            pipeline.get("variables"), "gitlab.pdm_pipeline.variables", PIPELINE_PLACEHOLDERS
        )
        if pipeline and not any("decision_id" in template_fields(v) for v in variables.values()):
            self.error(
                "gitlab.pdm_pipeline.variables",
                "one variable must carry {decision_id}: it lets a retried trigger find its pipeline (exactly once)",
            )
        return GitLabSettings(
            conn_id=self.text(spec.get("conn_id"), "gitlab.conn_id", "gitlab_default") or "gitlab_default",
            application_project=self.text(
                spec.get("application_project"), "gitlab.application_project", required=True
            )
            or "",
            admin_check_databases=self.texts(
                spec.get("admin_check_databases"), "gitlab.admin_check_databases"
            ),
            pdm_pipeline=PipelineSettings(
                project=self.text(
                    pipeline.get("project"), "gitlab.pdm_pipeline.project", required=bool(pipeline)
                )
                or "",
                ref=self.text(pipeline.get("ref"), "gitlab.pdm_pipeline.ref", "master") or "master",
                trigger=self.choice(
                    pipeline.get("trigger"), "gitlab.pdm_pipeline.trigger", ("api", "trigger_token")
                ),
                variables=variables,
            ),
        )

    def parse_environments(self, value: Any) -> dict[str, EnvironmentPolicy]:
        spec = self.mapping(value, "environments", what="environment")
        if not spec and not self.errors:
            self.error("environments", "at least one environment is required (e.g. gstg, gprd)")
        result: dict[str, EnvironmentPolicy] = {}
        for name, item in spec.items():
            path = f"environments.{name}"
            if not _ENV_NAME.match(name):
                self.error(
                    path, "environment names are lower-case letters, digits and underscores (they name DAGs)"
                )
            item = self.mapping(item, path, ENV_KEYS)
            overrides = self.mapping(item.get("overrides"), f"{path}.overrides", ("classes", "gates"))
            result[name] = EnvironmentPolicy(
                name=name,
                deploy_environment=self.text(
                    item.get("deploy_environment"), f"{path}.deploy_environment", name
                )
                or name,
                db_environment=self.text(item.get("db_environment"), f"{path}.db_environment", f"db/{name}")
                or f"db/{name}",
                after=self.text(item.get("after"), f"{path}.after"),
                schedule=self.boolean(item.get("schedule"), f"{path}.schedule", True),
                overrides=overrides,
            )
        recorded: dict[str, str] = {}
        for name, env in result.items():
            if env.db_environment in recorded:
                self.error(
                    f"environments.{name}.db_environment",
                    f'"{env.db_environment}" is already where {recorded[env.db_environment]} records its PDM runs',
                )
            recorded.setdefault(env.db_environment, name)
            if env.after is not None and env.after not in result:
                self.error(
                    f"environments.{name}.after",
                    f"unknown environment {env.after!r} (known: {', '.join(result)})",
                )
        for name in result:
            seen, cursor = [name], result[name].after
            while cursor in result:
                if cursor in seen:
                    chain = " → ".join([*seen, cursor])
                    self.error(f"environments.{name}.after", f"forms a cycle: {chain}")
                    break
                seen.append(cursor)
                cursor = result[cursor].after
        return result

    def parse_notifications(self, value: Any) -> NotificationSettings:
        spec = self.mapping(value, "notifications", schema.keys("notifications"))
        slack = self.mapping(spec.get("slack"), "notifications.slack", schema.keys("notifications.slack"))
        grafana = self.mapping(
            spec.get("grafana"), "notifications.grafana", schema.keys("notifications.grafana")
        )
        return NotificationSettings(
            slack_conn_id=self.text(slack.get("conn_id"), "notifications.slack.conn_id"),
            grafana_conn_id=self.text(grafana.get("conn_id"), "notifications.grafana.conn_id"),
        )

    def parse_approval(self, value: Any) -> ApprovalSettings:
        """`approval.timeout`: how long a request waits for an answer (a duration > 0, at most 30 days)."""
        spec = self.mapping(value, "approval", schema.keys("approval"))
        timeout = self.duration(
            spec.get("timeout"), "approval.timeout", DEFAULT_APPROVAL_TIMEOUT, positive=True
        )
        if timeout is not None and timeout > MAX_APPROVAL_TIMEOUT:
            self.error(
                "approval.timeout",
                f"must be at most {format_duration(MAX_APPROVAL_TIMEOUT)}, got {spec.get('timeout')!r} "
                "(a request nobody answers for that long is forgotten: let it expire and ask again)",
            )
        return ApprovalSettings(timeout=timeout or DEFAULT_APPROVAL_TIMEOUT)

    # -- contradictions -----------------------------------------------------------------------------
    def check_every_class_can_run(self, policy: Policy) -> None:
        """A class whose windows always fall inside recurring (permanent) change locks could never run.

        Dated locks, dates and holidays end, so they never make a class unreachable; recurring locks
        repeat every week, so one sample year (with both DST changes) shows the contradiction.
        """
        recurring = [lock for lock in policy.locks if isinstance(lock, RecurringRule)]
        if not recurring:
            return
        locks = lock_blocks(recurring)
        start, end = _SAMPLE_YEAR
        for cls, rule in policy.classes.items():
            if not rule.windows or any(name in policy.learned_windows for name in rule.windows):
                continue  # a learned window's hours change daily: no permanent contradiction to prove
            windows = [policy.windows[name] for name in rule.windows]
            if covering(allowed_blocks(windows, locks), start, end):
                continue
            names = ", ".join(f'"{lock.name}"' for lock in recurring if _overlaps(lock, windows, start, end))
            listed = ", ".join(f'"{name}"' for name in rule.windows)
            self.error(
                f"classes.{cls.value}.windows",
                f"every window ({listed}) always falls inside recurring change locks ({names}): this class could never run",
            )

    def parse_overrides(self, policy: Policy) -> None:
        """Validate each environment's overrides now (not when a run first asks), with their own key paths."""
        base = {k: v for k, v in policy.raw.items() if k != "environments"}
        base["environments"] = {
            name: {k: v for k, v in (spec or {}).items() if k != "overrides"}
            for name, spec in (policy.raw.get("environments") or {}).items()
        }
        for name, env in policy.environments.items():
            if not env.overrides:
                continue
            merged = copy.deepcopy(base)
            _deep_merge(merged, env.overrides)
            parser = _Parser(self.source, self.lines, prefix=f"environments.{name}.overrides.")
            try:
                derived = parser.parse(merged, [])
            except PolicyError as exc:
                self.errors.extend(str(exc).splitlines())
                continue
            derived.environments = policy.environments
            derived.raw = merged
            policy.per_environment[name] = derived


def _default_rule(
    cls: MigrationClass, stricter: dict[MigrationClass, ClassRule], gates: GateSettings
) -> ClassRule:
    """The rule of a class the file leaves out: that of the nearest stricter class; unknown is never automatic."""
    if cls is MigrationClass.UNKNOWN:
        return ClassRule((), False, True, gates.traffic.threshold, None, gates.rollback.min_bake)
    nearest = min(stricter, key=lambda c: c.rank)
    return stricter[nearest]


def _overlaps(lock: RecurringRule, windows: list[RecurringRule], start: datetime, end: datetime) -> bool:
    week = (start, start + timedelta(days=8))
    locked = lock.spans(*week)
    return any(a < d and c < b for w in windows for a, b in w.spans(*week) for c, d in locked)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _holiday_calendar_problem(country: str) -> str | None:
    """Why the `holidays` package has no calendar for `US` or `US-CA` style codes, or None if it has one."""
    import holidays
    from holidays.registry import COUNTRIES

    code, _, subdivision = country.partition("-")
    if not subdivision and any(code in codes[1:] for codes in COUNTRIES.values()):
        return None  # known from the registry alone: no calendar (and not all 250 countries) loaded
    try:
        holidays.country_holidays(code, subdiv=subdivision or None, years=[])
    except NotImplementedError as exc:
        return f"no public holiday calendar for {country!r}: {exc} (ISO codes such as US, GB, US-CA)"
    return None


def _or(value: timedelta | None, default: timedelta) -> timedelta:
    """`value` unless it is missing; unlike `or`, keeps a zero duration."""
    return default if value is None else value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def template_fields(text: str) -> list[str]:
    """The placeholders `str.format` fills in `text` (escaped `{{...}}` is literal text, not a field)."""
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _unknown(what: str, key: str, allowed: Collection[str]) -> str:
    import difflib  # only when a key is wrong: declaring a DAG never needs it

    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f'did you mean "{close[0]}"? ' if close else ""
    return f"unknown {what} ({hint}allowed: {', '.join(allowed)})"
