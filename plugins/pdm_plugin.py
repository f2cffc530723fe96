"""Registers the PDM Orchestrator's Airflow extensions (the adapters live in the pdm_orchestrator package)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.plugins_manager import AirflowPlugin

from pdm_orchestrator.links.gitlab import GitLabPipelineLink
from pdm_orchestrator.timetables.policy_windows import PolicyWindowTimetable

if TYPE_CHECKING:
    from fastapi import FastAPI


def _pdm_app() -> FastAPI:
    from pdm_orchestrator.ui.app import app

    return app


class PdmOrchestratorPlugin(AirflowPlugin):
    """The window timetable, the GitLab pipeline link, and the PDM page with its metrics endpoint."""

    name = "pdm_orchestrator"
    timetables = [PolicyWindowTimetable]
    operator_extra_links = [GitLabPipelineLink()]
    fastapi_apps = [{"app": _pdm_app(), "url_prefix": "/pdm", "name": "PDM"}]
    external_views = [
        {
            "name": "Post-deploy migrations",
            "href": "/pdm/",
            "destination": "nav",
            "category": "browse",
            "url_route": "pdm",
        }
    ]
