"""Operator that triggers the PDM pipeline exactly once per decision and waits for it, deferred."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from pdm_orchestrator.links.gitlab import PIPELINE_URL_XCOM_KEY, GitLabPipelineLink

PIPELINE_XCOM_KEY = "pipeline"


class PdmPipelineFailed(AirflowFailException):
    """The PDM pipeline finished in a state other than success: final, a task retry would not change it."""


class TriggerPdmPipelineOperator(BaseOperator):
    """Creates the PDM pipeline on the worker, once, then waits for it without holding a worker slot.

    Exactly once: before creating, it looks for a pipeline already created for this decision — first in
    the audit store, then in GitLab by the decision-id pipeline variable (covering a create that timed out
    after GitLab accepted it). A retry or a restarted worker therefore resumes polling the same pipeline.
    The intent is recorded in the audit store before the create call: if the store is unreachable, nothing
    is triggered and the task fails with that reason.

    :param environment: environment name from the policy.
    :param policy_path: the policy file.
    :param snapshot_task_id: task whose XCom holds the classified pending snapshot.
    :param poll_seconds: how often the deferred wait polls the pipeline.
    Raises :class:`PdmPipelineFailed` when the pipeline fails or is canceled.
    """

    operator_extra_links = (GitLabPipelineLink(),)
    ui_color = "#d1e7dd"

    def __init__(
        self,
        *,
        environment: str,
        policy_path: str,
        snapshot_task_id: str,
        audit_conn_id: str = "pdm_audit",
        poll_seconds: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.policy_path = policy_path
        self.snapshot_task_id = snapshot_task_id
        self.audit_conn_id = audit_conn_id
        self.poll_seconds = poll_seconds

    def execute(self, context: Any) -> dict[str, Any]:
        from include.decision import decision_id as make_decision_id
        from include.pipelines import PipelineRun
        from include.policy import load_policy
        from pdm_orchestrator.audit_events import record
        from pdm_orchestrator.hooks.gitlab import GitLabHook

        policy = load_policy(self.policy_path).for_environment(self.environment)
        snapshot = context["ti"].xcom_pull(task_ids=self.snapshot_task_id)
        deployed = snapshot["deployed"]
        dag_run = context["dag_run"]
        decision = make_decision_id(dag_run.dag_id, dag_run.run_id, self.environment, deployed["sha"])
        spec = policy.gitlab.pdm_pipeline
        variables = pipeline_variables(spec.variables, self.environment, deployed, decision, snapshot)
        decision_key = _decision_variable(spec.variables)
        hook = GitLabHook(policy.gitlab.conn_id)
        store_kwargs = {"audit_conn_id": self.audit_conn_id, "decision_id": decision}

        pipeline: PipelineRun | None = None
        known = _audit_pipeline(decision, self.audit_conn_id)
        if known:
            pipeline = hook.pipeline(spec.project, int(known["id"]))
            self.log.info("resuming pipeline %s recorded for decision %s", pipeline.id, decision)
        elif decision_key:
            since = datetime.now(UTC) - timedelta(days=2)
            pipeline = hook.find_pipeline_by_variable(
                spec.project, spec.ref, decision_key, variables[decision_key], since
            )
            if pipeline:
                self.log.info("found pipeline %s already created for decision %s", pipeline.id, decision)
        if pipeline is None:
            recheck = self.check_gates_still_open(
                policy, snapshot, dict(context["params"]), datetime.now(UTC)
            )
            record(
                context,
                self.environment,
                "pipeline_requested",
                {
                    "project": spec.project,
                    "ref": spec.ref,
                    "variables": sorted(variables),
                    "gates_rechecked": recheck.to_dict(),
                },
                **store_kwargs,
            )
            if spec.trigger == "trigger_token":
                pipeline = hook.trigger_pipeline_with_token(spec.project, spec.ref, variables)
            else:
                pipeline = hook.create_pipeline(spec.project, spec.ref, variables)
            self.log.info("created pipeline %s: %s", pipeline.id, pipeline.web_url)
        self._remember(context, pipeline)
        if not known:
            record(context, self.environment, "pipeline_created", pipeline.to_dict(), **store_kwargs)
            from pdm_orchestrator.notifications.notifier import notify_started

            notify_started(context, self.environment, policy.notifications, snapshot, pipeline.to_dict())
        if pipeline.finished:
            return self._finish(context, pipeline.to_dict())
        from pdm_orchestrator.triggers.pipeline import PipelineFinishedTrigger

        self.defer(
            trigger=PipelineFinishedTrigger(
                gitlab_conn_id=policy.gitlab.conn_id,
                project=spec.project,
                pipeline_id=pipeline.id,
                poll_seconds=self.poll_seconds,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "finished":
            raise RuntimeError(
                f"lost track of pipeline {event.get('pipeline_id')}: {event.get('message')} "
                "(retrying the task resumes polling the same pipeline)"
            )
        return self._finish(context, event["pipeline"])

    def _remember(self, context: Any, pipeline) -> None:
        context["ti"].xcom_push(key=PIPELINE_URL_XCOM_KEY, value=pipeline.web_url)
        context["ti"].xcom_push(key=PIPELINE_XCOM_KEY, value=pipeline.to_dict())

    def check_gates_still_open(
        self,
        policy: Any,
        snapshot: dict[str, Any],
        params: dict[str, Any],
        now: datetime,
        evaluate: Any = None,
    ) -> Any:
        """Every gate judged again right before the create (overrides still apply).

        The decision's verdicts may be hours old: a retry, or an operator clearing the task, must not create
        the pipeline on traffic, deploy-lock, incident or window verdicts from long ago. Raises
        AirflowFailException naming each closed gate; returns the fresh decision otherwise.
        """
        from include.classification.classes import MigrationClass
        from include.decision import recheck_before_create
        from pdm_orchestrator.params import gate_overrides

        if evaluate is None:
            from pdm_orchestrator.gate_checks import evaluate_gates as evaluate
        overrides = gate_overrides(params)
        cls = MigrationClass.parse(snapshot.get("run_class") or "unknown")
        verdict = recheck_before_create(evaluate(policy, self.environment, cls, now), overrides)
        if not verdict.go:
            raise AirflowFailException(
                f"not creating the PDM pipeline: a gate closed after the decision: {verdict.reason}"
            )
        return verdict

    def _finish(self, context: Any, pipeline: dict[str, Any]) -> dict[str, Any]:
        context["ti"].xcom_push(key=PIPELINE_XCOM_KEY, value=pipeline)
        if pipeline["status"] != "success":
            raise PdmPipelineFailed(
                f"PDM pipeline {pipeline['id']} finished {pipeline['status']}: {pipeline['web_url']}"
            )
        return pipeline


def pipeline_variables(
    templates: dict[str, str],
    environment: str,
    deployed: dict[str, Any],
    decision: str,
    snapshot: dict[str, Any],
) -> dict[str, str]:
    """Fill the policy's variable templates for this decision."""
    versions = " ".join(m["version"] for m in snapshot.get("selected", snapshot.get("migrations", [])))
    values = {
        "environment": environment,
        "sha": deployed.get("sha", ""),
        "package": deployed.get("ref", ""),
        "decision_id": decision,
        "versions": versions,
    }
    return {key: str(template).format(**values) for key, template in templates.items()}


def _decision_variable(templates: dict[str, str]) -> str | None:
    """The variable whose rendered value identifies this decision's pipeline (the policy requires one)."""
    for key, template in templates.items():
        if "{decision_id}" in str(template):
            return key
    return None


def _audit_pipeline(decision: str, audit_conn_id: str) -> dict[str, Any] | None:
    from pdm_orchestrator.hooks.audit import AuditHook

    return AuditHook(audit_conn_id).get_conn().pipeline_for_decision(decision)
