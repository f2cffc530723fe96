"""Asks a person to approve a run that needs one, in Airflow's "Required Actions" (human-in-the-loop).

One task between `choose_path` and the gate sensors. A run that can go on its own passes straight through
to the gates (nothing is asked). A run that needs a human (`needs_human`: unknown class, `approval_required`,
an annotation conflict) writes a request with the pending migrations and a diff link, then waits without a
worker slot (Airflow 3.3 parks the task in `awaiting_input`). Approve branches to the gates; Reject, or no
answer within the policy's `approval.timeout`, branches to `record_outcome`. Every answer and every expiry is
audited.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk import Param

from include import approval

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

TASK_REQUEST_APPROVAL = "request_approval"
APPROVAL_XCOM_KEY = "approval"


def _timeout(configured: timedelta) -> timedelta:
    """The policy's bound unless the environment overrides it; a bad override falls back to the policy's
    value with a warning (a typo in an environment variable must not make the DAGs vanish)."""
    try:
        return approval.response_timeout(configured)
    except ValueError as exc:
        log.warning("%s; using the policy's approval.timeout %s", exc, configured)
        return configured


class PdmApprovalOperator(HITLBranchOperator):
    """Approve or reject a PDM run that needs a human; passes through when none is needed."""

    def __init__(
        self,
        *,
        environment: str,
        policy_path: str,
        gate_task_ids: list[str],
        outcome_task_id: str,
        timeout: timedelta = approval.DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("params", None)  # the DAG's run params are not the request's form (only the comment is)
        super().__init__(
            subject="Approve the pending post-deploy migrations?",
            options=[approval.APPROVE, approval.REJECT],
            multiple=False,
            params={
                "comment": Param(
                    "",
                    type="string",
                    title="Comment",
                    description="Why you approve or reject (recorded in the audit with your name).",
                )
            },
            response_timeout=_timeout(timeout),
            **kwargs,
        )
        self.environment = environment
        self.policy_path = policy_path
        self.gate_task_ids = list(gate_task_ids)
        self.outcome_task_id = outcome_task_id

    def execute(self, context: Context) -> Any:
        from pdm_orchestrator.run_steps import TASK_CHOOSE_PATH, TASK_CLASSIFY

        ti = context["ti"]
        path = ti.xcom_pull(task_ids=TASK_CHOOSE_PATH, key="path") or {}
        if path.get("path") != "needs_human":
            log.info("no approval needed (%s): on to the gates", path.get("path"))
            return self.do_branch(context, self.gate_task_ids)
        snapshot = ti.xcom_pull(task_ids=TASK_CLASSIFY) or {}
        diff = self._diff_url(snapshot)
        self.subject = approval.subject(snapshot)
        self.body = approval.body(snapshot, str(path.get("reason") or ""), diff)
        self._record(
            context,
            "approval_requested",
            {
                "diff_url": diff,
                "timeout_seconds": self.response_timeout.total_seconds() if self.response_timeout else None,
                "versions": [
                    m.get("version") for m in snapshot.get("selected") or snapshot.get("migrations") or []
                ],
            },
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from airflow.providers.standard.operators.hitl import HITLOperator

        from pdm_orchestrator.run_steps import TASK_CLASSIFY

        snapshot = context["ti"].xcom_pull(task_ids=TASK_CLASSIFY) or {}
        if "error" in event and event.get("error_type") == "timeout":
            record = approval.expired(self.response_timeout or approval.DEFAULT_TIMEOUT, snapshot)
            self._record(context, "approval_expired", record)
            context["ti"].xcom_push(key=APPROVAL_XCOM_KEY, value=record)
            log.warning("approval request expired: nothing runs")
            return self.do_branch(context, self.outcome_task_id)
        answered = HITLOperator.execute_complete(self, context=context, event=event)
        at = answered["responded_at"]
        record = approval.answer(
            list(answered["chosen_options"]),
            answered.get("responded_by_user"),
            at.isoformat() if hasattr(at, "isoformat") else (str(at) if at else None),
            (answered.get("params_input") or {}).get("comment"),
            snapshot,
        )
        self._record(context, "approval", record)
        context["ti"].xcom_push(key=APPROVAL_XCOM_KEY, value=record)
        log.info("%s by %s: %s", record["decision"], record["by"], record["comment"] or "(no comment)")
        chosen = self.gate_task_ids if record["decision"] == "approved" else self.outcome_task_id
        return self.do_branch(context, chosen)

    def _diff_url(self, snapshot: dict[str, Any]) -> str | None:
        """The GitLab compare page of the pending range; None (said in the request) if unavailable."""
        from include.policy import load_policy
        from pdm_orchestrator.hooks.gitlab import GitLabHook

        try:
            gitlab = load_policy(self.policy_path).gitlab
            web = GitLabHook(gitlab.conn_id).get_conn().url
            return approval.compare_url(
                web,
                gitlab.application_project,
                (snapshot.get("rollback_line") or {}).get("sha"),
                (snapshot.get("deployed") or {}).get("sha"),
            )
        except Exception as exc:  # noqa: BLE001 - the request is still made, without the link
            log.warning("no diff link for the approval request: %s", exc)
            return None

    def _record(self, context: Context, kind: str, payload: dict[str, Any]) -> None:
        from pdm_orchestrator.audit_events import record

        record(context, self.environment, kind, payload)
