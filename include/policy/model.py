"""The validated Policy and the questions the product asks it: may this class run now, and when next.

The section settings it holds are declared in include.policy.settings and re-exported here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from include.classification.classes import MigrationClass
from include.policy.calendar import (
    BlockCache,
    LabelledSpan,
    NamedView,
    allowed_blocks,
    block_index,
    covering,
    lock_blocks,
)
from include.policy.durations import describe_wait, format_duration
from include.policy.errors import PolicyError
from include.policy.learned import LearnedWindow, TrafficProfile, hour_spans, subtract
from include.policy.settings import (
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
    RollbackHealthSettings,
    RollbackSettings,
    TrafficGateSettings,
    TrafficProfileSettings,
)
from include.policy.windows import LockRule, RecurringRule, Span

__all__ = [
    "ApprovalSettings",
    "ClassRule",
    "DEFAULT_APPROVAL_TIMEOUT",
    "DEFAULT_HORIZON",
    "DeployLockSettings",
    "EnvironmentPolicy",
    "ForecastSettings",
    "GateSettings",
    "GitLabSettings",
    "NotificationSettings",
    "PipelineMatch",
    "PipelineSettings",
    "Policy",
    "RollbackHealthSettings",
    "RollbackSettings",
    "TrafficGateSettings",
    "TrafficProfileSettings",
    "WindowSpan",
    "WindowVerdict",
]

DEFAULT_HORIZON = timedelta(days=400)
# next_window looks ahead in steps of this size, so a near answer costs little.
_SEARCH_STEP = timedelta(days=56)


@dataclass(frozen=True)
class WindowSpan:
    """An allowed interval for a class (allow windows minus change locks), in UTC."""

    window: str
    opens_at: datetime
    closes_at: datetime
    open_ended: bool = False  # longer than ~420 days past the question: the far end is where we stopped

    def contains(self, moment: datetime) -> bool:
        return self.opens_at <= moment < self.closes_at


@dataclass(frozen=True)
class WindowVerdict:
    """Whether a class may run at an instant and why, with the current or the next window."""

    allowed: bool
    reason: str
    window: str | None = None
    closes_at: datetime | None = None
    next_opens_at: datetime | None = None
    next_closes_at: datetime | None = None
    lock: str | None = None
    next_window: str | None = None


@dataclass(eq=False)
class Policy:
    """A validated policy. Pure: every question takes the instant it is about; answers are cached."""

    source: str
    raw: dict[str, Any]
    timezone: str
    target: str
    execution_mode: str
    windows: dict[str, RecurringRule]
    locks: list[LockRule]
    classes: dict[MigrationClass, ClassRule]
    gates: GateSettings
    gitlab: GitLabSettings
    prometheus_conn_id: str
    environments: dict[str, EnvironmentPolicy]
    notifications: NotificationSettings
    per_environment: dict[str, Policy] = field(default_factory=dict, repr=False)
    # Windows whose hours come from the stored traffic profile (include/policy/learned.py); the calendar
    # methods below see only `windows`, `window_verdict` adds these when given a profile.
    learned_windows: dict[str, LearnedWindow] = field(default_factory=dict)
    approval: ApprovalSettings = field(default_factory=ApprovalSettings)

    def __post_init__(self) -> None:
        self._locks = lock_blocks(self.locks)
        self._allowed: dict[MigrationClass, BlockCache] = {
            cls: allowed_blocks(
                [self.windows[name] for name in rule.windows if name in self.windows], self._locks
            )
            for cls, rule in self.classes.items()
        }

    # -- structure ----------------------------------------------------------------------------------
    def class_rule(self, cls: MigrationClass | str) -> ClassRule:
        """The rule of a class, with gate defaults (traffic threshold, minimum bake) resolved."""
        return self.classes[MigrationClass.parse(cls)]

    def for_environment(self, name: str) -> Policy:
        """This policy with the environment's `overrides` of `classes` and `gates` applied."""
        if name not in self.environments:
            raise PolicyError(
                f"{self.source}: environments: unknown environment {name!r} (known: {', '.join(self.environments)})"
            )
        return self.per_environment.get(name, self)

    def to_dict(self) -> dict[str, Any]:
        """The policy normalised (defaults filled, durations and instants as text), JSON-ready.

        It is itself a valid policy: parse_policy(policy.to_dict()) describes the same schedule.
        """
        gates = self.gates
        return {
            "version": 1,
            "timezone": self.timezone,
            "target": self.target,
            "execution_mode": self.execution_mode,
            "windows": {
                **{name: rule.to_dict() for name, rule in self.windows.items()},
                **{name: rule.to_dict() for name, rule in self.learned_windows.items()},
            },
            "change_locks": [{"name": lock.name, **lock.to_dict()} for lock in self.locks],
            "classes": {
                cls.value: {
                    "windows": list(rule.windows),
                    "automatic": rule.automatic,
                    "approval_required": rule.approval_required,
                    "traffic_threshold": rule.traffic_threshold,
                    "max_predicted_duration": _duration_or_none(rule.max_predicted_duration),
                    "min_bake": format_duration(rule.min_bake),
                }
                for cls, rule in self.classes.items()
            },
            "gates": {
                "poll_interval": format_duration(gates.poll_interval),
                "max_wait": format_duration(gates.max_wait),
                "traffic": {
                    "query": gates.traffic.query,
                    "mode": gates.traffic.mode,
                    "threshold": gates.traffic.threshold,
                    "percentile": gates.traffic.percentile,
                    "baseline_weeks": gates.traffic.baseline_weeks,
                    "sustain": format_duration(gates.traffic.sustain),
                    "max_staleness": format_duration(gates.traffic.max_staleness),
                    "health_query": gates.traffic.health_query,
                    "min_health": gates.traffic.min_health,
                    "profile": {
                        "weeks": gates.traffic.profile.weeks,
                        "low_percentile": gates.traffic.profile.low_percentile,
                    },
                },
                "deploy_lock": {
                    "deployment_statuses": list(gates.deploy_lock.deployment_statuses),
                    "deploy_pipelines": [
                        {"project": m.project, "ref": m.ref, "variables": dict(m.variables)}
                        for m in gates.deploy_lock.deploy_pipelines
                    ],
                    "lock_variable": gates.deploy_lock.lock_variable,
                    "forecast": _forecast_dict(gates.deploy_lock.forecast),
                },
                "rollback": {
                    "min_bake": format_duration(gates.rollback.min_bake),
                    "incident_projects": list(gates.rollback.incident_projects),
                    "incident_labels_any": list(gates.rollback.incident_labels_any),
                    "change_request_labels_all": list(gates.rollback.change_request_labels_all),
                    "change_request_labels_any": list(gates.rollback.change_request_labels_any),
                    "health": _health_dict(gates.rollback.health),
                },
            },
            "gitlab": {
                "conn_id": self.gitlab.conn_id,
                "application_project": self.gitlab.application_project,
                "admin_check_databases": list(self.gitlab.admin_check_databases),
                "pdm_pipeline": {
                    "project": self.gitlab.pdm_pipeline.project,
                    "ref": self.gitlab.pdm_pipeline.ref,
                    "trigger": self.gitlab.pdm_pipeline.trigger,
                    "variables": dict(self.gitlab.pdm_pipeline.variables),
                },
            },
            "prometheus": {"conn_id": self.prometheus_conn_id},
            "environments": {
                name: {
                    "deploy_environment": env.deploy_environment,
                    "db_environment": env.db_environment,
                    "after": env.after,
                    "schedule": env.schedule,
                    "overrides": _json_ready(env.overrides),
                }
                for name, env in self.environments.items()
            },
            "notifications": {
                "slack": {"conn_id": self.notifications.slack_conn_id},
                "grafana": {"conn_id": self.notifications.grafana_conn_id},
            },
            "approval": {"timeout": format_duration(self.approval.timeout)},
        }

    # -- calendar -----------------------------------------------------------------------------------
    def allowed_spans(self, cls: MigrationClass, start: datetime, end: datetime) -> list[WindowSpan]:
        """Allowed intervals for `cls` intersecting [start, end): its windows minus every lock, merged.

        Each span is given whole (it may open before `start` or close after `end`), so the timetable
        can create a run exactly when a span opens.
        """
        start, end = _utc(start, "start"), _utc(end, "end")
        return [_window_span(s) for s in covering(self._allowed[cls], start, end)]

    def next_window(
        self, cls: MigrationClass, after: datetime, horizon: timedelta = DEFAULT_HORIZON
    ) -> WindowSpan | None:
        """The allowed interval containing `after`, or else the next one opening within `horizon`."""
        after = _utc(after, "after")
        if not any(name in self.windows for name in self.classes[cls].windows):
            return None  # no calendar window (none at all, or learned windows only)
        cursor, limit = after, after + horizon
        while cursor < limit:
            stop = min(cursor + _SEARCH_STEP, limit)
            for span in covering(self._allowed[cls], cursor, stop):
                if span.closes > after:
                    return _window_span(span)
            cursor = stop
        return None

    def time_until_next_window(
        self, cls: MigrationClass, now: datetime, horizon: timedelta = DEFAULT_HORIZON
    ) -> timedelta | None:
        """Zero inside an allowed window; None when no window opens within `horizon`."""
        span = self.next_window(cls, now, horizon)
        if span is None:
            return None
        return max(timedelta(0), span.opens_at - _utc(now, "now"))

    def lock_spans(self, start: datetime, end: datetime) -> list[tuple[Span, str]]:
        """Change locks intersecting [start, end), each lock's contiguous stretch given whole."""
        start, end = _utc(start, "start"), _utc(end, "end")
        names = {piece[2] for index in _blocks_between(start, end) for piece in self._locks.block(index)}
        found = []
        for name in sorted(names):
            for span in covering(NamedView(self._locks, name), start, end):
                found.append(((span.opens, span.closes), name))
        return sorted(found)

    def window_verdict(
        self,
        cls: MigrationClass,
        now: datetime,
        profile: TrafficProfile | None = None,
        profile_error: str | None = None,
    ) -> WindowVerdict:
        """Whether `cls` may run at `now`, with a one-line reason a release manager can act on.

        Only the calendar is judged here; whether a human must start or approve the run is the class
        rule's `automatic` and `approval_required`, checked by the caller. A class with learned windows
        is judged against `profile` too (the environment's latest stored traffic profile): without one,
        or with `profile_error` (it could not be read), those windows are closed and the reason says so.
        """
        calendar = self._calendar_verdict(cls, now)
        learned = [self.learned_windows[n] for n in self.classes[cls].windows if n in self.learned_windows]
        if not learned or calendar.allowed:
            return calendar
        return self._learned_verdict(cls, _utc(now, "now"), calendar, learned, profile, profile_error)

    def format_instant(self, moment: datetime, *, closing: bool = False) -> str:
        """An instant as reasons write it: in the policy's time zone, with UTC beside it."""
        return self._when(moment, closing=closing)

    def _calendar_verdict(self, cls: MigrationClass, now: datetime) -> WindowVerdict:
        now = _utc(now, "now")
        rule = self.classes[cls]
        name = cls.value
        if not rule.windows:
            return WindowVerdict(
                False, f"{name} has no allowed window: it runs only if a human overrides the window gate"
            )
        span = self.next_window(cls, now)
        if span is not None and span.contains(now):
            until = self._when(span.closes_at, closing=True)
            if span.open_ended:
                until = f"at least {until}"
            starting = next(
                (
                    lock
                    for (a, _), lock in self.lock_spans(span.closes_at, span.closes_at + _SECOND)
                    if a == span.closes_at
                ),
                None,
            )
            if starting:
                until += f' (change lock "{starting}" begins)'
            return WindowVerdict(
                True,
                f'{name} may run in window "{span.window}" until {until}',
                window=span.window,
                closes_at=span.closes_at,
            )
        if span is None:
            upcoming = f"no allowed window opens within {DEFAULT_HORIZON.days} days"
        else:
            upcoming = (
                f'next "{span.window}" opens {self._when(span.opens_at)} '
                f"(in {describe_wait(span.opens_at - now)})"
            )
        lock, lock_end = self._binding_lock(rule, now)
        if lock is not None and lock_end is not None:
            reason = f'{name} blocked by change lock "{lock}" until {self._when(lock_end, closing=True)}; {upcoming}'
        else:
            reason = f"{name} waits: no allowed window now; {upcoming}"
        return WindowVerdict(
            False,
            reason,
            next_opens_at=span.opens_at if span else None,
            next_closes_at=span.closes_at if span else None,
            lock=lock,
            next_window=span.window if span else None,
        )

    def _learned_verdict(
        self,
        cls: MigrationClass,
        now: datetime,
        calendar: WindowVerdict,
        learned: list[LearnedWindow],
        profile: TrafficProfile | None,
        profile_error: str | None,
    ) -> WindowVerdict:
        """The calendar verdict (closed) combined with the class's learned windows; see learned.py."""
        name = cls.value
        notes: list[str] = []
        upcoming: list[tuple[datetime, datetime, str]] = []
        for window in learned:
            label = f'learned window "{window.name}"'
            if profile_error:
                notes.append(f"{label} closed: traffic profile unreadable: {profile_error}")
                continue
            if profile is None:
                notes.append(
                    f"{label} closed: no traffic profile stored (the pdm_traffic_profile DAG makes it)"
                )
                continue
            expires = profile.expires_at(window)
            if now >= expires:
                notes.append(
                    f"{label} closed: the traffic profile computed {self._when(profile.computed_at)} is older "
                    f"than {format_duration(window.max_age)}"
                )
                continue
            raw = [(a, min(b, expires)) for a, b in hour_spans(profile.low_traffic_hours, now, expires)]
            locks = self.lock_spans(now - timedelta(weeks=1), expires)
            free = subtract(raw, [span for span, _ in locks])
            current = next(((a, b) for a, b in free if a <= now < b), None)
            if current is not None:
                return WindowVerdict(
                    True,
                    f"{name} may run in {label} (low-traffic hours of {profile.environment or 'the environment'}) "
                    f"until {self._when(current[1], closing=True)}",
                    window=window.name,
                    closes_at=current[1],
                )
            later = next(((a, b) for a, b in free if a > now), None)
            lock = next((lock for (a, b), lock in locks if a <= now < b), None)
            in_hours = any(a <= now < b for a, b in raw)
            if later is not None:
                upcoming.append((later[0], later[1], window.name))
                why = f'blocked by change lock "{lock}"; ' if lock and in_hours else ""
                notes.append(
                    f"{label}: {why}next low-traffic hour opens {self._when(later[0])} "
                    f"(in {describe_wait(later[0] - now)})"
                )
            elif not profile.low_traffic_hours:
                notes.append(f"{label} closed: the traffic profile has no low-traffic hour")
            else:
                notes.append(
                    f"{label}: no low-traffic hour free of change locks before the profile expires "
                    f"{self._when(expires)}"
                )
        static = any(n in self.windows for n in self.classes[cls].windows)
        reason = f"{calendar.reason}; " if static else f"{name} waits: "
        reason += "; ".join(notes)
        nexts: list[tuple[datetime, datetime | None, str | None]] = []
        if static and calendar.next_opens_at is not None:
            nexts.append((calendar.next_opens_at, calendar.next_closes_at, calendar.next_window))
        nexts += upcoming
        first: tuple[datetime | None, datetime | None, str | None] = (
            min(nexts, key=lambda n: n[0]) if nexts else (None, None, None)
        )
        return WindowVerdict(
            False,
            reason,
            next_opens_at=first[0],
            next_closes_at=first[1],
            lock=calendar.lock,
            next_window=first[2],
        )

    # -- helpers ------------------------------------------------------------------------------------
    def _binding_lock(self, rule: ClassRule, now: datetime) -> tuple[str | None, datetime | None]:
        """The change lock that keeps a class out of a window it is in now: the one that ends last."""
        inside = any(
            a <= now < b
            for name in rule.windows
            if name in self.windows
            for a, b in self.windows[name].spans(now, now + _SECOND)
        )
        if not inside:
            return None, None
        active = [(b, name) for (a, b), name in self.lock_spans(now, now + _SECOND) if a <= now < b]
        if not active:
            return None, None
        end, name = max(active)
        return name, end

    def _when(self, moment: datetime, *, closing: bool = False) -> str:
        """An instant in the policy's time zone; a closing midnight reads as 24:00 of the day before."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        if closing and (local.hour, local.minute, local.second) == (0, 0, 0):
            text = f"{(local - timedelta(days=1)).strftime('%a %Y-%m-%d')} 24:00 {local.tzname()}"
        else:
            text = local.strftime("%a %Y-%m-%d %H:%M %Z")
        if self.timezone != "UTC":
            text += f" ({moment.astimezone(UTC).strftime('%H:%M UTC')})"
        return text


_SECOND = timedelta(seconds=1)


def _window_span(span: LabelledSpan) -> WindowSpan:
    return WindowSpan(span.label, span.opens, span.closes, span.open_ended)


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    moment = value.astimezone(UTC)
    if type(moment) is not datetime:  # e.g. pendulum: keep its arithmetic out of the calendar
        moment = datetime(*moment.timetuple()[:6], moment.microsecond, tzinfo=UTC)
    return moment


def _blocks_between(start: datetime, end: datetime) -> range:
    if end <= start:
        return range(0)
    return range(block_index(start), block_index(end - timedelta(microseconds=1)) + 1)


def _duration_or_none(value: timedelta | None) -> str | None:
    return None if value is None else format_duration(value)


def _json_ready(value: Any) -> Any:
    """YAML data (dates, datetimes, tuples) as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    return copy.deepcopy(value)


def _forecast_dict(forecast: ForecastSettings) -> dict[str, Any]:
    return {
        "enabled": forecast.enabled,
        "history": format_duration(forecast.history),
        "min_share": forecast.min_share,
        "safety_factor": forecast.safety_factor,
        "min_runs": forecast.min_runs,
        "duration_history": format_duration(forecast.duration_history),
        "default_duration": format_duration(forecast.default_duration),
        "gap_percentile": forecast.gap_percentile,
        "weekly_pattern": forecast.weekly_pattern,
        "per_migration_quantile": forecast.per_migration_quantile,
        "pipeline_overhead": format_duration(forecast.pipeline_overhead),
        "min_samples": forecast.min_samples,
        "per_migration_default": format_duration(forecast.per_migration_default),
        "max_hold": format_duration(forecast.max_hold) if forecast.max_hold else None,
        "max_hold_lead": format_duration(forecast.max_hold_lead) if forecast.max_hold_lead else None,
        "deploy_margin": format_duration(forecast.deploy_margin),
    }


def _health_dict(health: RollbackHealthSettings | None) -> dict[str, Any] | None:
    if health is None:
        return None
    return {
        "apdex_query": health.apdex_query,
        "min_apdex": health.min_apdex,
        "error_ratio_query": health.error_ratio_query,
        "max_error_ratio": health.max_error_ratio,
        "max_staleness": format_duration(health.max_staleness),
    }
