"""The Python steps of a PDM run (discover, classify, record, branch, decide, record the outcome).

Each step is a thin adapter: it gathers inputs from GitLab, XCom and the Airflow context, calls the core
in `include/`, and writes the audit store. The DAG file wraps them as tasks.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.policy.model import Policy

log = logging.getLogger(__name__)

TASK_DISCOVER = "discover_pending"
TASK_CLASSIFY = "classify_pending"
TASK_RECORD_SNAPSHOT = "record_snapshot"
TASK_CHOOSE_PATH = "choose_path"
TASK_WAIT_FOR_GATES = "wait_for_gates"
TASK_DECIDE = "decide"
TASK_TRIGGER = "trigger_pipeline"
TASK_RECORD_OUTCOME = "record_outcome"


class NoDeploymentFound(RuntimeError):
    """GitLab has no successful deployment that pending discovery needs."""


def discover_pending(environment: str, policy_path: str, with_sources: bool = True) -> dict[str, Any]:
    """Post-deploy migration files present at the deployed SHA and absent at the last PDM's SHA.

    Without sources (the re-discovery right before a create) the files carry path and version only."""
    from include.pending import pending_from_compare
    from include.policy import load_policy
    from pdm_orchestrator.hooks.gitlab import GitLabHook

    policy = load_policy(policy_path).for_environment(environment)
    env = policy.environments[environment]
    project = policy.gitlab.application_project
    hook = GitLabHook(policy.gitlab.conn_id)
    deployed = hook.latest_successful_deployment(project, env.deploy_environment)
    if deployed is None:
        raise NoDeploymentFound(
            f"{project}: no successful deployment to environment {env.deploy_environment!r}"
        )
    line = hook.latest_successful_deployment(project, env.db_environment)
    if line is None:
        raise NoDeploymentFound(
            f"{project}: no successful deployment to {env.db_environment!r}: the last PDM run is unknown, "
            "so the pending range cannot be computed (record one, as release tooling does)"
        )
    diffs = hook.compare(project, line.sha, deployed.sha) if line.sha != deployed.sha else []
    files = pending_from_compare(diffs)
    waiting_on: list[str] = []
    if env.after and files:
        # A package's PDMs run on `after` (gstg) first: anything not yet run there waits.
        after_env = policy.environments[env.after]
        after_line = hook.latest_successful_deployment(project, after_env.db_environment)
        not_run_there = (
            {f.path for f in pending_from_compare(hook.compare(project, after_line.sha, deployed.sha))}
            if after_line and after_line.sha != deployed.sha
            else set()
        )
        if after_line is None:
            not_run_there = {f.path for f in files}
        waiting_on = sorted(f.path for f in files if f.path in not_run_there)
    checked = None
    if policy.gitlab.admin_check_databases:
        from include.pending import admin_check_summary
        from pdm_orchestrator.hooks.gitlab import AdminCheckUnavailable

        admin: dict[str, list[str]] = {}
        unavailable: dict[str, str] = {}
        for db in policy.gitlab.admin_check_databases:
            try:
                admin[db] = hook.admin_pending_migrations(db)
            except AdminCheckUnavailable as exc:  # 404: no endpoint or no such database; said, not fatal
                unavailable[db] = str(exc)
                log.warning("admin cross-check unavailable: %s", exc)
        checked = admin_check_summary([f.version for f in files], admin, unavailable)
        if checked["agree"] is False:
            log.warning("pending views disagree: %s", checked)
    return {
        "environment": environment,
        "cross_check": checked,
        "deployed": deployed.to_dict(),
        "rollback_line": line.to_dict(),
        "after": env.after,
        "waiting_on_after": waiting_on,
        "files": [
            {"path": f.path, "version": f.version}
            | (
                {"source_b64": base64.b64encode(hook.raw_file(project, f.path, deployed.sha)).decode()}
                if with_sources
                else {}
            )
            for f in files
        ],
    }


def classify_pending(discovered: dict[str, Any], policy_path: str) -> dict[str, Any]:
    """Classify every pending file; the snapshot keeps results, not sources."""
    from include.classification import ClassifierConfig, classify_source
    from include.decision import run_class
    from include.policy import load_policy

    policy = load_policy(policy_path)
    config = ClassifierConfig(target=policy.target)
    migrations = []
    for item in discovered["files"]:
        result = classify_source(base64.b64decode(item["source_b64"]), item["path"], config=config)
        migrations.append(result.to_dict())
    for version in (discovered.get("cross_check") or {}).get("only_in_admin_api", []):
        # Pending on the instance but not in the git range: no file to read, so it is the strictest class.
        migrations.append(
            {
                "path": f"(admin API) {version}",
                "version": version,
                "name": "",
                "class": "unknown",
                "database": "unknown",
                "milestone": None,
                "operations": [],
                "reasons": ["reported pending by the admin API but not found in the git range"],
                "annotated": False,
                "conflicts": [],
                "table_size": None,
            }
        )
    snapshot = {k: v for k, v in discovered.items() if k != "files"}
    snapshot["migrations"] = migrations
    snapshot["run_class"] = run_class(migrations).value if migrations else None
    snapshot["execution_mode"] = policy.execution_mode
    return snapshot


def select_for_run(
    snapshot: dict[str, Any], policy_path: str, params: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """selected_versions mode: the longest prefix (version order) of pending migrations that passes the run's
    class filter and whose strictest class is allowed now; the run is scheduled for that class."""
    from include.classification.classes import MigrationClass
    from include.decision import run_class, select_versions
    from include.policy import load_policy

    if snapshot.get("execution_mode") != "selected_versions" or not snapshot["migrations"]:
        return snapshot
    policy = load_policy(policy_path).for_environment(snapshot["environment"])
    wanted = set(params.get("class_filter") or [])

    def allowed(cls: MigrationClass) -> bool:
        return policy.class_rule(cls).automatic and policy.window_verdict(cls, now).allowed

    def include(cls: MigrationClass) -> bool:
        return not wanted or cls.value in wanted

    selected = select_versions(snapshot["migrations"], allowed, include)
    result = dict(snapshot)
    result["selected"] = selected
    result["run_class"] = run_class(selected).value if selected else run_class(snapshot["migrations"]).value
    return result


def batch_classes(snapshot: dict[str, Any]) -> list[str] | None:
    """The classes of the migrations this run would execute (selected_versions: the selected prefix);
    None when the snapshot lists no migrations at all (nothing to predict from)."""
    migrations = snapshot.get("selected", snapshot.get("migrations"))
    if migrations is None:
        return None
    return [str(m.get("class") or "unknown") for m in migrations]


def batch_class_counts(snapshot: dict[str, Any]) -> dict[str, int]:
    """batch_classes as class → count, for the audit record."""
    counts: dict[str, int] = {}
    for name in batch_classes(snapshot) or []:
        counts[name] = counts.get(name, 0) + 1
    return counts


def record_snapshot(snapshot: dict[str, Any], context: dict[str, Any]) -> None:
    """The run's start and what is pending, before any decision: fails the run if the store is down."""
    from pdm_orchestrator.audit_events import record

    params = {k: v for k, v in dict(context["params"]).items()}
    record(context, snapshot["environment"], "run_started", {"params": params})
    record(
        context,
        snapshot["environment"],
        "snapshot",
        {
            "deployed": snapshot["deployed"],
            "rollback_line": snapshot["rollback_line"],
            "run_class": snapshot["run_class"],
            # What the run is to execute, by class: the per-batch fact the duration prediction learns from.
            "batch_classes": batch_class_counts(snapshot),
            "migrations": [
                {k: m[k] for k in ("path", "version", "name", "class", "database", "reasons", "annotated")}
                for m in snapshot["migrations"]
            ],
            "waiting_on_after": snapshot.get("waiting_on_after", []),
            "cross_check": snapshot.get("cross_check"),
        },
    )


def choose_path(snapshot: dict[str, Any], policy_path: str, context: dict[str, Any]) -> str:
    """Branch on the run's class: nothing to do, a human must decide, waiting on staging, or the gates."""
    from include.classification.classes import MigrationClass
    from include.decision import NEEDS_HUMAN, WAIT_FOR_GATES
    from include.decision import choose_path as core_choose_path
    from include.policy import load_policy
    from pdm_orchestrator.params import gate_overrides

    overrides = gate_overrides(context["params"])
    migrations = snapshot.get("selected", snapshot["migrations"])
    if snapshot.get("execution_mode") == "selected_versions" and snapshot["migrations"] and not migrations:
        first = min(snapshot["migrations"], key=lambda m: (m.get("version") or "", m.get("path") or ""))
        first_rule = (
            load_policy(policy_path)
            .for_environment(snapshot["environment"])
            .class_rule(MigrationClass.parse(first["class"]))
        )
        if not first_rule.automatic or first_rule.approval_required:
            # No window will ever let it through: say a human is needed, not "waiting for a window".
            path, reason = core_choose_path([first], False)
        else:
            path, reason = (
                "nothing_allowed_now",
                (
                    f"selected_versions: the first pending migration ({first['version']}, {first['class']}) "
                    "is not allowed now, so no prefix can run"
                ),
            )
        context["ti"].xcom_push(key="path", value={"path": path, "reason": reason})
        log.info("path: %s — %s", path, reason)
        return TASK_RECORD_OUTCOME
    if snapshot.get("waiting_on_after"):
        path, reason = (
            "waiting_on_after",
            (
                f"{len(snapshot['waiting_on_after'])} migration(s) have not run on {snapshot['after']} yet: "
                + ", ".join(snapshot["waiting_on_after"][:5])
            ),
        )
    else:
        automatic = True
        if migrations:
            policy = load_policy(policy_path).for_environment(snapshot["environment"])
            rule = policy.class_rule(MigrationClass.parse(snapshot["run_class"]))
            automatic = rule.automatic and not rule.approval_required  # approval: a human's run with a reason
        reason_override = next(iter(overrides.values()), None) if "window" in overrides else None
        path, reason = core_choose_path(migrations, automatic, reason_override)
    context["ti"].xcom_push(key="path", value={"path": path, "reason": reason})
    log.info("path: %s — %s", path, reason)
    # needs_human goes the gates' way too: the approval task in front of them asks a person first.
    return TASK_WAIT_FOR_GATES if path in (WAIT_FOR_GATES, NEEDS_HUMAN) else TASK_RECORD_OUTCOME


def decide(gates: dict[str, Any], environment: str, context: dict[str, Any]) -> str:
    """Trigger only if every gate is open or overridden; record the decision either way."""
    from include.decision import decide as core_decide
    from include.gates.result import GateResult
    from pdm_orchestrator.audit_events import record

    results = [GateResult.from_dict(r) for r in gates["results"]]
    dry_run = bool(context["params"].get("dry_run"))
    decision = core_decide(results, gates.get("overrides") or {}, dry_run=dry_run)
    payload = decision.to_dict()
    if decision.overridden:
        payload["override_user"] = _user(context)
    record(context, environment, "decision", payload)
    context["ti"].xcom_push(key="decision", value=payload)
    log.info("decision: %s", decision.reason)
    return TASK_TRIGGER if decision.go else TASK_RECORD_OUTCOME


def record_outcome(
    environment: str, context: dict[str, Any], policy_path: str | None = None
) -> dict[str, Any]:
    """The run's final outcome, whatever happened upstream; fails the run if the run failed.

    With the policy: a run that waited for a window it was created for (a backfilled or late run) says
    `window_missed`, and the end notice goes to Slack/Grafana when the run had a pipeline.
    """
    from pdm_orchestrator.audit_events import record
    from pdm_orchestrator.operators.pipeline import HALT_XCOM_KEY, PIPELINE_XCOM_KEY

    ti = context["ti"]
    dag_run = context["dag_run"]
    states = _task_states(ti, dag_run)
    path = ti.xcom_pull(task_ids=TASK_CHOOSE_PATH, key="path") or {}
    decision = ti.xcom_pull(task_ids=TASK_DECIDE, key="decision")
    pipeline = ti.xcom_pull(task_ids=TASK_TRIGGER, key=PIPELINE_XCOM_KEY)
    halt = ti.xcom_pull(task_ids=TASK_TRIGGER, key=HALT_XCOM_KEY)
    failed = sorted(t for t, s in states.items() if s.endswith("failed") or s.endswith("upstream_failed"))
    outcome = summarize(path, decision, pipeline, failed, halt, _first_failure(context, failed))
    from include.approval import apply_to_outcome
    from pdm_orchestrator.operators.approval import APPROVAL_XCOM_KEY, TASK_REQUEST_APPROVAL

    outcome = apply_to_outcome(outcome, ti.xcom_pull(task_ids=TASK_REQUEST_APPROVAL, key=APPROVAL_XCOM_KEY))
    outcome["task_states"] = states
    snapshot = ti.xcom_pull(task_ids=TASK_CLASSIFY) or {}
    if outcome["outcome"] == "pipeline_succeeded" and snapshot.get("deployed"):
        # The PDM moved the point of no return: rolling back past this package is now unsafe.
        outcome["rollback_line"] = {
            "from": {k: (snapshot.get("rollback_line") or {}).get(k) for k in ("ref", "sha")},
            "to": {k: snapshot["deployed"].get(k) for k in ("ref", "sha")},
        }
    policy = None
    if policy_path:
        from include.policy import load_policy

        try:
            policy = load_policy(policy_path).for_environment(environment)
        except Exception as exc:  # noqa: BLE001 - the outcome is recorded regardless
            log.warning(
                "policy %s unreadable: outcome recorded without window detail or notices: %s",
                policy_path,
                exc,
            )
    if policy is not None and outcome["outcome"] == "waiting_for_window":
        scheduled = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
        missed = window_missed(policy, snapshot.get("run_class"), scheduled, datetime.now(UTC))
        if missed:
            outcome.update(missed_outcome(missed, outcome["reason"]))
    ti.xcom_push(key="outcome", value=outcome)  # the outcome task and run note show it, even if not stored
    from include.audit import AuditStoreError  # here, not at the top: the DAG file imports this module

    try:
        record(context, environment, "outcome", outcome)
    except AuditStoreError:
        log.error("outcome NOT recorded (kept here and in XCom; retry to record): %s", outcome)
        raise
    release_environment(environment, dag_run, snapshot)
    log.info("outcome: %s — %s", outcome["outcome"], outcome["reason"])
    if policy is not None:
        from pdm_orchestrator.notifications.notifier import notify_ended

        notify_ended(context, environment, policy.notifications, snapshot, outcome)
    if outcome["outcome"] in FAILED_OUTCOMES:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"PDM run ended {outcome['outcome']}: {outcome['reason']}")
    return outcome


# Outcomes that fail the run (an alert): the pipeline failed, was abandoned by a bounded wait, or a human must
# look. environment_busy and decision_void are normal endings: the next run decides again.
FAILED_OUTCOMES = frozenset(
    {"pipeline_failed", "error", "needs_human_in_flight", "pipeline_timeout", "pipeline_parked_manual"}
)


def release_environment(environment: str, dag_run: Any, snapshot: dict[str, Any]) -> None:
    """Give back the environment's lease this run's decision holds (if any), once the outcome is on record."""
    from include.audit.lease import release_lease
    from include.decision import decision_id
    from pdm_orchestrator.hooks.audit import AuditHook

    sha = (snapshot.get("deployed") or {}).get("sha")
    if not sha:
        return
    holder = decision_id(dag_run.dag_id, dag_run.run_id, environment, sha)
    try:
        if release_lease(AuditHook("pdm_audit").get_conn(), environment, holder):
            log.info("released the %s lease of decision %s", environment, holder)
    except Exception as exc:  # noqa: BLE001 - the outcome is recorded; the lease expires on its own
        log.warning("could not release the %s lease (it expires on its own): %s", environment, exc)


def summarize(
    path: dict[str, Any],
    decision: dict[str, Any] | None,
    pipeline: dict[str, Any] | None,
    failed: list[str],
    halt: dict[str, Any] | None = None,
    first_failure: str | None = None,
) -> dict[str, Any]:
    """One outcome word and one line of why, from what the run's tasks left behind.

    `halt` is the trigger task's deliberate stop (environment busy, decision void, create in flight);
    `first_failure` ("task: error" of the earliest failed task) leads the reason of a failed run: the tasks
    that did not run because of it come after, so the message names the real cause first."""
    if halt:
        outcome = "needs_human_in_flight" if halt["outcome"] == "needs_human" else halt["outcome"]
        result = {"outcome": outcome, "reason": halt["reason"]}
        if pipeline:
            result["pipeline"] = pipeline
        return result
    if pipeline:
        if pipeline.get("status") == "success":
            return {
                "outcome": "pipeline_succeeded",
                "reason": f"pipeline {pipeline['id']} succeeded",
                "pipeline": pipeline,
            }
        from include.pipelines import FINISHED_STATUSES  # not at the top: the DAG file imports this module

        if pipeline.get("status") in FINISHED_STATUSES:  # finished, and not success (above)
            return {
                "outcome": "pipeline_failed",
                "reason": f"pipeline {pipeline['id']} {pipeline['status']}",
                "pipeline": pipeline,
            }
        if failed:
            return {
                "outcome": "error",
                "reason": f"lost track of pipeline {pipeline['id']} ({pipeline.get('status')}); failed: {', '.join(failed)}",
                "pipeline": pipeline,
            }
    if failed:
        if first_failure:
            return {"outcome": "error", "reason": f"{first_failure} (not completed: {', '.join(failed)})"}
        return {"outcome": "error", "reason": f"task(s) failed: {', '.join(failed)}"}
    if decision is not None:
        if decision.get("dry_run"):
            return {"outcome": "dry_run", "reason": decision["reason"]}
        if not decision.get("go"):
            window_closed = any(g["gate"] == "window" and not g["open"] for g in decision.get("gates", []))
            kind = "waiting_for_window" if window_closed else "gates_closed"
            return {"outcome": kind, "reason": decision["reason"]}
    name = path.get("path")
    if name == "nothing_pending":
        return {"outcome": "noop", "reason": path["reason"]}
    if name == "needs_human":
        return {"outcome": "needs_human", "reason": path["reason"]}
    if name == "waiting_on_after":
        return {"outcome": "waiting_on_previous_environment", "reason": path["reason"]}
    if name == "nothing_allowed_now":
        return {"outcome": "waiting_for_window", "reason": path["reason"]}
    return {"outcome": "error", "reason": "the run ended without a decision"}


def window_missed(
    policy: Policy, run_class: str | None, scheduled_for: datetime | None, now: datetime
) -> dict[str, Any] | None:
    """The allowed window this run was created for, when it has closed by `now`; else None.

    A run's logical date is the window opening the timetable (or a backfill) created it for. If that instant
    lies in an allowed span of the run's class and the span is over, the run did not wait for a window that
    is still to come: it missed one (the scheduler was down, or the gates stayed closed until it closed).
    """
    from include.classification.classes import MigrationClass

    if scheduled_for is None or not run_class:
        return None
    if scheduled_for.tzinfo is None:
        raise ValueError(f"the run's logical date {scheduled_for.isoformat()} has no time zone")
    cls = MigrationClass.parse(run_class)
    span = policy.next_window(cls, scheduled_for)
    if span is None or not span.contains(scheduled_for) or span.closes_at > now:
        return None
    following = policy.next_window(cls, now)
    return {
        "window": span.window,
        "class": cls.value,
        "scheduled_for": scheduled_for.astimezone(UTC).isoformat(),
        "opened_at": span.opens_at.astimezone(UTC).isoformat(),
        "closed_at": span.closes_at.astimezone(UTC).isoformat(),
        "next_opens_at": following.opens_at.astimezone(UTC).isoformat() if following else None,
        "max_wait_seconds": policy.gates.max_wait.total_seconds(),
    }


def missed_outcome(missed: dict[str, Any], gate_reason: str) -> dict[str, Any]:
    """The outcome fields of a run whose window passed: what closed when, and when the next one opens."""
    following = missed["next_opens_at"] or "no window ahead"
    return {
        "outcome": "window_missed",
        "reason": (
            f"window missed: {missed['window']} ({missed['class']}) opened {missed['opened_at']} and closed "
            f"{missed['closed_at']}, before this run could trigger; the next one opens {following}, beyond "
            f"gates.max_wait ({missed['max_wait_seconds']:.0f} s), so nothing ran ({gate_reason})"
        ),
        "window": missed,
    }


def _first_failure(context: dict[str, Any], failed: list[str]) -> str | None:
    """ "task: error" of the run's earliest recorded task failure (the audit's task_failed events), if any."""
    if not failed:
        return None
    from pdm_orchestrator.hooks.audit import AuditHook

    try:
        events = AuditHook().get_conn().events(run_id=context["dag_run"].run_id, kind="task_failed")
    except Exception as exc:  # noqa: BLE001 - the outcome is recorded with the task names only
        log.warning("could not read the run's task failures: %s", exc)
        return None
    for event in events:
        if event.payload.get("task_id") in failed and event.payload.get("error"):
            return f"{event.payload.get('task_id')} failed: {event.payload['error']}"
    return None


def _task_states(ti: Any, dag_run: Any) -> dict[str, str]:
    """States of the run's other tasks, through the Task SDK (task code may not query the metadata DB)."""
    try:
        found = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id])
    except Exception as exc:  # noqa: BLE001 - the outcome is still recorded from XComs
        log.warning("could not read task states: %s", exc)
        return {}
    states = found.get(dag_run.run_id, found) if isinstance(found, dict) else {}
    return {str(k): str(v) for k, v in states.items() if k != ti.task_id}


def _user(context: dict[str, Any]) -> str:
    return str(getattr(context["dag_run"], "triggering_user_name", None) or "unknown")


def record_failure(context: dict[str, Any]) -> None:
    """on_failure_callback: the failed task and its error go to the audit store (best effort)."""
    from pdm_orchestrator.audit_events import record

    ti = context.get("ti")
    params = context.get("params") or {}
    environment = params.get("environment") or str(
        getattr(context.get("dag"), "dag_id", "unknown")
    ).removeprefix("pdm_")
    error = context.get("exception")
    try:
        record(
            context,
            environment,
            "task_failed",
            {
                "task_id": getattr(ti, "task_id", None),
                "error": f"{type(error).__name__}: {error}" if error else None,
            },
        )
    except Exception as exc:  # noqa: BLE001 - a callback must not mask the task's own failure
        log.error("could not record the failure of %s: %s", getattr(ti, "task_id", "?"), exc)
