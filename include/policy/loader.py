"""Reads and validates a policy file; every problem is reported with the file, the key path and what is wrong."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from include.classification.classes import MigrationClass
from include.policy.model import (
    ClassRule,
    DeployLockSettings,
    EnvironmentPolicy,
    GateSettings,
    GitLabSettings,
    PipelineMatch,
    PipelineSettings,
    Policy,
    RollbackSettings,
    TrafficGateSettings,
)
from include.policy.windows import DAY_NAMES, DatedRule, RecurringRule


class PolicyError(ValueError):
    """The policy is invalid. The message lists every problem, one per line, as `file: key.path: problem`."""


TOP_KEYS = {
    "version",
    "timezone",
    "target",
    "execution_mode",
    "windows",
    "change_locks",
    "classes",
    "gates",
    "gitlab",
    "prometheus",
    "environments",
    "notifications",
}
WINDOW_KEYS = {"days", "start", "end", "timezone", "description"}
LOCK_KEYS = {"name", "from", "to", "days", "start", "end", "timezone", "dates", "holidays", "description"}
CLASS_KEYS = {
    "windows",
    "automatic",
    "approval_required",
    "traffic_threshold",
    "max_predicted_duration",
    "min_bake",
}
GATE_KEYS = {"poll_interval", "max_wait", "traffic", "deploy_lock", "rollback"}
TRAFFIC_KEYS = {
    "query",
    "mode",
    "threshold",
    "percentile",
    "baseline_weeks",
    "sustain",
    "max_staleness",
    "health_query",
    "min_health",
}
DEPLOY_LOCK_KEYS = {"deployment_statuses", "deploy_pipelines", "lock_variable"}
ROLLBACK_KEYS = {
    "min_bake",
    "incident_projects",
    "incident_labels_any",
    "change_request_labels_all",
    "change_request_labels_any",
}
GITLAB_KEYS = {"conn_id", "application_project", "pdm_pipeline", "admin_check_databases"}
PIPELINE_KEYS = {"project", "ref", "trigger", "variables"}
ENV_KEYS = {"deploy_environment", "db_environment", "after", "schedule", "overrides"}
PLACEHOLDERS = {"environment", "sha", "package", "decision_id", "versions"}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_TIME = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def load_policy(path: str | Path) -> Policy:
    """Parse and validate a policy file; raises PolicyError naming the file, key path and problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PolicyError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_policy(data, source=str(path))


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    """Validate policy data (as loaded from YAML) and build the typed Policy."""
    return _Parser(source).parse(data)


def parse_duration(value: Any) -> timedelta:
    """`90s`, `30m`, `4h`, `2d`, `1w` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30m, got {value!r}")
    if isinstance(value, (int, float)):
        return timedelta(seconds=float(value))
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration like 90s, 30m, 4h or 2d, got {value!r}")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return timedelta(seconds=float(match.group(1)) * unit)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []

    def error(self, path: str, problem: str) -> None:
        self.errors.append(f"{self.source}: {path}: {problem}")

    # -- helpers ------------------------------------------------------------------------------------
    def mapping(self, value: Any, path: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {type(value).__name__}")
            return {}
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.error(
                        f"{path}.{key}" if path else str(key),
                        f"unknown key (allowed: {', '.join(sorted(allowed))})",
                    )
        return value

    def string(self, value: Any, path: str, default: str | None = None, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.error(path, "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"expected a non-empty string, got {value!r}")
            return default
        return value

    def boolean(self, value: Any, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, got {value!r}")
            return default
        return value

    def number(
        self, value: Any, path: str, default: float | None, minimum: float | None = None
    ) -> float | None:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(path, f"expected a number, got {value!r}")
            return default
        if minimum is not None and value < minimum:
            self.error(path, f"must be at least {minimum}, got {value}")
        return float(value)

    def duration(self, value: Any, path: str, default: timedelta | None) -> timedelta | None:
        if value is None:
            return default
        try:
            result = parse_duration(value)
        except ValueError as exc:
            self.error(path, str(exc))
            return default
        if result < timedelta(0):
            self.error(path, "must not be negative")
        return result

    def strings(self, value: Any, path: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(path, f"expected a list of strings, got {value!r}")
            return default
        return tuple(value)

    def zone(self, value: Any, path: str, default: ZoneInfo) -> ZoneInfo:
        if value is None:
            return default
        try:
            return ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            self.error(path, f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)")
            return default

    def wall_time(self, value: Any, path: str, *, allow_24: bool) -> time | None | bool:
        """A time of day; None means 24:00. Returns False when invalid."""
        text = value if isinstance(value, str) else None
        match = _TIME.match(text or "")
        if not match or (match.group(1) == "24" and (match.group(2) != "00" or not allow_24)):
            expected = "HH:MM from 00:00 to 24:00" if allow_24 else "HH:MM from 00:00 to 23:59"
            self.error(path, f"expected a time {expected}, got {value!r}")
            return False
        if match.group(1) == "24":
            return None
        return time(int(match.group(1)), int(match.group(2)))

    def days(self, value: Any, path: str) -> frozenset[int]:
        if not isinstance(value, list) or not value:
            self.error(path, f"expected a non-empty list of days ({', '.join(DAY_NAMES)}), got {value!r}")
            return frozenset()
        found = set()
        for index, day in enumerate(value):
            name = str(day).lower()[:3]
            if name not in DAY_NAMES or not isinstance(day, str):
                self.error(
                    f"{path}[{index}]", f"unknown day {day!r} (expected one of {', '.join(DAY_NAMES)})"
                )
            else:
                found.add(DAY_NAMES.index(name))
        return frozenset(found)

    def recurring(self, name: str, spec: dict[str, Any], path: str, tz: ZoneInfo) -> RecurringRule | None:
        days = self.days(spec.get("days"), f"{path}.days")
        start = self.wall_time(spec.get("start"), f"{path}.start", allow_24=False)
        end = self.wall_time(spec.get("end"), f"{path}.end", allow_24=True)
        zone = self.zone(spec.get("timezone"), f"{path}.timezone", tz)
        if start is False or end is False or not days:
            return None
        if end is not None and end == start:
            self.error(
                f"{path}.end",
                "equals start: a window must have a length (use 00:00 to 24:00 for a whole day)",
            )
            return None
        return RecurringRule(name, days, start, end, zone)

    def instant(self, value: Any, path: str, tz: ZoneInfo, *, end_of_day: bool) -> datetime | None:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value + timedelta(days=1 if end_of_day else 0), time(0, 0))
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                self.error(path, f"expected an ISO-8601 date or date-time, got {value!r}")
                return None
            if len(value.strip()) == 10 and end_of_day:
                moment += timedelta(days=1)
        else:
            self.error(path, f"expected an ISO-8601 date or date-time, got {value!r}")
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment.astimezone(UTC)

    # -- sections -----------------------------------------------------------------------------------
    def parse(self, data: Any) -> Policy:
        if not isinstance(data, dict):
            raise PolicyError(
                f"{self.source}: the policy must be a mapping at the top level, got {type(data).__name__}"
            )
        self.mapping(data, "", TOP_KEYS)
        if data.get("version", 1) != 1:
            self.error(
                "version",
                f"unsupported policy version {data.get('version')!r} (this release reads version 1)",
            )
        tz_name = self.string(data.get("timezone"), "timezone", "UTC")
        tz = self.zone(tz_name, "timezone", ZoneInfo("UTC"))
        target = self.string(data.get("target"), "target", "gitlab_com")
        if target not in ("gitlab_com", "self_managed"):
            self.error("target", f"expected gitlab_com or self_managed, got {target!r}")
        mode = self.string(data.get("execution_mode"), "execution_mode", "all_pending")
        if mode not in ("all_pending", "selected_versions"):
            self.error("execution_mode", f"expected all_pending or selected_versions, got {mode!r}")

        windows: dict[str, RecurringRule] = {}
        for name, spec in self.mapping(data.get("windows"), "windows").items():
            path = f"windows.{name}"
            rule = self.recurring(str(name), self.mapping(spec, path, WINDOW_KEYS), path, tz)
            if rule:
                windows[str(name)] = rule

        locks = self.parse_locks(data.get("change_locks"), tz)
        classes = self.parse_classes(data.get("classes"), windows)
        gates = self.parse_gates(data.get("gates"))
        gitlab = self.parse_gitlab(data.get("gitlab"))
        prometheus = self.mapping(data.get("prometheus"), "prometheus", {"conn_id"})
        environments = self.parse_environments(data.get("environments"))
        notifications = self.mapping(data.get("notifications"), "notifications", {"slack", "grafana"})
        if self.errors:
            raise PolicyError("\n".join(self.errors))
        policy = Policy(
            source=self.source,
            raw=data,
            timezone=tz_name or "UTC",
            target=target or "gitlab_com",
            execution_mode=mode or "all_pending",
            windows=windows,
            locks=locks,
            classes=classes,
            gates=gates,
            gitlab=gitlab,
            prometheus_conn_id=self.string(
                prometheus.get("conn_id"), "prometheus.conn_id", "prometheus_default"
            )
            or "",
            environments=environments,
            notifications=notifications,
        )
        self.check_reachable(policy)
        if self.errors:
            raise PolicyError("\n".join(self.errors))
        return policy

    def parse_locks(self, value: Any, tz: ZoneInfo) -> list[RecurringRule | DatedRule]:
        locks: list[RecurringRule | DatedRule] = []
        if value is None:
            return locks
        if not isinstance(value, list):
            self.error("change_locks", f"expected a list, got {type(value).__name__}")
            return locks
        for index, spec in enumerate(value):
            path = f"change_locks[{index}]"
            spec = self.mapping(spec, path, LOCK_KEYS)
            name = self.string(spec.get("name"), f"{path}.name", required=True) or f"lock {index}"
            zone = self.zone(spec.get("timezone"), f"{path}.timezone", tz)
            kinds = [k for k in ("from", "days", "dates", "holidays") if k in spec]
            if len(kinds) != 1:
                self.error(
                    path,
                    "give exactly one of: from/to (one-off), days/start/end (recurring), dates, holidays",
                )
                continue
            kind = kinds[0]
            if kind == "from":
                opens = self.instant(spec.get("from"), f"{path}.from", zone, end_of_day=False)
                closes = self.instant(spec.get("to"), f"{path}.to", zone, end_of_day=True)
                if opens and closes:
                    if closes <= opens:
                        self.error(f"{path}.to", "must be after from")
                    else:
                        locks.append(DatedRule(name, fixed=((opens, closes),), tz=zone))
            elif kind == "days":
                rule = self.recurring(name, spec, path, zone)
                if rule:
                    locks.append(rule)
            elif kind == "dates":
                days = set()
                for i, item in enumerate(spec["dates"] if isinstance(spec["dates"], list) else [None]):
                    try:
                        days.add(item if isinstance(item, date) else date.fromisoformat(str(item)))
                    except ValueError:
                        self.error(f"{path}.dates[{i}]", f"expected a date YYYY-MM-DD, got {item!r}")
                locks.append(DatedRule(name, days=frozenset(days), tz=zone))
            else:
                holidays_spec = self.mapping(spec["holidays"], f"{path}.holidays", {"countries"})
                countries = self.strings(holidays_spec.get("countries"), f"{path}.holidays.countries")
                for i, country in enumerate(countries):
                    try:
                        from include.policy.windows import holiday_dates

                        holiday_dates(country, (2026,))
                    except Exception:  # noqa: BLE001 - the holidays package raises NotImplementedError
                        self.error(
                            f"{path}.holidays.countries[{i}]",
                            f"unknown country {country!r} (ISO code, e.g. US or US-CA)",
                        )
                locks.append(DatedRule(name, tz=zone, holiday_countries=countries))
        return locks

    def parse_classes(self, value: Any, windows: dict[str, RecurringRule]) -> dict[MigrationClass, ClassRule]:
        spec = self.mapping(value, "classes", {c.value for c in MigrationClass})
        rules: dict[MigrationClass, ClassRule] = {}
        for cls in MigrationClass:
            path = f"classes.{cls.value}"
            if cls.value not in spec:
                self.error(
                    path, "is missing: every class needs a rule (unknown: {windows: [], automatic: false})"
                )
                continue
            item = self.mapping(spec[cls.value], path, CLASS_KEYS)
            names = self.strings(item.get("windows"), f"{path}.windows")
            for i, name in enumerate(names):
                if name not in windows:
                    self.error(
                        f"{path}.windows[{i}]",
                        f'unknown window "{name}" (known: {", ".join(sorted(windows)) or "none"})',
                    )
            automatic = self.boolean(
                item.get("automatic"), f"{path}.automatic", cls is not MigrationClass.UNKNOWN
            )
            if cls is MigrationClass.UNKNOWN and automatic:
                self.error(f"{path}.automatic", "unknown migrations are never run automatically: set false")
            if automatic and not names:
                self.error(f"{path}.windows", "an automatic class needs at least one window")
            rules[cls] = ClassRule(
                windows=names,
                automatic=automatic,
                approval_required=self.boolean(
                    item.get("approval_required"), f"{path}.approval_required", False
                ),
                traffic_threshold=self.number(
                    item.get("traffic_threshold"), f"{path}.traffic_threshold", None, 0
                ),
                max_predicted_duration=self.duration(
                    item.get("max_predicted_duration"), f"{path}.max_predicted_duration", None
                ),
                min_bake=self.duration(item.get("min_bake"), f"{path}.min_bake", None),
            )
        return rules

    def parse_gates(self, value: Any) -> GateSettings:
        spec = self.mapping(value, "gates", GATE_KEYS)
        traffic = self.mapping(spec.get("traffic"), "gates.traffic", TRAFFIC_KEYS)
        mode = self.string(traffic.get("mode"), "gates.traffic.mode", "absolute")
        if mode not in ("absolute", "baseline_percentile"):
            self.error("gates.traffic.mode", f"expected absolute or baseline_percentile, got {mode!r}")
        percentile = self.number(traffic.get("percentile"), "gates.traffic.percentile", 30.0, 0)
        if percentile is not None and percentile > 100:
            self.error("gates.traffic.percentile", f"must be at most 100, got {percentile}")
        lock = self.mapping(spec.get("deploy_lock"), "gates.deploy_lock", DEPLOY_LOCK_KEYS)
        matches = []
        for index, item in enumerate(lock.get("deploy_pipelines") or []):
            path = f"gates.deploy_lock.deploy_pipelines[{index}]"
            item = self.mapping(item, path, {"project", "ref", "variables"})
            matches.append(
                PipelineMatch(
                    project=self.string(item.get("project"), f"{path}.project", required=True) or "",
                    ref=self.string(item.get("ref"), f"{path}.ref"),
                    variables={
                        str(k): str(v)
                        for k, v in self.mapping(item.get("variables"), f"{path}.variables").items()
                    },
                )
            )
        rollback = self.mapping(spec.get("rollback"), "gates.rollback", ROLLBACK_KEYS)
        return GateSettings(
            poll_interval=self.duration(
                spec.get("poll_interval"), "gates.poll_interval", timedelta(minutes=1)
            ),
            max_wait=self.duration(spec.get("max_wait"), "gates.max_wait", timedelta(hours=6)),
            traffic=TrafficGateSettings(
                query=self.string(
                    traffic.get("query"),
                    "gates.traffic.query",
                    'sum(gitlab_component_ops:rate_5m{env="{environment}",type="web"})',
                )
                or "",
                mode=mode or "absolute",
                threshold=self.number(traffic.get("threshold"), "gates.traffic.threshold", 600.0, 0) or 0.0,
                percentile=percentile or 30.0,
                baseline_weeks=int(
                    self.number(traffic.get("baseline_weeks"), "gates.traffic.baseline_weeks", 4, 1) or 4
                ),
                sustain=self.duration(traffic.get("sustain"), "gates.traffic.sustain", timedelta(minutes=10)),
                max_staleness=self.duration(
                    traffic.get("max_staleness"), "gates.traffic.max_staleness", timedelta(minutes=5)
                ),
                health_query=self.string(traffic.get("health_query"), "gates.traffic.health_query"),
                min_health=self.number(traffic.get("min_health"), "gates.traffic.min_health", 0.999, 0)
                or 0.0,
            ),
            deploy_lock=DeployLockSettings(
                deployment_statuses=self.strings(
                    lock.get("deployment_statuses"),
                    "gates.deploy_lock.deployment_statuses",
                    ("created", "running", "blocked"),
                ),
                deploy_pipelines=tuple(matches),
                lock_variable=self.string(
                    lock.get("lock_variable"), "gates.deploy_lock.lock_variable", "pdm_lock_{environment}"
                )
                or "",
            ),
            rollback=RollbackSettings(
                min_bake=self.duration(
                    rollback.get("min_bake"), "gates.rollback.min_bake", timedelta(hours=2)
                ),
                incident_projects=self.strings(
                    rollback.get("incident_projects"), "gates.rollback.incident_projects"
                ),
                incident_labels_any=self.strings(
                    rollback.get("incident_labels_any"),
                    "gates.rollback.incident_labels_any",
                    ("severity::1", "severity::2", "blocks deployments"),
                ),
                change_request_labels_all=self.strings(
                    rollback.get("change_request_labels_all"),
                    "gates.rollback.change_request_labels_all",
                    ("change::in-progress",),
                ),
                change_request_labels_any=self.strings(
                    rollback.get("change_request_labels_any"),
                    "gates.rollback.change_request_labels_any",
                    ("C1", "C2"),
                ),
            ),
        )

    def parse_gitlab(self, value: Any) -> GitLabSettings:
        spec = self.mapping(value, "gitlab", GITLAB_KEYS)
        pipeline = self.mapping(spec.get("pdm_pipeline"), "gitlab.pdm_pipeline", PIPELINE_KEYS)
        trigger = self.string(pipeline.get("trigger"), "gitlab.pdm_pipeline.trigger", "api")
        if trigger not in ("api", "trigger_token"):
            self.error("gitlab.pdm_pipeline.trigger", f"expected api or trigger_token, got {trigger!r}")
        variables = {
            str(k): str(v)
            for k, v in self.mapping(pipeline.get("variables"), "gitlab.pdm_pipeline.variables").items()
        }
        for key, template in variables.items():
            for name in re.findall(r"\{([^{}]*)\}", template):
                if name not in PLACEHOLDERS:
                    self.error(
                        f"gitlab.pdm_pipeline.variables.{key}",
                        f"unknown placeholder {{{name}}} (known: {', '.join(sorted(PLACEHOLDERS))})",
                    )
        if "{decision_id}" not in variables.values():
            self.error(
                "gitlab.pdm_pipeline.variables",
                "one variable must carry {decision_id}: it makes the trigger exactly-once",
            )
        return GitLabSettings(
            admin_check_databases=self.strings(
                spec.get("admin_check_databases"), "gitlab.admin_check_databases"
            ),
            conn_id=self.string(spec.get("conn_id"), "gitlab.conn_id", "gitlab_default") or "",
            application_project=self.string(
                spec.get("application_project"), "gitlab.application_project", required=True
            )
            or "",
            pdm_pipeline=PipelineSettings(
                project=self.string(pipeline.get("project"), "gitlab.pdm_pipeline.project", required=True)
                or "",
                ref=self.string(pipeline.get("ref"), "gitlab.pdm_pipeline.ref", "master") or "master",
                trigger=trigger or "api",
                variables=variables,
            ),
        )

    def parse_environments(self, value: Any) -> dict[str, EnvironmentPolicy]:
        spec = self.mapping(value, "environments")
        if not spec:
            self.error("environments", "at least one environment is required")
        result: dict[str, EnvironmentPolicy] = {}
        for name, item in spec.items():
            path = f"environments.{name}"
            if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
                self.error(
                    path, "environment names are lower-case letters, digits and underscores (they name DAGs)"
                )
            item = self.mapping(item, path, ENV_KEYS)
            overrides = self.mapping(item.get("overrides"), f"{path}.overrides", {"classes", "gates"})
            result[str(name)] = EnvironmentPolicy(
                name=str(name),
                deploy_environment=self.string(
                    item.get("deploy_environment"), f"{path}.deploy_environment", str(name)
                )
                or str(name),
                db_environment=self.string(item.get("db_environment"), f"{path}.db_environment", f"db/{name}")
                or f"db/{name}",
                after=self.string(item.get("after"), f"{path}.after"),
                schedule=self.boolean(item.get("schedule"), f"{path}.schedule", True),
                overrides=overrides,
            )
        for name, env in result.items():
            if env.after is not None and env.after not in result:
                self.error(
                    f"environments.{name}.after",
                    f"unknown environment {env.after!r} (known: {', '.join(result)})",
                )
        for name in result:
            seen, cursor = {name}, result[name].after
            while cursor in result:
                if cursor in seen:
                    self.error(f"environments.{name}.after", f"forms a cycle through {cursor!r}")
                    break
                seen.add(cursor)
                cursor = result[cursor].after
        return result

    def check_reachable(self, policy: Policy) -> None:
        """A class whose windows are all covered by locks for the next year can never run: a contradiction."""
        start = datetime(2026, 1, 1, tzinfo=UTC)
        end = start + timedelta(days=366)
        for cls, rule in policy.classes.items():
            if rule.automatic and rule.windows and not policy.allowed_spans(cls, start, end):
                self.error(
                    f"classes.{cls.value}.windows",
                    "every window is covered by change locks: this class could never run",
                )
