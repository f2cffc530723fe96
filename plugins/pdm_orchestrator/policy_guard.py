"""The one task of a PDM DAG declared while the policy is invalid: it fails closed with the policy's error.

The DAG stays listed in the UI (with the error in its description and docs) instead of becoming an import
error; each run records the error as its outcome and fails at once, without retries.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

TASK_POLICY_INVALID = "policy_invalid"


def current_policy_error(policy_path: str, parsed_error: str) -> str:
    """The policy's problems now (the file may have changed since the DAG was parsed)."""
    from include.policy import load_policy

    try:
        load_policy(policy_path)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the policy's error
        return str(exc)
    return (
        f"{policy_path} was invalid when this DAG was parsed and is valid now; the DAG recovers at its next "
        f"parse (within the dag-processor's refresh interval): trigger again then. Parse-time error:\n"
        f"{parsed_error}"
    )


def fail_closed(environment: str, policy_path: str, parsed_error: str, context: dict[str, Any]) -> None:
    """Record the error as the run's outcome (best effort) and fail the run without retrying."""
    from airflow.sdk.exceptions import AirflowFailException

    from pdm_orchestrator.audit_events import record

    error = current_policy_error(policy_path, parsed_error)
    try:
        record(context, environment, "outcome", {"outcome": "policy_invalid", "reason": error})
    except Exception as exc:  # noqa: BLE001 - the run fails with the policy's error regardless
        log.error("could not record the policy_invalid outcome: %s", exc)
    raise AirflowFailException(f"policy invalid, nothing evaluated or triggered: {error}")
