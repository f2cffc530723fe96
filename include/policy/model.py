"""The policy as typed objects, and the questions the product asks it: is this class allowed now, when next."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.classification.classes import MigrationClass
from include.policy.windows import DatedRule, RecurringRule, Span, merge, subtract

# How far ahead spans are computed past the question's end, so a span running over it is seen whole.
LOOKAHEAD = timedelta(days=15)


@dataclass(frozen=True)
class ClassRule:
    """How one migration class may be scheduled."""

    windows: tuple[str, ...]
    automatic: bool
    approval_required: bool
    traffic_threshold: float | None
    max_predicted_duration: timedelta | None
    min_bake: timedelta | None


@dataclass(frozen=True)
class TrafficGateSettings:
    query: str
    mode: str
    threshold: float
    percentile: float
    baseline_weeks: int
    sustain: timedelta
    max_staleness: timedelta
    health_query: str | None
    min_health: float


@dataclass(frozen=True)
class PipelineMatch:
    """Running pipelines that hold the environment: a project, a ref, and variables they carry."""

    project: str
    ref: str | None
    variables: dict[str, str]


@dataclass(frozen=True)
class DeployLockSettings:
    deployment_statuses: tuple[str, ...]
    deploy_pipelines: tuple[PipelineMatch, ...]
    lock_variable: str


@dataclass(frozen=True)
class RollbackSettings:
    min_bake: timedelta
    incident_projects: tuple[str, ...]
    incident_labels_any: tuple[str, ...]
    change_request_labels_all: tuple[str, ...]
    change_request_labels_any: tuple[str, ...]


@dataclass(frozen=True)
class GateSettings:
    poll_interval: timedelta
    max_wait: timedelta
    traffic: TrafficGateSettings
    deploy_lock: DeployLockSettings
    rollback: RollbackSettings


@dataclass(frozen=True)
class PipelineSettings:
    project: str
    ref: str
    trigger: str
    variables: dict[str, str]


@dataclass(frozen=True)
class GitLabSettings:
    conn_id: str
    application_project: str
    pdm_pipeline: PipelineSettings
    admin_check_databases: tuple[str, ...] = ()  # cross-check the git range with the admin API per database


@dataclass(frozen=True)
class EnvironmentPolicy:
    name: str
    deploy_environment: str
    db_environment: str
    after: str | None
    schedule: bool
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowSpan:
    """An allowed interval for a class: allow windows minus change locks, in UTC."""

    window: str
    opens_at: datetime
    closes_at: datetime
    open_ended: bool = False  # runs past the computed horizon (e.g. an every-day window)


@dataclass(frozen=True)
class WindowVerdict:
    """Whether a class may run at an instant, and why, with the current or next window."""

    allowed: bool
    reason: str
    window: str | None = None
    closes_at: datetime | None = None
    next_opens_at: datetime | None = None
    next_closes_at: datetime | None = None
    lock: str | None = None


@dataclass
class Policy:
    """A validated policy file. Pure: every question takes the instant it is about."""

    source: str
    raw: dict[str, Any]
    timezone: str
    target: str
    execution_mode: str
    windows: dict[str, RecurringRule]
    locks: list[RecurringRule | DatedRule]
    classes: dict[MigrationClass, ClassRule]
    gates: GateSettings
    gitlab: GitLabSettings
    prometheus_conn_id: str
    environments: dict[str, EnvironmentPolicy]
    notifications: dict[str, Any]
    _per_environment: dict[str, Policy] = field(default_factory=dict, repr=False)

    # -- structure ----------------------------------------------------------------------------------
    def class_rule(self, cls: MigrationClass) -> ClassRule:
        return self.classes[cls]

    def for_environment(self, name: str) -> Policy:
        """This policy with the environment's `overrides` of `classes` and `gates` applied."""
        if name not in self.environments:
            from include.policy.loader import PolicyError

            raise PolicyError(
                f"{self.source}: environments: unknown environment {name!r} (known: {', '.join(self.environments)})"
            )
        overrides = self.environments[name].overrides
        if not overrides:
            return self
        if name not in self._per_environment:
            from include.policy.loader import parse_policy

            merged = copy.deepcopy(self.raw)
            _deep_merge(merged, overrides)
            for env in merged.get("environments", {}).values():
                if isinstance(env, dict):
                    env.pop("overrides", None)
            self._per_environment[name] = parse_policy(
                merged, source=f"{self.source} (environments.{name}.overrides)"
            )
        return self._per_environment[name]

    def to_dict(self) -> dict[str, Any]:
        """The policy as loaded (normalised YAML data), JSON-ready for the audit and the UI."""
        return copy.deepcopy(self.raw)

    # -- calendar -----------------------------------------------------------------------------------
    def lock_spans(self, start: datetime, end: datetime) -> list[tuple[Span, str]]:
        found = []
        for lock in self.locks:
            found += [(span, lock.name) for span in lock.spans(start, end)]
        return sorted(found)

    def allowed_spans(self, cls: MigrationClass, start: datetime, end: datetime) -> list[WindowSpan]:
        """Allowed intervals for `cls` intersecting [start, end): allow windows minus locks, merged."""
        _aware(start, "start")
        _aware(end, "end")
        rule = self.classes[cls]
        if not rule.windows:
            return []
        horizon_start, horizon_end = start - timedelta(days=2), end + LOOKAHEAD
        named: list[tuple[Span, str]] = []
        for name in rule.windows:
            named += [(span, name) for span in self.windows[name].spans(horizon_start, horizon_end)]
        allowed = merge(span for span, _ in named)
        locks = merge(span for span, _ in self.lock_spans(horizon_start, horizon_end))
        result = []
        for opens, closes in subtract(allowed, locks):
            if closes <= start or opens >= end:
                continue
            window = next((n for (a, b), n in sorted(named) if a <= opens < b), rule.windows[0])
            result.append(WindowSpan(window, opens, closes, open_ended=closes >= horizon_end))
        return result

    def next_window(
        self, cls: MigrationClass, after: datetime, horizon: timedelta = timedelta(days=400)
    ) -> WindowSpan | None:
        """The allowed interval containing `after`, or the next one within `horizon`."""
        _aware(after, "after")
        step = timedelta(days=14)
        cursor = after
        while cursor < after + horizon:
            for span in self.allowed_spans(cls, cursor, cursor + step):
                if span.closes_at > after:
                    return span
            cursor += step
        return None

    def time_until_next_window(self, cls: MigrationClass, now: datetime) -> timedelta | None:
        """Zero inside an allowed window; None if no window opens within the horizon."""
        span = self.next_window(cls, now)
        if span is None:
            return None
        return max(timedelta(0), span.opens_at - now)

    def window_verdict(self, cls: MigrationClass, now: datetime) -> WindowVerdict:
        """Whether `cls` may run at `now`, with a one-line reason a release manager can act on."""
        _aware(now, "now")
        rule = self.classes[cls]
        if not rule.automatic:
            return WindowVerdict(False, f"{cls.value} is never run automatically: a human must decide")
        if not rule.windows:
            return WindowVerdict(False, f"{cls.value} has no allowed window in the policy")
        current = self.next_window(cls, now)
        if current is not None and current.opens_at <= now < current.closes_at:
            until = "at least " if current.open_ended else ""
            return WindowVerdict(
                True,
                f'{cls.value} may run in window "{current.window}" until {until}{_when(current.closes_at, self.timezone)}',
                window=current.window,
                closes_at=current.closes_at,
            )
        lock = next(
            (name for (a, b), name in self.lock_spans(now, now + timedelta(seconds=1)) if a <= now < b), None
        )
        inside = [
            n
            for n in rule.windows
            if any(a <= now < b for a, b in self.windows[n].spans(now, now + timedelta(seconds=1)))
        ]
        if current is None:
            reason = f"{cls.value} waits: no allowed window in the next 400 days"
        else:
            wait = current.opens_at - now
            reason = (
                f'{cls.value} waits: next window "{current.window}" opens {_when(current.opens_at, self.timezone)} '
                f"(in {_duration(wait)})"
            )
        if lock and inside:
            reason = (
                f'{cls.value} blocked by change lock "{lock}" inside window "{inside[0]}"; '
                + reason.split(": ", 1)[1]
            )
        return WindowVerdict(
            False,
            reason,
            next_opens_at=current.opens_at if current else None,
            next_closes_at=current.closes_at if current else None,
            lock=lock if inside else None,
        )


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")


def _when(moment: datetime, tz_name: str) -> str:
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(tz_name))
    text = local.strftime("%a %Y-%m-%d %H:%M %Z")
    return text if tz_name == "UTC" else f"{text} ({moment.astimezone(UTC).strftime('%H:%M UTC')})"


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
