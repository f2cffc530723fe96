"""Reads what every gate needs from GitLab, Prometheus and Airflow, and asks the core rules for verdicts.

This module does I/O and translation only; the rules are in `include/gates/`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from include.classification.classes import MigrationClass
from include.gates.deploy_lock import DeployLockObservation, ExplicitLock, evaluate_deploy_lock
from include.gates.result import GateResult
from include.gates.rollback import HealthBounds, RollbackObservation, evaluate_rollback_safety
from include.gates.window import evaluate_window
from include.isotime import parse_iso_datetime

if TYPE_CHECKING:
    from include.gates.deploy_forecast import DeployForecast, DurationEstimate
    from include.gates.traffic import TrafficSettings
    from include.policy.learned import TrafficProfile
    from include.policy.model import Policy
    from include.policy.settings import RollbackHealthSettings
    from pdm_orchestrator.hooks.gitlab import GitLabHook

log = logging.getLogger(__name__)

AUDIT_CONN_ID = "pdm_audit"  # where traffic profiles and past PDM runs are read from


def evaluate_gates(
    policy: Policy,
    environment: str,
    cls: MigrationClass,
    now: datetime,
    batch: Sequence[str] | None = None,
) -> list[GateResult]:
    """Every gate's verdict for running `cls` on `environment` at `now`; sources that fail → closed.

    `batch` is the classes of the migrations the run would execute (run_steps.batch_classes); with the
    policy's per-batch prediction on, the window gate checks that the batch fits before its window closes
    and the deploy-lock forecast predicts this batch. None: the run-level behaviour.
    """
    env_policy = policy.for_environment(environment)
    return [
        window_gate(env_policy, environment, cls, now, batch),
        traffic_gate(env_policy, environment, cls, now),
        deploy_lock_gate(env_policy, environment, now, cls, batch),
        rollback_gate(env_policy, environment, cls, now),
    ]


def window_gate(
    policy: Policy, environment: str, cls: MigrationClass, now: datetime, batch: Sequence[str] | None = None
) -> GateResult:
    """The calendar, plus the environment's stored traffic profile when the class has learned windows;
    then, when the policy predicts per batch, whether the pending batch ends before the window closes."""
    learned = getattr(policy, "learned_windows", {}) or {}
    if not any(name in learned for name in policy.class_rule(cls).windows):
        result = evaluate_window(now, policy, cls)
    else:
        profile, error = latest_traffic_profile(environment)
        result = evaluate_window(now, policy, cls, profile=profile, profile_error=error)
    if not result.open or batch is None:
        return result
    return batch_fit_gate(result, policy, environment, batch, now)


def batch_fit_gate(
    window: GateResult, policy: Policy, environment: str, batch: Sequence[str], now: datetime
) -> GateResult:
    """The open window gate, closed when the predicted batch would still run as the window closes.

    The same rule as the simulator's orchestrator (batch_duration.predict_pending and batch_fit_reason, on
    the audit store's per-run facts). Policy without the per-batch prediction: `window` unchanged. Past
    runs unreadable: closed, saying why (fail closed). No retry_at: the check is repeated at each poll.
    """
    from include.gates.batch_duration import batch_fit_reason, describe_batch

    estimate, error = pending_batch_duration(policy, environment, batch, now)
    if error is not None:
        return GateResult.unevaluable(window.gate, f"batch duration unknown: {error}", now)
    if estimate is None:
        return window
    classes = [MigrationClass.parse(name) for name in batch]
    closes = window.observed.get("closes_at") if isinstance(window.observed, dict) else None
    closes_at = datetime.fromisoformat(closes) if closes else None
    observed = dict(window.observed) | {
        "batch": describe_batch(classes),
        "predicted_duration_s": estimate.duration.total_seconds(),
        "predicted_end": (now + estimate.duration).isoformat(),
    }
    details = dict(window.details) | {"batch_prediction": estimate.basis}
    reason = batch_fit_reason(classes, estimate.duration, now, closes_at)
    if reason is None:
        return replace(window, observed=observed, details=details)
    return replace(window, open=False, observed=observed, details=details, reason=reason, retry_at=None)


def pending_batch_duration(
    policy: Policy,
    environment: str,
    batch: Sequence[str] | None,
    now: datetime,
    audit_conn_id: str = AUDIT_CONN_ID,
) -> tuple[DurationEstimate | None, str | None]:
    """(the batch's predicted run or None, why it could not be predicted or None).

    None, None when there is no batch or the policy's forecast does not predict per batch (the run-level
    prediction stays in use). Learns from the audit store's per-run facts over `duration_history`.
    """
    from include.gates.batch_duration import PastBatch, predict_pending, settings_from_forecast

    forecast = policy.gates.deploy_lock.forecast
    settings = settings_from_forecast(forecast)
    if batch is None or settings is None:
        return None, None
    try:
        from pdm_orchestrator.hooks.audit import AuditHook

        since = (now - forecast.duration_history).isoformat()
        rows = AuditHook(audit_conn_id).get_conn().pdm_batches(environment, since)
        past = [
            PastBatch({MigrationClass.parse(name): count for name, count in counts.items()}, seconds)
            for counts, seconds in rows
        ]
        classes = [MigrationClass.parse(name) for name in batch]
        return predict_pending(classes, past, settings), None
    except Exception as exc:  # noqa: BLE001 - no prediction: the gates that need it are closed, saying why
        return None, f"past PDM runs unreadable: {type(exc).__name__}: {exc}"


def latest_traffic_profile(
    environment: str, audit_conn_id: str = AUDIT_CONN_ID
) -> tuple[TrafficProfile | None, str | None]:
    """(the latest stored TrafficProfile or None, why it could not be read or None)."""
    from include.policy.learned import TrafficProfile
    from pdm_orchestrator.hooks.audit import AuditHook

    try:
        data = AuditHook(audit_conn_id).get_conn().latest_traffic_profile(environment)
        return (TrafficProfile.from_dict(data) if data else None), None
    except Exception as exc:  # noqa: BLE001 - unreadable profile: the learned window is closed, saying why
        return None, f"{type(exc).__name__}: {exc}"


def refresh_traffic_profile(
    policy: Policy, environment: str, now: datetime, audit_conn_id: str = AUDIT_CONN_ID
) -> dict[str, Any]:
    """Learn and store one environment's traffic profile from `gates.traffic.profile.weeks` of history.

    Raises (naming the environment and the query) when Prometheus has no usable history: no profile is
    stored then, so the previous one ages out and learned windows close (fail closed).
    """
    from datetime import timedelta

    from include.gates.traffic_profile import build_traffic_profile
    from pdm_orchestrator.hooks.audit import AuditHook
    from pdm_orchestrator.hooks.prometheus import PrometheusHook

    env_policy = policy.for_environment(environment)
    settings = env_policy.gates.traffic
    query = settings.query.replace("{environment}", environment)
    start = now - timedelta(weeks=settings.profile.weeks)
    history = PrometheusHook(env_policy.prometheus_conn_id).history(query, start, now)
    profile = build_traffic_profile(
        environment, history, now, settings.profile.low_percentile, query=query, history_start=start
    )
    store = AuditHook(audit_conn_id).get_conn()
    version = store.record_traffic_profile(environment, profile.computed_at.isoformat(), profile.to_dict())
    summary = {
        "environment": environment,
        "version": version,
        "samples": profile.samples,
        "low_traffic_hours": profile.describe_hours(),
    }
    log.info("traffic profile %s", summary)
    return summary


def traffic_gate(policy: Policy, environment: str, cls: MigrationClass, now: datetime) -> GateResult:
    from include.gates.traffic import TrafficObservation, evaluate_traffic
    from pdm_orchestrator.hooks.prometheus import PrometheusHook

    settings = traffic_settings(policy, cls)
    try:
        observation = PrometheusHook(policy.prometheus_conn_id).traffic_observation(
            settings, environment, now
        )
    except Exception as exc:  # noqa: BLE001 - whatever failed, the gate is closed and says why
        observation = TrafficObservation(samples=[], error=f"{type(exc).__name__}: {exc}")
    return evaluate_traffic(now, observation, settings)


def traffic_settings(policy: Policy, cls: MigrationClass) -> TrafficSettings:
    """The traffic rule's settings for a class (resolved in the core, shared with the simulator)."""
    from include.gates.traffic import settings_for_class

    return settings_for_class(policy, cls)


def deploy_lock_gate(
    policy: Policy,
    environment: str,
    now: datetime,
    cls: MigrationClass | None = None,
    batch: Sequence[str] | None = None,
) -> GateResult:
    from pdm_orchestrator.hooks.gitlab import GitLabError, GitLabHook

    env = policy.environments[environment]
    settings = policy.gates.deploy_lock
    pipeline = policy.gitlab.pdm_pipeline
    hook = GitLabHook(policy.gitlab.conn_id)
    try:
        deployments = hook.active_deployments(
            policy.gitlab.application_project, env.deploy_environment, settings.deployment_statuses
        )
        deploy_pipelines = []
        for spec in settings.deploy_pipelines:
            variables = {k: str(v).format(environment=environment) for k, v in (spec.variables or {}).items()}
            deploy_pipelines += hook.active_pipelines(spec.project, spec.ref, variables)
        pdm_variable = _environment_variable(pipeline.variables)
        pdm_pipelines = hook.active_pipelines(
            pipeline.project, pipeline.ref, {pdm_variable: environment} if pdm_variable else None
        )
        observation = DeployLockObservation(
            active_deployments=deployments,
            running_deploy_pipelines=deploy_pipelines,
            running_pdm_pipelines=pdm_pipelines,
            explicit_lock=explicit_lock(settings.lock_variable.format(environment=environment)),
            forecast=(
                deploy_forecast(policy, environment, cls or MigrationClass.UNKNOWN, now, hook, batch)
                if settings.forecast.enabled
                else None
            ),
        )
    except (GitLabError, ExplicitLockUnreadable) as exc:
        observation = DeployLockObservation(error=str(exc))
    return evaluate_deploy_lock(now, observation)


def deploy_forecast(
    policy: Policy,
    environment: str,
    cls: MigrationClass,
    now: datetime,
    hook: GitLabHook,
    batch: Sequence[str] | None = None,
) -> DeployForecast:
    """The next deployment expected (GitLab history) and the predicted PDM duration (audit store): of the
    pending `batch` when the policy predicts per batch, else of the class's whole past runs."""
    from include.gates.deploy_forecast import (
        DeployForecast,
        expect_next_deployment,
        predict_pdm_duration,
        waiting_since,
    )
    from pdm_orchestrator.hooks.gitlab import GitLabError

    settings = policy.gates.deploy_lock.forecast
    env = policy.environments[environment]
    try:
        deployments = hook.recent_deployments(
            policy.gitlab.application_project, env.deploy_environment, now - settings.history
        )
    except GitLabError as exc:
        return DeployForecast(error=str(exc))
    expected = expect_next_deployment(
        [d.created_at for d in deployments if d.created_at],
        now,
        settings.history,
        settings.min_share,
        gap_percentile=settings.gap_percentile,
        weekly_pattern=settings.weekly_pattern,
    )
    duration, error = pending_batch_duration(policy, environment, batch, now)
    if error is not None:
        return DeployForecast(error=error)
    if duration is None:
        try:
            from pdm_orchestrator.hooks.audit import AuditHook

            since = (now - settings.duration_history).isoformat()
            runs = AuditHook(AUDIT_CONN_ID).get_conn().pdm_run_durations(environment, cls.value, since)
        except Exception as exc:  # noqa: BLE001 - no durations: the forecast, and so the gate, is unknown
            return DeployForecast(error=f"past PDM durations unreadable: {type(exc).__name__}: {exc}")
        duration = predict_pdm_duration(
            [seconds for _, seconds in runs],
            safety_factor=settings.safety_factor,
            min_runs=settings.min_runs,
            class_name=cls.value,
            class_max=policy.class_rule(cls).max_predicted_duration,
            default=settings.default_duration,
        )
    held = None
    if settings.max_hold is not None:
        # The starvation guard: PDM runs are recorded as deployments to db/<environment>; the oldest pending
        # migration waits since the first deployment that finished after the last run started.
        try:
            pdm_runs = hook.recent_deployments(
                policy.gitlab.application_project, env.db_environment, now - settings.history
            )
        except GitLabError as exc:
            return DeployForecast(error=f"past PDM runs unreadable: {exc}")
        last_run = max((d.created_at for d in pdm_runs if d.created_at), default=None)
        waiting_from = waiting_since((d.finished_at for d in deployments if d.status == "success"), last_run)
        held = now - waiting_from if waiting_from is not None else None
    return DeployForecast.from_settings(settings, expected, duration, held)


def rollback_gate(policy: Policy, environment: str, cls: MigrationClass, now: datetime) -> GateResult:
    from pdm_orchestrator.hooks.gitlab import GitLabError, GitLabHook

    env = policy.environments[environment]
    settings = policy.gates.rollback
    rule = policy.class_rule(cls)
    min_bake = rule.min_bake if rule.min_bake is not None else settings.min_bake
    hook = GitLabHook(policy.gitlab.conn_id)
    try:
        observation = RollbackObservation(
            deployed=hook.latest_successful_deployment(
                policy.gitlab.application_project, env.deploy_environment
            ),
            blocking_issues=hook.blocking_issues(
                settings.incident_projects,
                settings.incident_labels_any,
                settings.change_request_labels_all,
                settings.change_request_labels_any,
            ),
            incident_check=bool(settings.incident_projects),
        )
    except GitLabError as exc:
        observation = RollbackObservation(error=str(exc))
    bounds = health_bounds(settings.health)
    if bounds is not None and observation.error is None:
        from pdm_orchestrator.hooks.prometheus import PrometheusHook

        reading = PrometheusHook(policy.prometheus_conn_id).health_reading(bounds, environment, now)
        observation = replace(observation, health=reading)
    return evaluate_rollback_safety(now, observation, min_bake, bounds)


def health_bounds(settings: RollbackHealthSettings | None) -> HealthBounds | None:
    """The policy's gates.rollback.health as the core rule's bounds (None: health is not checked)."""
    if settings is None:
        return None
    return HealthBounds(
        apdex_query=settings.apdex_query,
        min_apdex=settings.min_apdex,
        error_ratio_query=settings.error_ratio_query,
        max_error_ratio=settings.max_error_ratio,
        max_staleness=settings.max_staleness,
    )


class ExplicitLockUnreadable(RuntimeError):
    """The lock Variable exists but cannot be read or parsed: the deploy-lock gate is closed."""


def explicit_lock(variable_name: str) -> ExplicitLock | None:
    """An explicit lock stored as a JSON Airflow Variable: {"holder", "reason", "expires_at"}."""
    from airflow.sdk import Variable

    try:
        raw = Variable.get(variable_name, default=None)
    except Exception as exc:  # noqa: BLE001
        raise ExplicitLockUnreadable(f"lock variable {variable_name!r} unreadable: {exc}") from exc
    if raw in (None, ""):
        return None
    try:
        data = json.loads(raw) if isinstance(raw, str) else dict(raw)
        # Read as written (naive stays naive): a lock whose expiry names no time zone is refused, not guessed.
        text = data.get("expires_at")
        expires_at = parse_iso_datetime(str(text)) if text else None
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValueError(f"expires_at {data.get('expires_at')!r} has no time zone (write e.g. …Z)")
        return ExplicitLock(
            holder=str(data.get("holder") or "unknown"),
            reason=str(data.get("reason") or ""),
            expires_at=expires_at,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExplicitLockUnreadable(f"lock variable {variable_name!r} is not a valid lock: {exc}") from exc


def _environment_variable(variables: dict[str, str]) -> str | None:
    """The pipeline variable that carries the environment name (its template is "{environment}")."""
    for key, template in (variables or {}).items():
        if str(template).strip() == "{environment}":
            return key
    return None
