"""Operator extra link: open the PDM pipeline in GitLab from the task instance."""

from __future__ import annotations

from airflow.sdk import BaseOperatorLink

PIPELINE_URL_XCOM_KEY = "pipeline_web_url"


class GitLabPipelineLink(BaseOperatorLink):
    """Links the trigger task to the GitLab pipeline it created or resumed."""

    name = "GitLab pipeline"

    def get_link(self, operator, *, ti_key) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=PIPELINE_URL_XCOM_KEY)
        return url or ""
