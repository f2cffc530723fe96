"""Builds the `gitlab` (PDM pipeline and its variables), `environments`, `notifications` and `approval` sections."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from include.policy import schema
from include.policy.durations import format_duration
from include.policy.fields import FieldReader, template_fields
from include.policy.model import (
    DEFAULT_APPROVAL_TIMEOUT,
    ApprovalSettings,
    EnvironmentPolicy,
    GitLabSettings,
    NotificationSettings,
    PipelineSettings,
)

MAX_APPROVAL_TIMEOUT = timedelta(days=30)
GITLAB_KEYS = schema.keys("gitlab")
PIPELINE_KEYS = schema.keys("gitlab.pdm_pipeline")
ENV_KEYS = schema.keys("environments.<name>")
PIPELINE_PLACEHOLDERS = ("environment", "sha", "package", "decision_id", "versions")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class GitLabAndEnvironments(FieldReader):
    """Builds the `gitlab`, `environments`, `notifications` and `approval` sections."""

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
