"""How long the product waits for a PDM pipeline, and what a parked pipeline means (issue 14, hole 5).

The wait is bounded: past `deadline` the run stops waiting and ends `pipeline_timeout`. A pipeline in
`manual` is parked at a job nobody has played: after `manual_grace` the run ends `pipeline_parked_manual`
(a human must play or cancel it) instead of keeping the environment forever. `scheduled` (a delayed job that
will start by itself) is waited for like `running`, within the same deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

TIMEOUT = "timeout"
PARKED_MANUAL = "manual"

OUTCOME_BY_VERDICT = {TIMEOUT: "pipeline_timeout", PARKED_MANUAL: "pipeline_parked_manual"}


@dataclass(frozen=True)
class WaitBounds:
    """The pipeline wait's limits: an absolute deadline and how long `manual` may last."""

    deadline: datetime
    manual_grace: timedelta


def wait_verdict(status: str, now: datetime, bounds: WaitBounds, manual_since: datetime | None) -> str | None:
    """None: keep waiting. TIMEOUT or PARKED_MANUAL: stop waiting and say so (the pipeline is left alone)."""
    if status == "manual" and manual_since is not None and now - manual_since >= bounds.manual_grace:
        return PARKED_MANUAL
    if now >= bounds.deadline:
        return TIMEOUT
    return None


def describe_stop(verdict: str, pipeline: dict[str, Any], bounds: WaitBounds) -> str:
    """One line for the audit record and the alert."""
    if verdict == PARKED_MANUAL:
        return (
            f"pipeline {pipeline.get('id')} has waited at a manual job for more than "
            f"{bounds.manual_grace}; a human must play or cancel it ({pipeline.get('web_url')})"
        )
    return (
        f"pipeline {pipeline.get('id')} still {pipeline.get('status')} at the wait deadline "
        f"{bounds.deadline.isoformat()}; it was left running and needs a human ({pipeline.get('web_url')})"
    )
