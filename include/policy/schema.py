"""The policy file's schema, declared once: every section's keys, and for scalar settings their type, default
and bounds.

The loader takes each section's allowed keys from here (an unknown key is an error naming the allowed ones)
and reads the declared settings with `Field`'s default and bounds; `python -m include.policy keys` prints
the reference from here; tests/policy/test_schema.py holds docs/policy.md's key reference to it. Rules that
tie several keys together (a lock's kind, the incident check, overrides) stay in the loader, next to the
section they check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from include.policy.durations import format_duration

DEFAULT_TRAFFIC_QUERY = 'sum(gitlab_component_ops:rate_5m{env="{environment}",type="web"})'


@dataclass(frozen=True)
class Field:
    """One setting: `kind` is duration, number, integer, text, texts, choice, boolean, mapping, list or time.

    `default` is the value a left-out key takes (None: no default, or required as the loader says);
    `minimum`/`maximum` bound numbers, `positive` refuses a zero duration, `choices` lists a choice's
    values (the first is the default).
    """

    key: str
    kind: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        """The type as docs/policy.md words it (for `keys`)."""
        if self.kind == "choice":
            return " | ".join(self.choices)
        if self.kind in ("number", "integer") and (self.minimum is not None or self.maximum is not None):
            low = "" if self.minimum is None else f"{self.minimum:g}"
            high = "" if self.maximum is None else f"{self.maximum:g}"
            whole = "whole number " if self.kind == "integer" else ""
            return f"{whole}{low}–{high}" if high else f"{whole}≥ {low}"
        if self.kind == "duration" and self.positive:
            return "duration > 0"
        return self.kind

    def shown_default(self) -> str:
        value = self.choices[0] if self.kind == "choice" and self.default is None else self.default
        if isinstance(value, timedelta):
            return format_duration(value)
        if isinstance(value, tuple):
            return "[" + ", ".join(value) + "]"
        return "-" if value is None else str(value)


@dataclass(frozen=True)
class Section:
    """A mapping of the policy: its key path as docs/policy.md writes it (`<name>`, `[i]` for any) and keys."""

    path: str
    fields: tuple[Field, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    def field(self, key: str) -> Field:
        for candidate in self.fields:
            if candidate.key == key:
                return candidate
        raise KeyError(f"{self.path}: no key {key!r} in the schema")


def _keys(*names: str, kind: str = "mapping") -> tuple[Field, ...]:
    """Keys whose reading the loader does itself (structure, cross-checks): declared for their name."""
    return tuple(Field(name, kind) for name in names)


_H = timedelta(hours=1)
_M = timedelta(minutes=1)

SECTIONS: tuple[Section, ...] = (
    Section(
        "",
        (
            Field("version", "integer", 1),
            Field("timezone", "text", "UTC"),
            Field("target", "choice", choices=("gitlab_com", "self_managed")),
            Field("execution_mode", "choice", choices=("all_pending", "selected_versions")),
            *_keys("windows", "change_locks", "classes", "gates", "gitlab", "prometheus", "environments"),
            *_keys("notifications", "approval"),
        ),
    ),
    Section(
        "windows.<name>",
        (
            *_keys("days", kind="list"),
            *_keys("start", "end", kind="time"),
            *_keys("timezone", "description", kind="text"),
        ),
    ),
    Section(
        "windows.<name> (learned)",
        (*_keys("learned", kind="text"), Field("max_age", "duration"), Field("description", "text")),
    ),
    Section("change_locks[i] (one-off)", _keys("name", "from", "to", "timezone", "description", kind="text")),
    Section(
        "change_locks[i] (recurring)",
        (
            *_keys("name", kind="text"),
            *_keys("days", kind="list"),
            *_keys("start", "end", kind="time"),
            *_keys("timezone", "description", kind="text"),
        ),
    ),
    Section(
        "change_locks[i] (dates)",
        (
            *_keys("name", kind="text"),
            *_keys("dates", kind="list"),
            *_keys("timezone", "description", kind="text"),
        ),
    ),
    Section(
        "change_locks[i] (holidays)",
        (*_keys("name", kind="text"), *_keys("holidays"), *_keys("timezone", "description", kind="text")),
    ),
    Section("change_locks[i].holidays", _keys("countries", kind="list")),
    Section(
        "classes.<class>",
        (
            *_keys("windows", kind="list"),
            *_keys("automatic", "approval_required", kind="boolean"),
            *_keys("traffic_threshold", kind="number"),
            *_keys("max_predicted_duration", "min_bake", kind="duration"),
        ),
    ),
    Section(
        "gates",
        (
            Field("poll_interval", "duration", _M, positive=True),
            Field("max_wait", "duration", 6 * _H, positive=True),
            *_keys("traffic", "deploy_lock", "rollback"),
        ),
    ),
    Section(
        "gates.traffic",
        (
            Field("query", "text", DEFAULT_TRAFFIC_QUERY),
            Field("mode", "choice", choices=("absolute", "baseline_percentile")),
            Field("threshold", "number", 600.0, minimum=0),
            Field("percentile", "number", 30.0, minimum=0, maximum=100),
            Field("baseline_weeks", "integer", 4, minimum=1, maximum=52),
            Field("sustain", "duration", 10 * _M),
            Field("max_staleness", "duration", 5 * _M, positive=True),
            Field("health_query", "text"),
            Field("min_health", "number", 0.999, minimum=0, maximum=1),
            *_keys("profile"),
        ),
    ),
    Section(
        "gates.traffic.profile",
        (
            Field("weeks", "integer", 4, minimum=1, maximum=12),
            Field("low_percentile", "number", 30.0, minimum=0, maximum=100),
        ),
    ),
    Section(
        "gates.deploy_lock",
        (
            Field("deployment_statuses", "texts", ("created", "running", "blocked")),
            *_keys("deploy_pipelines", kind="list"),
            Field("lock_variable", "text", "pdm_lock_{environment}"),
            *_keys("forecast"),
        ),
    ),
    Section(
        "gates.deploy_lock.deploy_pipelines[i]", (*_keys("project", "ref", kind="text"), *_keys("variables"))
    ),
    Section(
        "gates.deploy_lock.forecast",
        (
            Field("enabled", "boolean"),
            Field("history", "duration"),
            Field("min_share", "number"),
            Field("safety_factor", "number"),
            Field("min_runs", "integer"),
            Field("duration_history", "duration"),
            Field("default_duration", "duration"),
            Field("gap_percentile", "number"),
            Field("weekly_pattern", "boolean"),
            Field("per_migration_quantile", "number"),
            Field("pipeline_overhead", "duration"),
            Field("min_samples", "integer"),
            Field("per_migration_default", "duration"),
            Field("max_hold", "duration", positive=True),
            Field("max_hold_lead", "duration", positive=True),
            Field("deploy_margin", "duration", timedelta(0)),
        ),
    ),
    Section(
        "gates.rollback",
        (
            Field("min_bake", "duration", 2 * _H),
            Field("incident_projects", "texts"),
            Field("incident_labels_any", "texts", ("severity::1", "severity::2", "blocks deployments")),
            Field("change_request_labels_all", "texts", ("change::in-progress",)),
            Field("change_request_labels_any", "texts", ("C1", "C2")),
            *_keys("health"),
        ),
    ),
    Section(
        "gates.rollback.health",
        (
            Field("apdex_query", "text"),
            Field("min_apdex", "number"),
            Field("error_ratio_query", "text"),
            Field("max_error_ratio", "number"),
            Field("max_staleness", "duration"),
        ),
    ),
    Section(
        "gitlab",
        (
            *_keys("conn_id", "application_project", kind="text"),
            *_keys("pdm_pipeline"),
            *_keys("admin_check_databases", kind="list"),
        ),
    ),
    Section(
        "gitlab.pdm_pipeline",
        (
            *_keys("project", "ref", kind="text"),
            Field("trigger", "choice", choices=("api", "trigger_token")),
            *_keys("variables"),
        ),
    ),
    Section("prometheus", (Field("conn_id", "text", "prometheus_default"),)),
    Section(
        "environments.<name>",
        (
            *_keys("deploy_environment", "db_environment", "after", kind="text"),
            *_keys("schedule", kind="boolean"),
            *_keys("overrides"),
        ),
    ),
    Section("notifications", _keys("slack", "grafana")),
    Section("notifications.slack", _keys("conn_id", kind="text")),
    Section("notifications.grafana", _keys("conn_id", kind="text")),
    Section("approval", (Field("timeout", "duration", 24 * _H, positive=True),)),
)
_BY_PATH = {section.path: section for section in SECTIONS}


def section(path: str) -> Section:
    """The section at `path` as SECTIONS writes it; KeyError naming the path when there is none."""
    try:
        return _BY_PATH[path]
    except KeyError:
        raise KeyError(f"no section {path!r} in the policy schema") from None


def keys(path: str) -> tuple[str, ...]:
    """The keys a section allows, in the order messages list them."""
    return section(path).keys


def field(path: str) -> Field:
    """A setting by its full path: field("gates.traffic.threshold")."""
    parent, _, key = path.rpartition(".")
    return section(parent).field(key)


def reference() -> list[tuple[str, str, str]]:
    """(key path, type, default) of every key: what `python -m include.policy keys` prints."""
    rows = []
    for declared in SECTIONS:
        prefix = declared.path.split(" (")[0]
        for item in declared.fields:
            rows.append(
                (f"{prefix}.{item.key}" if prefix else item.key, item.describe(), item.shown_default())
            )
    return list(dict.fromkeys(rows))
