"""Reads what every gate needs from GitLab, Prometheus and Airflow, and asks the core rules for verdicts.

This module does I/O and translation only; the rules are in `include/gates/`.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from include.classification.classes import MigrationClass
from include.deployments import parse_time
from include.gates.deploy_lock import DeployLockObservation, ExplicitLock, evaluate_deploy_lock
from include.gates.result import GateResult
from include.gates.rollback import RollbackObservation, evaluate_rollback_safety
from include.gates.window import evaluate_window

log = logging.getLogger(__name__)

GATE_NAMES = ("window", "traffic", "deploy_lock", "rollback_safety")


def evaluate_gates(policy: Any, environment: str, cls: MigrationClass, now: datetime) -> list[GateResult]:
    """Every gate's verdict for running `cls` on `environment` at `now`; sources that fail → closed."""
    env_policy = policy.for_environment(environment)
    return [
        evaluate_window(now, env_policy, cls),
        traffic_gate(env_policy, environment, cls, now),
        deploy_lock_gate(env_policy, environment, now),
        rollback_gate(env_policy, environment, cls, now),
    ]


def traffic_gate(policy: Any, environment: str, cls: MigrationClass, now: datetime) -> GateResult:
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


def traffic_settings(policy: Any, cls: MigrationClass):
    """The traffic rule's settings for a class: the class threshold overrides the gate default."""
    from include.gates.traffic import TrafficSettings

    gate = policy.gates.traffic
    rule = policy.class_rule(cls)
    threshold = rule.traffic_threshold if rule.traffic_threshold is not None else gate.threshold
    return TrafficSettings(
        query=gate.query,
        mode=gate.mode,
        threshold=threshold,
        percentile=gate.percentile,
        baseline_weeks=gate.baseline_weeks,
        sustain=gate.sustain,
        max_staleness=gate.max_staleness,
        health_query=gate.health_query,
        min_health=gate.min_health,
    )


def deploy_lock_gate(policy: Any, environment: str, now: datetime) -> GateResult:
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
        )
    except (GitLabError, ExplicitLockUnreadable) as exc:
        observation = DeployLockObservation(error=str(exc))
    return evaluate_deploy_lock(now, observation)


def rollback_gate(policy: Any, environment: str, cls: MigrationClass, now: datetime) -> GateResult:
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
        )
    except GitLabError as exc:
        observation = RollbackObservation(error=str(exc))
    return evaluate_rollback_safety(now, observation, min_bake)


class ExplicitLockUnreadable(RuntimeError):
    """The lock Variable exists but cannot be read or parsed: the deploy-lock gate is closed."""


def explicit_lock(variable_name: str) -> ExplicitLock | None:
    """An explicit lock stored as a JSON Airflow Variable: {"holder", "reason", "expires_at"}."""
    from airflow.sdk import Variable

    try:
        raw = Variable.get(variable_name, default=None)
    except Exception as exc:  # noqa: BLE001
        raise ExplicitLockUnreadable(f"lock variable {variable_name!r} unreadable: {exc}") from None
    if raw in (None, ""):
        return None
    try:
        data = json.loads(raw) if isinstance(raw, str) else dict(raw)
        return ExplicitLock(
            holder=str(data.get("holder") or "unknown"),
            reason=str(data.get("reason") or ""),
            expires_at=parse_time(data.get("expires_at")),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExplicitLockUnreadable(f"lock variable {variable_name!r} is not valid JSON: {exc}") from None


def _environment_variable(variables: dict[str, str]) -> str | None:
    """The pipeline variable that carries the environment name (its template is "{environment}")."""
    for key, template in (variables or {}).items():
        if str(template).strip() == "{environment}":
            return key
    return None
