"""The PDM pipeline as the product sees it: identity, status and timings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from include.deployments import parse_time

# GitLab's pipeline statuses (Ci::HasStatus::AVAILABLE_STATUSES, 17.x; include/sandbox/gitlab_api.yaml).
ALL_STATUSES = (
    "created",
    "waiting_for_resource",
    "preparing",
    "waiting_for_callback",
    "pending",
    "running",
    "success",
    "failed",
    "canceling",
    "canceled",
    "skipped",
    "manual",
    "scheduled",
)
FINISHED_STATUSES = frozenset({"success", "failed", "canceled", "skipped"})
ACTIVE_STATUSES = frozenset(set(ALL_STATUSES) - FINISHED_STATUSES)
# Statuses in which a pipeline holds its environment: everything alive, `canceling` included (jobs still run
# their after_script) and `scheduled` (a delayed job is about to start). `manual` is left out: a pipeline parked
# at a manual job nobody plays would hold the environment forever.
HOLDING_STATUSES = (
    "created",
    "waiting_for_resource",
    "preparing",
    "waiting_for_callback",
    "pending",
    "running",
    "canceling",
    "scheduled",
)


@dataclass(frozen=True)
class PipelineRun:
    """A GitLab pipeline, reduced to what decisions and the audit need."""

    id: int
    project: str
    status: str
    ref: str
    web_url: str
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    note: str = ""  # why the product counts it as it does (e.g. variables unreadable: counted as holding)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "status": self.status,
            "ref": self.ref,
            "web_url": self.web_url,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration": self.duration,
        }

    @classmethod
    def from_gitlab(cls, project: str, data: dict[str, Any]) -> PipelineRun:
        duration = data.get("duration")
        return cls(
            id=int(data["id"]),
            project=project,
            status=str(data.get("status") or "unknown"),
            ref=str(data.get("ref") or ""),
            web_url=str(data.get("web_url") or ""),
            created_at=parse_time(data.get("created_at")),
            started_at=parse_time(data.get("started_at")),
            finished_at=parse_time(data.get("finished_at")),
            duration=float(duration) if duration is not None else None,
        )
