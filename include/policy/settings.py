"""The typed settings of each policy section (classes, gates, GitLab, environments, notifications, approval):
frozen values the loader builds and the Policy holds (include.policy.model re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class ForecastSettings:
    """gates.deploy_lock.forecast: close the gate when the predicted PDM would overlap the next deployment."""

    enabled: bool = False
    history: timedelta = timedelta(weeks=4)
    min_share: float = 0.5
    safety_factor: float = 1.5
    min_runs: int = 3
    duration_history: timedelta = timedelta(days=90)
    default_duration: timedelta = timedelta(hours=1)
    gap_percentile: float = 50.0  # the cadence's gap after the last start (docs/policy.md)
    weekly_pattern: bool = True  # also expect deployments in the hours of the week they usually start
    # Predict the pending batch (include/gates/batch_duration.py) instead of past runs of the class: the
    # quantile of past per-migration durations per class; None keeps the run-level prediction.
    per_migration_quantile: float | None = None
    pipeline_overhead: timedelta = timedelta(minutes=10)
    min_samples: int = 10
    per_migration_default: timedelta = timedelta(minutes=10)  # GitLab.com's post-deploy time limit
    # Starvation guard: once nothing has run for this long while migrations wait, a predicted overlap
    # with the next deployment no longer closes the gate (that deployment may wait for the run instead of
    # the batch growing night after night); None: the overlap always closes it.
    max_hold: timedelta | None = None
    # ... except when the next deployment is expected within this lead (it would wait most of the run).
    max_hold_lead: timedelta | None = None
    # The predicted run must end this long before the expected deployment.
    deploy_margin: timedelta = timedelta(0)


@dataclass(frozen=True)
class TrafficProfileSettings:
    """gates.traffic.profile: how the daily traffic profile (learned low-traffic hours) is computed."""

    weeks: int = 4
    low_percentile: float = 30.0


@dataclass(frozen=True)
class ClassRule:
    """How one migration class may be scheduled, with the gate defaults already filled in."""

    windows: tuple[str, ...]
    automatic: bool
    approval_required: bool
    traffic_threshold: float
    max_predicted_duration: timedelta | None
    min_bake: timedelta


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
    profile: TrafficProfileSettings = field(default_factory=TrafficProfileSettings)


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
    forecast: ForecastSettings = field(default_factory=ForecastSettings)


@dataclass(frozen=True)
class RollbackHealthSettings:
    """gates.rollback.health: apdex and error ratio bounds the deployed package must meet (Prometheus)."""

    apdex_query: str | None
    min_apdex: float
    error_ratio_query: str | None
    max_error_ratio: float
    max_staleness: timedelta


@dataclass(frozen=True)
class RollbackSettings:
    min_bake: timedelta
    incident_projects: tuple[str, ...]
    incident_labels_any: tuple[str, ...]
    change_request_labels_all: tuple[str, ...]
    change_request_labels_any: tuple[str, ...]
    health: RollbackHealthSettings | None = None


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
class NotificationSettings:
    slack_conn_id: str | None = None
    grafana_conn_id: str | None = None


DEFAULT_APPROVAL_TIMEOUT = timedelta(hours=24)


@dataclass(frozen=True)
class ApprovalSettings:
    """How long a run that needs a human waits in Required Actions before it ends `approval_expired`."""

    timeout: timedelta = DEFAULT_APPROVAL_TIMEOUT


@dataclass(frozen=True)
class EnvironmentPolicy:
    name: str
    deploy_environment: str
    db_environment: str
    after: str | None
    schedule: bool
    overrides: dict[str, Any] = field(default_factory=dict)
