"""Policies for end-to-end tests, written relative to the real current time so any day of the week works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def e2e_policy(
    now: datetime | None = None,
    *,
    max_wait: str = "8s",
    traffic_threshold: float = 600,
    min_bake: str = "1h",
    admin_check_databases: list[str] | None = None,
    execution_mode: str = "all_pending",
) -> dict[str, Any]:
    """Background may run any time; cleanup only on a day that is neither today nor tomorrow, so a cleanup
    run now is always outside its window and its next window opens well after `max_wait`."""
    now = now or datetime.now(UTC)
    soon = {DAYS[now.weekday()], DAYS[(now + timedelta(days=1)).weekday()]}
    later = [d for d in DAYS if d not in soon]
    return {
        "version": 1,
        "timezone": "UTC",
        "target": "gitlab_com",
        "execution_mode": execution_mode,
        "windows": {
            "any_time": {"days": DAYS, "start": "00:00", "end": "24:00"},
            "later_this_week": {"days": later, "start": "00:00", "end": "24:00"},
        },
        "change_locks": [],
        "classes": {
            "noop": {"windows": ["any_time"], "automatic": True},
            "background": {"windows": ["any_time"], "automatic": True},
            "data": {"windows": ["any_time"], "automatic": True},
            "schema_heavy": {"windows": ["later_this_week"], "automatic": True},
            "cleanup": {"windows": ["later_this_week"], "automatic": True},
            "unknown": {"windows": [], "automatic": False, "approval_required": True},
        },
        "gates": {
            "poll_interval": "1s",
            "max_wait": max_wait,
            "traffic": {
                "query": 'sum(gitlab_component_ops:rate_5m{env="{environment}",type="web"})',
                "mode": "absolute",
                "threshold": traffic_threshold,
                "sustain": "3s",
                "max_staleness": "30s",
            },
            "deploy_lock": {
                "deployment_statuses": ["created", "running", "blocked"],
                "deploy_pipelines": [],
                "lock_variable": "pdm_lock_{environment}",
            },
            "rollback": {
                "min_bake": min_bake,
                "incident_projects": ["gitlab-com/gl-infra/production"],
                "incident_labels_any": ["severity::1", "severity::2", "blocks deployments"],
                "change_request_labels_all": ["change::in-progress"],
                "change_request_labels_any": ["C1", "C2"],
            },
        },
        "gitlab": {
            "conn_id": "gitlab_default",
            "application_project": "gitlab-org/gitlab",
            "admin_check_databases": admin_check_databases or [],
            "pdm_pipeline": {
                "project": "gitlab-org/release/tools",
                "ref": "master",
                "trigger": "api",
                "variables": {
                    "PDM_ENVIRONMENT": "{environment}",
                    "PDM_SHA": "{sha}",
                    "PDM_PACKAGE": "{package}",
                    "PDM_DECISION_ID": "{decision_id}",
                    "PDM_VERSIONS": "{versions}",
                    "POST_DEPLOY_MIGRATIONS": "true",
                },
            },
        },
        "prometheus": {"conn_id": "prometheus_default"},
        "environments": {
            "gstg": {"deploy_environment": "gstg", "db_environment": "db/gstg", "schedule": False},
            "gprd": {
                "deploy_environment": "gprd",
                "db_environment": "db/gprd",
                "after": "gstg",
                "schedule": False,
            },
        },
    }


def write_policy(path: Path, policy: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path
