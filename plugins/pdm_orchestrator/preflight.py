"""`python -m pdm_orchestrator.preflight [--environment ENV] [--policy FILE]`: can the bot do its job?

Asks the configured GitLab and Prometheus (the policy's Airflow connections) what the product will need:
reachability, token validity and scopes, the bot's role in every project the policy names, pipelines with
variables, the variables it reads, confidential incidents, the admin endpoint (if configured), and fresh data
from the traffic and health queries. One line per check, `ok` or `PROBLEM … — fix: …`; exit 1 on any problem.
Nothing is created: the pipeline-variables probe asks for a ref that does not exist (GitLab checks the
variables permission first, then refuses the ref).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.preflight import (
    DEVELOPER,
    MAINTAINER,
    REPORTER,
    Check,
    exit_code,
    needs,
    render,
    role_check,
    role_name,
    variables_setting_check,
)

if TYPE_CHECKING:
    from include.policy.model import Policy
    from pdm_orchestrator.hooks.gitlab import GitLabHook
    from pdm_orchestrator.hooks.prometheus import PrometheusHook

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"
PROBE_REF = "pdm-preflight-probe-no-such-ref"


def gitlab_checks(policy: Policy, hook: GitLabHook | None = None) -> list[Check]:
    """Every GitLab check, in order; stops after the first that makes the rest meaningless."""
    import gitlab.exceptions

    from pdm_orchestrator.hooks.gitlab import GitLabError, GitLabHook, json_object

    hook = hook or GitLabHook(policy.gitlab.conn_id)
    checks: list[Check] = []
    conn = f"connection {policy.gitlab.conn_id!r}"
    try:
        version = json_object(hook.get_conn().http_get("/version"))
        checks.append(
            Check("gitlab reachable", True, f"GitLab {version.get('version')} at {hook.get_conn().url}")
        )
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        status = getattr(exc, "response_code", None)
        if status != 401:
            return [Check("gitlab reachable", False, _short(exc), f"check the host of {conn}")]
    try:
        me = hook.current_user()
    except GitLabError as exc:
        return [*checks, Check("gitlab token", False, _short(exc), f"put a valid token of the bot in {conn}")]
    checks.append(
        Check(
            "gitlab token",
            True,
            f"token of {me.get('username')}" + (" (admin)" if me.get("is_admin") else ""),
        )
    )
    checks.append(_scopes_check(hook, policy))
    levels: dict[str, int] = {}
    for need in needs(policy):
        try:
            levels[need.project] = hook.access_level(need.project)
        except GitLabError as exc:
            levels[need.project] = 0
            if "404" not in str(exc):
                checks.append(Check(f"role in {need.project}", False, _short(exc), "see the error"))
                continue
        checks.append(role_check(need, levels[need.project]))
    checks.append(_variables_create_check(hook, policy, levels))
    checks += _variables_read_checks(policy, levels)
    for project in policy.gates.rollback.incident_projects:
        ok = levels.get(project, 0) >= REPORTER
        checks.append(
            Check(
                f"confidential incidents in {project}",
                ok,
                "visible (Reporter or more)"
                if ok
                else f"invisible to the bot ({role_name(levels.get(project, 0))}): "
                "the rollback gate stays closed, as 'no incident' cannot be known",
                "" if ok else f"give the bot Reporter in {project}",
            )
        )
    for database in policy.gitlab.admin_check_databases:
        checks.append(_admin_check(hook, database, gitlab.exceptions))
    return checks


def _scopes_check(hook: GitLabHook, policy: Policy) -> Check:
    from pdm_orchestrator.hooks.gitlab import json_object

    needed = "read_api" if policy.gitlab.pdm_pipeline.trigger == "trigger_token" else "api"
    try:
        token = json_object(hook.get_conn().http_get("/personal_access_tokens/self"))
        scopes = set(token.get("scopes") or [])
    except Exception as exc:  # noqa: BLE001 - older GitLab, or not a personal/project/group token
        return Check(
            "gitlab token scopes",
            True,
            f"not readable ({_short(exc, 80)}); the role checks below still apply",
        )
    if needed in scopes or "api" in scopes:
        return Check("gitlab token scopes", True, f"{', '.join(sorted(scopes))} (needs {needed})")
    return Check(
        "gitlab token scopes",
        False,
        f"{', '.join(sorted(scopes)) or 'none'}: the PDM pipeline cannot be created without `{needed}`",
        f"create the bot's token with the `{needed}` scope",
    )


def _variables_create_check(hook: GitLabHook, policy: Policy, levels: dict[str, int]) -> Check:
    """May the bot create the PDM pipeline with its variables? The setting when visible, else a probe."""
    from pdm_orchestrator.hooks.gitlab import json_object

    project = policy.gitlab.pdm_pipeline.project
    if policy.gitlab.pdm_pipeline.trigger == "trigger_token":
        return Check(
            f"pipeline variables in {project}",
            True,
            "created with the trigger token (its owner's role applies)",
        )
    try:
        data = json_object(hook.get_conn().http_get(f"/projects/{_quoted(project)}"))
    except Exception as exc:  # noqa: BLE001
        return Check(f"pipeline variables in {project}", False, _short(exc), "see the error")
    known = variables_setting_check(
        project, data.get("ci_pipeline_variables_minimum_override_role"), levels.get(project, 0)
    )
    if known is not None:
        return known
    try:  # ref that does not exist: nothing is created either way
        hook.get_conn().http_post(
            f"/projects/{_quoted(project)}/pipeline",
            post_data={"ref": PROBE_REF, "variables": [{"key": "PDM_PREFLIGHT", "value": "1"}]},
        )
        return Check(
            f"pipeline variables in {project}", True, "probe accepted (unexpected, but variables are allowed)"
        )
    except Exception as exc:  # noqa: BLE001
        text = str(getattr(exc, "error_message", exc))
        if "Insufficient permissions to set pipeline variables" in text:
            return variables_setting_check(project, "no_one_allowed", levels.get(project, 0)) or Check(
                f"pipeline variables in {project}", False, text
            )
        if "Reference not found" in text or "reference" in text.lower():
            return Check(
                f"pipeline variables in {project}", True, "the bot may create pipelines with variables"
            )
        return Check(f"pipeline variables in {project}", False, _short(exc), "see the error")


def _variables_read_checks(policy: Policy, levels: dict[str, int]) -> list[Check]:
    project = policy.gitlab.pdm_pipeline.project
    level = levels.get(project, 0)
    checks = [
        Check(
            f"pipeline variables readable in {project}",
            level >= DEVELOPER,
            f"the bot reads only its own pipelines' variables (exactly-once lookup): {role_name(level)}",
            "" if level >= DEVELOPER else f"give the bot Developer in {project}",
        )
    ]
    for spec in policy.gates.deploy_lock.deploy_pipelines:
        if not spec.variables:
            continue
        level = levels.get(spec.project, 0)
        detail = (
            "precise: the bot may read every pipeline's variables (Maintainer)"
            if level >= MAINTAINER
            else f"{role_name(level)}: running pipelines of other users count as holding (their variables are "
            "Maintainer-only); give Maintainer for a precise check"
        )
        checks.append(Check(f"deploy pipelines of {spec.project}", level >= REPORTER, detail,
                            "" if level >= REPORTER else f"give the bot Reporter in {spec.project}"))  # fmt: skip
    return checks


def _admin_check(hook: GitLabHook, database: str, errors: Any) -> Check:
    name = f"admin pending migrations ({database})"
    try:
        hook.admin_pending_migrations(database)
        return Check(name, True, "readable")
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        if "HTTP 403" in text:
            fix = "use an administrator's token with admin mode on, or remove gitlab.admin_check_databases"
            return Check(
                name, False, "refused: the token is not an administrator's, or admin mode is off", fix
            )
        fix = "remove this database from gitlab.admin_check_databases (or upgrade GitLab)"
        return Check(name, False, _short(text, 240), fix)


def prometheus_checks(policy: Policy, environments: list[str], now: datetime | None = None) -> list[Check]:
    """Prometheus reachable, and every traffic and health query returns data now (i.e. fresh samples)."""
    from pdm_orchestrator.hooks.prometheus import PrometheusHook

    now = now or datetime.now(UTC)
    hook = PrometheusHook(policy.prometheus_conn_id)
    try:
        hook.query("vector(1)", now)
    except Exception as exc:  # noqa: BLE001
        fix = f"check connection {policy.prometheus_conn_id!r}"
        return [Check("prometheus reachable", False, _short(exc), fix)]
    checks = [Check("prometheus reachable", True, f"connection {policy.prometheus_conn_id!r}")]
    for environment in environments:
        env_policy = policy.for_environment(environment)
        queries: list[tuple[str, str | None]] = [("traffic", env_policy.gates.traffic.query)]
        health = env_policy.gates.rollback.health
        if health is not None:
            queries += [("apdex", health.apdex_query), ("error ratio", health.error_ratio_query)]
        for label, query in queries:
            if query:
                checks.append(
                    _fresh(
                        hook,
                        f"{label} query ({environment})",
                        query.replace("{environment}", environment),
                        now,
                    )
                )
    return checks


def _fresh(hook: PrometheusHook, name: str, query: str, now: datetime) -> Check:
    try:
        rows = hook.query(query, now)
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, _short(exc), "fix the query in the policy or the Prometheus connection")
    if not rows:
        return Check(name, False, f"{query} returns no data now (no sample in Prometheus' lookback)",
                     "check the metric is scraped and the query's labels")  # fmt: skip
    return Check(name, True, f"{len(rows)} series, e.g. {rows[0][1]:.4g}")


def run(policy_path: str, environment: str | None = None, *, write: Callable[[str], Any] = print) -> int:
    from include.policy import load_policy

    policy = load_policy(policy_path)
    export_connections([policy.gitlab.conn_id, policy.prometheus_conn_id])
    environments = [environment] if environment else list(policy.environments)
    if environment:
        policy.for_environment(environment)  # an unknown name fails here, naming the known ones
    checks = gitlab_checks(policy) + prometheus_checks(policy, environments)
    write(render(checks))
    return exit_code(checks)


def export_connections(conn_ids: list[str]) -> None:
    """Outside a task, Airflow 3's hooks do not read connections from the metadata database: copy the ones
    the checks need into this process's environment (AIRFLOW_CONN_<ID>, never printed). Connections already
    in the environment win; one that cannot be found is left for its check to report."""
    for conn_id in conn_ids:
        key = f"AIRFLOW_CONN_{conn_id.upper()}"
        if os.environ.get(key):
            continue
        try:
            from airflow.models.connection import Connection

            os.environ[key] = Connection.get_connection_from_secrets(conn_id).as_json()
        except Exception:  # noqa: BLE001 - the GitLab or Prometheus check says what is missing
            continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pdm_orchestrator.preflight", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--environment", help="check only this environment's queries (default: all)")
    parser.add_argument("--policy", default=os.environ.get("PDM_POLICY_FILE", str(DEFAULT_POLICY)))
    args = parser.parse_args(argv)
    try:
        return run(args.policy, args.environment)
    except Exception as exc:  # noqa: BLE001 - a policy that cannot load is a problem line too
        print(f"PROBLEM  policy: {_short(exc, 300)}")
        return 1


def _quoted(project: str) -> str:
    from urllib.parse import quote

    return quote(str(project), safe="")


def _short(exc: object, limit: int = 200) -> str:
    return str(exc).replace("\n", " ")[:limit]


if __name__ == "__main__":
    sys.exit(main())
