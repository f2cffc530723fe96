"""Builds the `gates` section: poll interval and maximum wait, traffic, deploy lock (and forecast), rollback (and health)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from include.policy import schema
from include.policy.fields import FieldReader, kind_of
from include.policy.model import (
    DeployLockSettings,
    ForecastSettings,
    GateSettings,
    PipelineMatch,
    RollbackHealthSettings,
    RollbackSettings,
    TrafficGateSettings,
    TrafficProfileSettings,
)
from include.policy.schema import DEFAULT_TRAFFIC_QUERY

PROFILE_KEYS = schema.keys("gates.traffic.profile")
FORECAST_KEYS = schema.keys("gates.deploy_lock.forecast")
HEALTH_KEYS = schema.keys("gates.rollback.health")
GATE_KEYS = schema.keys("gates")
TRAFFIC_KEYS = schema.keys("gates.traffic")
DEPLOY_LOCK_KEYS = schema.keys("gates.deploy_lock")
ROLLBACK_KEYS = schema.keys("gates.rollback")


class Gates(FieldReader):
    """Builds the `gates` section (traffic, deploy lock with its forecast, rollback with its health)."""

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
            self.error("gates.deploy_lock.deploy_pipelines", f"expected a list, got {kind_of(pipelines)}")
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
