"""Operator that triggers the PDM pipeline exactly once per decision and waits for it, deferred."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from pdm_orchestrator.links.gitlab import PIPELINE_URL_XCOM_KEY, GitLabPipelineLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.audit import AuditStore
    from include.audit.lease import Lease
    from include.pipelines import PipelineRun
    from include.policy.model import Policy
    from pdm_orchestrator.hooks.gitlab import GitLabHook

PIPELINE_XCOM_KEY = "pipeline"


HALT_XCOM_KEY = "halt"  # why the trigger task ended without a pipeline of its own (read by record_outcome)


class PdmPipelineFailed(AirflowFailException):
    """The PDM pipeline finished in a state other than success: final, a task retry would not change it."""


class PdmRunHalted(AirflowFailException):
    """The trigger refused to create (stale gates, create in flight not found, a stopped wait): final, a
    retry would not change it; the halt is audited and the outcome says why."""


class TriggerPdmPipelineOperator(BaseOperator):
    """Creates the PDM pipeline on the worker, once, then waits for it without holding a worker slot.

    Exactly once: before creating, it looks for a pipeline already created for this decision — first in
    the audit store, then in GitLab by the decision-id pipeline variable (covering a create that timed out
    after GitLab accepted it). A retry or a restarted worker therefore resumes polling the same pipeline.
    A `pipeline_requested` on record without `pipeline_created` is a create that may be in flight: the
    lookup is repeated for `inflight_lookup_seconds`, then the task stops for a human, never creating again.

    Right before a create (issue 14): the environment's lease is taken in the audit store (one holder across
    every run kind and worker) and GitLab is asked again for a running PDM pipeline of the environment; every
    gate is judged again (overrides still apply); pending migrations are discovered again, and a changed
    deployed SHA or pending set voids the decision (`decision_void`, the next run decides on the new set).
    A second run finds the environment busy and ends `environment_busy`. The intent is recorded in the audit
    store before the create call: if the store is unreachable, nothing is triggered.

    The wait is bounded by `pipeline_timeout` from the pipeline's creation, and `manual_grace` for a pipeline
    parked at a manual job (include/pipeline_wait.py): the run then ends `pipeline_timeout` or
    `pipeline_parked_manual`, audited and failed (an alert), and the pipeline is left for a human.

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
        pipeline_timeout: timedelta = timedelta(hours=8),
        manual_grace: timedelta = timedelta(hours=1),
        inflight_lookup_seconds: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.policy_path = policy_path
        self.snapshot_task_id = snapshot_task_id
        self.audit_conn_id = audit_conn_id
        self.poll_seconds = poll_seconds
        self.pipeline_timeout = pipeline_timeout
        self.manual_grace = manual_grace
        self.inflight_lookup_seconds = inflight_lookup_seconds

    def execute(self, context: Context) -> dict[str, Any]:
        from include.decision import decision_id as make_decision_id
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
        if decision_key is None:  # unreachable: the policy loader refuses a pipeline without one
            raise AirflowFailException("gitlab.pdm_pipeline.variables: no variable carries {decision_id}")
        hook = GitLabHook(policy.gitlab.conn_id)
        store_kwargs = {"audit_conn_id": self.audit_conn_id, "decision_id": decision}
        store = _audit_store(self.audit_conn_id)

        pipeline: PipelineRun | None = None
        known = store.pipeline_for_decision(decision)
        if known:
            pipeline = hook.pipeline(spec.project, int(known["id"]))
            self.log.info("resuming pipeline %s recorded for decision %s", pipeline.id, decision)
        else:
            requested = store.events(decision_id=decision, kind="pipeline_requested")

            def lookup() -> PipelineRun | None:
                since = datetime.now(UTC) - timedelta(days=2)
                return hook.find_pipeline_by_variable(
                    spec.project, spec.ref, decision_key, variables[decision_key], since
                )

            pipeline = lookup() if decision_key else None
            if pipeline is None and requested:
                pipeline = self.find_create_in_flight(lookup, decision)
                if pipeline is None:
                    reason = (
                        f"a create was requested for decision {decision} at {requested[-1].recorded_at} but "
                        f"GitLab shows no pipeline with {decision_key}={variables[decision_key]} after "
                        f"{self.inflight_lookup_seconds:.0f} s: it may still appear, so nothing is created "
                        "again; a human must check the PDM pipelines and start a new run if none exists"
                    )
                    self._halt(context, "needs_human", reason, store_kwargs)
            if pipeline:
                self.log.info("found pipeline %s already created for decision %s", pipeline.id, decision)
        if pipeline is None:
            pipeline = self.create_once(
                context, policy, snapshot, hook, store, decision, variables, store_kwargs
            )
        else:
            self._take_lease(
                store, decision, dag_run.run_id
            )  # renew: the environment is ours until the outcome
        self._remember(context, pipeline)
        if not known:
            record(context, self.environment, "pipeline_created", pipeline.to_dict(), **store_kwargs)
            from pdm_orchestrator.notifications.notifier import notify_started

            notify_started(context, self.environment, policy.notifications, snapshot, pipeline.to_dict())
        if pipeline.finished:
            return self._finish(context, pipeline.to_dict())
        from pdm_orchestrator.triggers.pipeline import PipelineFinishedTrigger

        started = pipeline.created_at or datetime.now(UTC)
        self.defer(
            trigger=PipelineFinishedTrigger(
                gitlab_conn_id=policy.gitlab.conn_id,
                project=spec.project,
                pipeline_id=pipeline.id,
                poll_seconds=self.poll_seconds,
                deadline=(started + self.pipeline_timeout).isoformat(),
                manual_grace_seconds=self.manual_grace.total_seconds(),
            ),
            method_name="execute_complete",
        )

    def create_once(
        self,
        context: Context,
        policy: Policy,
        snapshot: dict[str, Any],
        hook: GitLabHook,
        store: AuditStore,
        decision: str,
        variables: dict[str, str],
        store_kwargs: dict[str, Any],
    ) -> PipelineRun:
        """Lease, running-pipeline check, fresh gates, fresh pending set, intent on record, then the create."""
        from pdm_orchestrator.audit_events import record

        spec = policy.gitlab.pdm_pipeline
        run_id = context["dag_run"].run_id
        lease = self._take_lease(store, decision, run_id)
        if not lease.granted:
            self._halt(context, "environment_busy", lease.describe(), store_kwargs, fail=False)
        try:
            running = self.running_pdm_pipelines(policy, hook)
            if running:
                ids = ", ".join(str(p.id) for p in running)
                self._halt(
                    context,
                    "environment_busy",
                    f"a PDM pipeline is already running on {self.environment}: {ids}",
                    store_kwargs,
                    fail=False,
                )
            params = dict(context["params"])
            try:
                recheck = self.check_gates_still_open(policy, snapshot, params, datetime.now(UTC))
            except AirflowFailException as exc:
                self._halt(context, "gates_closed", str(exc), store_kwargs)
            void = self.check_pending_unchanged(snapshot)
            if void:
                self._halt(context, "decision_void", void, store_kwargs, fail=False)
        except BaseException:
            _release(store, self.environment, decision)
            raise
        record(
            context,
            self.environment,
            "pipeline_requested",
            {
                "project": spec.project,
                "ref": spec.ref,
                "variables": sorted(variables),
                "gates_rechecked": recheck.to_dict(),
                "lease_expires_at": lease.expires_at.isoformat(),
            },
            **store_kwargs,
        )
        if spec.trigger == "trigger_token":
            pipeline = hook.trigger_pipeline_with_token(spec.project, spec.ref, variables)
        else:
            pipeline = hook.create_pipeline(spec.project, spec.ref, variables)
        self.log.info("created pipeline %s: %s", pipeline.id, pipeline.web_url)
        return pipeline

    def running_pdm_pipelines(self, policy: Policy, hook: GitLabHook) -> list[PipelineRun]:
        """PDM pipelines of this environment GitLab reports as not finished (a human's, or a lost run's)."""
        from pdm_orchestrator.gate_checks import _environment_variable

        spec = policy.gitlab.pdm_pipeline
        variable = _environment_variable(spec.variables)
        return hook.active_pipelines(
            spec.project, spec.ref, {variable: self.environment} if variable else None
        )

    def check_pending_unchanged(self, snapshot: dict[str, Any]) -> str | None:
        """Discover again what is pending; the reason the decision is void, or None when it still holds."""
        from include.decision import pending_drift
        from pdm_orchestrator.run_steps import discover_pending

        rediscovered = discover_pending(self.environment, self.policy_path, with_sources=False)
        return pending_drift(snapshot, rediscovered)

    def find_create_in_flight(
        self, lookup: Callable[[], PipelineRun | None], decision: str
    ) -> PipelineRun | None:
        """A create was requested and never recorded as done: GitLab may still be committing it. Look it up
        again for a bounded time; None when it never shows (the caller stops for a human)."""
        import time

        deadline = time.monotonic() + self.inflight_lookup_seconds
        while True:
            found = lookup()
            if found is not None or time.monotonic() >= deadline:
                return found
            self.log.warning("create for decision %s in flight, not visible yet: looking again", decision)
            time.sleep(min(5.0, max(0.5, self.inflight_lookup_seconds / 6)))

    def _take_lease(self, store: AuditStore, decision: str, run_id: str) -> Lease:
        from include.audit.lease import acquire_lease

        ttl = self.pipeline_timeout + timedelta(minutes=30)
        return acquire_lease(store, self.environment, decision, ttl, run_id=run_id)

    def _halt(
        self, context: Context, outcome: str, reason: str, store_kwargs: dict[str, Any], fail: bool = True
    ) -> None:
        """End the task without creating: audited, the outcome and reason in XCom for record_outcome.
        fail=False skips (a normal ending: busy, void); otherwise the task fails at once, without retries."""
        from airflow.sdk.exceptions import AirflowSkipException

        from pdm_orchestrator.audit_events import record

        record(context, self.environment, outcome, {"reason": reason}, **store_kwargs)
        context["ti"].xcom_push(key=HALT_XCOM_KEY, value={"outcome": outcome, "reason": reason})
        self.log.warning("%s: %s", outcome, reason)
        if fail:
            raise PdmRunHalted(f"{outcome}: {reason}")
        raise AirflowSkipException(f"{outcome}: {reason}")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from include.pipeline_wait import OUTCOME_BY_VERDICT, WaitBounds, describe_stop

        status = event.get("status")
        if status in OUTCOME_BY_VERDICT:
            pipeline = event["pipeline"]
            context["ti"].xcom_push(key=PIPELINE_XCOM_KEY, value=pipeline)
            started = datetime.fromisoformat(pipeline["created_at"]) if pipeline.get("created_at") else None
            bounds = WaitBounds(
                deadline=(started or datetime.now(UTC)) + self.pipeline_timeout,
                manual_grace=self.manual_grace,
            )
            snapshot = context["ti"].xcom_pull(task_ids=self.snapshot_task_id) or {}
            from include.decision import decision_id as make_decision_id

            dag_run = context["dag_run"]
            decision = make_decision_id(
                dag_run.dag_id,
                dag_run.run_id,
                self.environment,
                (snapshot.get("deployed") or {}).get("sha", ""),
            )
            self._halt(
                context,
                OUTCOME_BY_VERDICT[status],
                describe_stop(status, pipeline, bounds),
                {"audit_conn_id": self.audit_conn_id, "decision_id": decision},
            )
        if status != "finished":
            raise RuntimeError(
                f"lost track of pipeline {event.get('pipeline_id')}: {event.get('message')} "
                "(retrying the task resumes polling the same pipeline)"
            )
        return self._finish(context, event["pipeline"])

    def _remember(self, context: Context, pipeline: PipelineRun) -> None:
        context["ti"].xcom_push(key=PIPELINE_URL_XCOM_KEY, value=pipeline.web_url)
        context["ti"].xcom_push(key=PIPELINE_XCOM_KEY, value=pipeline.to_dict())

    def check_gates_still_open(
        self,
        policy: Policy,
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
        from pdm_orchestrator.run_steps import batch_classes

        cls = MigrationClass.parse(snapshot.get("run_class") or "unknown")
        results = evaluate(policy, self.environment, cls, now, batch=batch_classes(snapshot))
        verdict = recheck_before_create(results, overrides)
        if not verdict.go:
            raise AirflowFailException(
                f"not creating the PDM pipeline: a gate closed after the decision: {verdict.reason}"
            )
        return verdict

    def _finish(self, context: Context, pipeline: dict[str, Any]) -> dict[str, Any]:
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
    """Fill the policy's variable templates for this decision.

    `{versions}` lists only versions classified in this snapshot (the selected prefix in selected_versions
    mode); a selected entry without a classified version raises ValueError rather than being passed on."""
    from include.decision import classified_versions

    versions = " ".join(classified_versions(snapshot))
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
    from include.policy.loader import template_fields

    for key, template in templates.items():
        if "decision_id" in template_fields(str(template)):  # `{{decision_id}}` is literal text, not the id
            return key
    return None


def _audit_store(audit_conn_id: str) -> AuditStore:
    from pdm_orchestrator.hooks.audit import AuditHook

    return AuditHook(audit_conn_id).get_conn()


def _release(store: AuditStore, environment: str, decision: str) -> None:
    """Give the environment back (best effort: an unreleased lease only expires later)."""
    from include.audit.lease import release_lease

    try:
        release_lease(store, environment, decision)
    except Exception:  # noqa: BLE001 - the original error matters; the lease expires on its own
        pass
