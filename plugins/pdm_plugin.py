"""Registers the PDM Orchestrator's Airflow extensions (the adapters live in the pdm_orchestrator package)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from pdm_orchestrator.links.gitlab import GitLabPipelineLink


class PdmOrchestratorPlugin(AirflowPlugin):
    """Extra link to the GitLab pipeline (and, as they land, the timetable and the PDM page)."""

    name = "pdm_orchestrator"
    operator_extra_links = [GitLabPipelineLink()]
