"""Operator extra link: open the PDM pipeline in GitLab from the task instance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

PIPELINE_URL_XCOM_KEY = "pipeline_web_url"


class GitLabPipelineLink(BaseOperatorLink):
    """Links the trigger task to the GitLab pipeline it created or resumed."""

    name = "GitLab pipeline"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=PIPELINE_URL_XCOM_KEY)
        return url or ""
