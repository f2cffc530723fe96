"""Deferrable wait for a GitLab pipeline to finish: polling only, never creating anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class PipelineFinishedTrigger(BaseTrigger):
    """Polls a GitLab pipeline until it has finished, then yields its final state.

    Transient GitLab errors are tolerated up to `max_consecutive_errors` polls in a row; after that it
    yields `{"status": "error", "message": ...}` so the task fails with the reason instead of waiting
    blind. The wait is bounded (`deadline`, ISO) and a pipeline parked in `manual` for `manual_grace_seconds`
    stops it too: `{"status": "timeout"|"manual", "pipeline": {...}}` (see include/pipeline_wait.py).
    Yields `{"status": "finished", "pipeline": {...}}` otherwise.
    """

    def __init__(
        self,
        *,
        gitlab_conn_id: str,
        project: str,
        pipeline_id: int,
        poll_seconds: float = 30.0,
        max_consecutive_errors: int = 10,
        deadline: str | None = None,
        manual_grace_seconds: float = 3600.0,
    ) -> None:
        super().__init__()
        self.gitlab_conn_id = gitlab_conn_id
        self.project = project
        self.pipeline_id = pipeline_id
        self.poll_seconds = poll_seconds
        self.max_consecutive_errors = max_consecutive_errors
        self.deadline = deadline
        self.manual_grace_seconds = manual_grace_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "gitlab_conn_id": self.gitlab_conn_id,
                "project": self.project,
                "pipeline_id": self.pipeline_id,
                "poll_seconds": self.poll_seconds,
                "max_consecutive_errors": self.max_consecutive_errors,
                "deadline": self.deadline,
                "manual_grace_seconds": self.manual_grace_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from include.pipeline_wait import WaitBounds, wait_verdict
        from pdm_orchestrator.hooks.gitlab import GitLabError, GitLabHook

        hook = GitLabHook(self.gitlab_conn_id)
        bounds = WaitBounds(
            deadline=(
                datetime.fromisoformat(self.deadline)
                if self.deadline
                else datetime.now(UTC) + timedelta(days=365)
            ),
            manual_grace=timedelta(seconds=self.manual_grace_seconds),
        )
        errors = 0
        manual_since: datetime | None = None
        while True:
            now = datetime.now(UTC)
            try:
                pipeline = await asyncio.to_thread(hook.pipeline, self.project, self.pipeline_id)
                errors = 0
            except GitLabError as exc:
                errors += 1
                self.log.warning("pipeline %s poll failed (%d in a row): %s", self.pipeline_id, errors, exc)
                if errors >= self.max_consecutive_errors:
                    yield TriggerEvent(
                        {"status": "error", "message": str(exc), "pipeline_id": self.pipeline_id}
                    )
                    return
                if now >= bounds.deadline:
                    yield TriggerEvent(
                        {
                            "status": "error",
                            "message": f"deadline passed: {exc}",
                            "pipeline_id": self.pipeline_id,
                        }
                    )
                    return
            else:
                if pipeline.finished:
                    yield TriggerEvent({"status": "finished", "pipeline": pipeline.to_dict()})
                    return
                manual_since = (manual_since or now) if pipeline.status == "manual" else None
                verdict = wait_verdict(pipeline.status, now, bounds, manual_since)
                if verdict:
                    yield TriggerEvent({"status": verdict, "pipeline": pipeline.to_dict()})
                    return
            await asyncio.sleep(self.poll_seconds)
