"""The sandbox GitLab's world: projects, commits, deployments, pipelines and issues, evolving over time.

Built from a scenario (YAML, see docs/sandbox.md). Times in a scenario may be ISO-8601 or relative to the
world's start ("-3h", "-90m", "+2d", "now"); times given later (control API) are relative to the sandbox
clock at that moment. The world has its own clock, which tests advance instead of sleeping. Thread-safe:
every read or change of shared state happens under `lock`.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.isotime import parse_iso_instant
from include.sandbox.gitlab_repository import changed_files, tree_entries, truncate

_RELATIVE = re.compile(r"^([+-])(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

DEPLOYMENT_STATUSES = ("created", "running", "success", "failed", "canceled", "skipped", "blocked")
FINISHED_DEPLOYMENT_STATUSES = ("success", "failed", "canceled", "skipped")
# GitLab's own sets (include/sandbox/gitlab_api.yaml, statuses), canceling and waiting_for_callback included.
PIPELINE_STATUSES = (
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
FINISHED_PIPELINE_STATUSES = ("success", "failed", "canceled", "skipped")
PIPELINE_RESULTS = ("success", "failed", "canceled")
DEPLOYMENT_CREATORS = ("api", "ci")  # through POST /deployments (deployable null) or by a CI job
BOT_USERNAME = "sandbox-bot"
# Diff limits of a fresh GitLab (application settings diff_max_files, diff_max_lines); bytes = files * 5 KB.
DEFAULT_DIFF_LIMITS = {"max_files": 1000, "max_lines": 50000}


class ScenarioError(ValueError):
    """A scenario that cannot describe a world; the message names the key at fault."""


class NotFound(LookupError):
    """A resource the request names does not exist (answered 404 with GitLab's message)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def iso(moment: datetime | None) -> str | None:
    """GitLab's timestamp format: ISO-8601 in UTC with milliseconds and Z."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_moment(value: Any, base: datetime, place: str = "time") -> datetime | None:
    """A scenario time: a datetime, ISO-8601 text, "now", or an offset from `base` such as "-3h"."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text == "now":
        return base
    match = _RELATIVE.match(text)
    if match:
        delta = timedelta(seconds=float(match.group(2)) * _UNIT_SECONDS[match.group(3)])
        return base + delta if match.group(1) == "+" else base - delta
    try:
        return parse_iso_instant(text)
    except ValueError:
        raise ScenarioError(
            f"{place}: {text!r} is neither ISO-8601 nor a relative time like '-3h', '+2d', 'now'"
        ) from None


@dataclass
class Project:
    """One GitLab project of the scenario and everything recorded in it."""

    id: int
    path: str
    default_branch: str = "master"
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)  # sha -> commit, see add_commit
    deployments: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    behaviour: dict[str, Any] = field(default_factory=dict)
    trigger_tokens: list[str] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag name -> sha ("" when not modelled)
    # ci_pipeline_variables_minimum_override_role: developer | maintainer | owner | no_one_allowed
    variables_minimum_role: str = "developer"

    def head(self) -> dict[str, Any] | None:
        """The newest commit: what the default branch points at."""
        return max(self.commits.values(), key=lambda c: c["order"]) if self.commits else None


class GitLabWorld:
    """Everything the sandbox serves, with the progression of pipelines over (sandbox) time."""

    def __init__(self, scenario: dict[str, Any], now: datetime | None = None) -> None:
        if not isinstance(scenario, dict):
            raise ScenarioError("scenario: the top level must be a mapping with a `projects` list")
        self.lock = threading.RLock()
        self.started = now or datetime.now(UTC)
        self._real_start = datetime.now(UTC)
        self.offset = timedelta(0)
        self._building = True
        self.scenario = copy.deepcopy(scenario)
        self.projects: dict[int, Project] = {}
        self.ids = {"deployment": 1000, "pipeline": 5000, "issue": 100, "environment": 10, "user": 1}
        self.users: dict[str, int] = {BOT_USERNAME: 1}  # username -> id; the admin token's user is id 1
        limits = scenario.get("diff_limits") or {}
        self.diff_limits = {k: int(limits.get(k, v)) for k, v in DEFAULT_DIFF_LIMITS.items()}
        # False: an instance older than GET /admin/migrations/pending (404 there)
        self.admin_migrations_endpoint = bool(scenario.get("admin_migrations_endpoint", True))
        self.environment_ids: dict[tuple[int, str], int] = {}
        self.admin_pending: dict[str, list[int]] = {}
        self.admin_names: dict[int, str] = {}  # version -> migration name, for the admin API's items
        for database, versions in (scenario.get("admin_pending_migrations") or {}).items():
            try:
                items = [v if isinstance(v, dict) else {"version": v} for v in versions or []]
                self.admin_pending[str(database)] = [int(v["version"]) for v in items]
                self.admin_names.update({int(v["version"]): str(v["name"]) for v in items if v.get("name")})
            except (TypeError, ValueError):
                raise ScenarioError(
                    f"admin_pending_migrations.{database}: versions must be integers like 20261120000000"
                ) from None
        self.created_pipelines: dict[int, list[int]] = {}
        self.requests: dict[str, int] = {}
        self.notes: list[
            str
        ] = []  # things the world could not do (e.g. a deployment record missing a variable)
        projects = scenario.get("projects") or []
        if not isinstance(projects, list):
            raise ScenarioError("projects: must be a list of projects")
        for index, spec in enumerate(projects):
            self._add_project(spec, f"projects[{index}]")
        self._building = False

    # -- clock --------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """Sandbox time: `started` plus real time elapsed plus every advance."""
        return self.started + (datetime.now(UTC) - self._real_start) + self.offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += timedelta(seconds=seconds)

    def when(self, value: Any, place: str = "time") -> datetime | None:
        """A scenario time; relative times count from the start while building, from now afterwards."""
        return parse_moment(value, self.started if self._building else self.now(), place)

    # -- building -----------------------------------------------------------------------------------
    def _add_project(self, spec: Any, place: str) -> Project:
        if not isinstance(spec, dict):
            raise ScenarioError(f"{place}: must be a mapping")
        for key in ("id", "path_with_namespace"):
            if not spec.get(key):
                raise ScenarioError(f"{place}.{key}: missing")
        try:
            project_id = int(spec["id"])
        except (TypeError, ValueError):
            raise ScenarioError(f"{place}.id: {spec['id']!r} is not a number") from None
        if project_id in self.projects:
            raise ScenarioError(f"{place}.id: {project_id} is used by another project")
        behaviour = dict(spec.get("pipeline_behaviour") or {})
        self.check_behaviour(behaviour, f"{place}.pipeline_behaviour")
        minimum = str(spec.get("pipeline_variables_minimum_role") or "developer")
        if minimum not in ("developer", "maintainer", "owner", "no_one_allowed"):
            raise ScenarioError(
                f"{place}.pipeline_variables_minimum_role: {minimum!r} is not developer, maintainer, owner "
                "or no_one_allowed"
            )
        project = Project(
            id=project_id,
            path=str(spec["path_with_namespace"]).strip("/"),
            default_branch=str(spec.get("default_branch") or "master"),
            behaviour=behaviour,
            trigger_tokens=[str(t) for t in spec.get("trigger_tokens") or []],
            refs={str(k): str(v or "") for k, v in (spec.get("refs") or {}).items()},
            variables_minimum_role=minimum,
        )
        self.projects[project.id] = project
        commits = spec.get("commits") or []
        for order, commit in enumerate(commits):
            self.add_commit(project, commit, order, place=f"{place}.commits[{order}]", total=len(commits))
        for index, deployment in enumerate(spec.get("deployments") or []):
            self.add_deployment(project, deployment, place=f"{place}.deployments[{index}]")
        for index, pipeline in enumerate(spec.get("pipelines") or []):
            self.add_pipeline(project, pipeline, created_via_api=False, place=f"{place}.pipelines[{index}]")
        for index, issue in enumerate(spec.get("issues") or []):
            self.add_issue(project, issue, place=f"{place}.issues[{index}]")
        return project

    @staticmethod
    def check_behaviour(behaviour: dict[str, Any], place: str) -> None:
        """Refuse a pipeline behaviour up front, naming the key: a typo would otherwise surface later as
        a pipeline that never finishes the way the test expects."""
        result = behaviour.get("result", "success")
        if result not in PIPELINE_RESULTS:
            raise ScenarioError(f"{place}.result: {result!r} is not one of {', '.join(PIPELINE_RESULTS)}")
        for key in ("pending_seconds", "running_seconds", "canceling_seconds"):
            if key in behaviour:
                try:
                    if float(behaviour[key]) < 0:
                        raise ValueError
                except (TypeError, ValueError):
                    raise ScenarioError(f"{place}.{key}: {behaviour[key]!r} is not a number ≥ 0") from None
        record = behaviour.get("record_db_deployment")
        if record is not None and (not isinstance(record, dict) or "environment" not in record):
            raise ScenarioError(f"{place}.record_db_deployment: needs at least `environment`")

    def add_commit(
        self,
        project: Project,
        spec: dict[str, Any],
        order: int | None = None,
        *,
        place: str = "commit",
        total: int | None = None,
    ) -> dict[str, Any]:
        """A repository snapshot: `files`, or `files_from` another commit plus add/delete/rename."""
        with self.lock:
            sha = str(spec.get("sha") or "")
            if not re.fullmatch(r"[0-9a-f]{7,40}", sha):
                raise ScenarioError(f"{place}.sha: {sha!r} is not a hexadecimal commit sha")
            files: dict[str, str] = {}
            if spec.get("files_from"):
                try:
                    files.update(self.commit(project, str(spec["files_from"]))["files"])
                except NotFound:
                    raise ScenarioError(
                        f"{place}.files_from: no earlier commit {spec['files_from']} in {project.path}"
                    ) from None
            files.update({str(k): str(v) for k, v in (spec.get("files") or {}).items()})
            files.update({str(k): str(v) for k, v in (spec.get("add") or {}).items()})
            for path in spec.get("delete") or []:
                if str(path) not in files:
                    raise ScenarioError(f"{place}.delete: {path} is not in the commit's files")
                files.pop(str(path))
            for old, new in (spec.get("rename") or {}).items():
                if str(old) not in files:
                    raise ScenarioError(f"{place}.rename: {old} is not in the commit's files")
                files[str(new)] = files.pop(str(old))
            order = order if order is not None else len(project.commits)
            default_time = (
                self.started - timedelta(hours=(total or 0) - order) if self._building else self.now()
            )
            commit = {
                "sha": sha,
                "message": str(spec.get("message") or f"Commit {sha[:8]}"),
                "files": files,
                "created_at": self.when(spec.get("created_at"), f"{place}.created_at") or default_time,
                "order": order,
            }
            project.commits[sha] = commit
            return commit

    def add_deployment(
        self, project: Project, spec: dict[str, Any], *, place: str = "deployment"
    ) -> dict[str, Any]:
        """A deployment record; a finished status without `finished_at` finishes when it was created."""
        with self.lock:
            if not spec.get("environment"):
                raise ScenarioError(f"{place}.environment: missing")
            status = str(spec.get("status") or "success")
            if status not in DEPLOYMENT_STATUSES:
                raise ScenarioError(
                    f"{place}.status: {status!r} is not one of {', '.join(DEPLOYMENT_STATUSES)}"
                )
            self.ids["deployment"] += 1
            created = self.when(spec.get("created_at"), f"{place}.created_at") or self.now()
            finished = self.when(spec.get("finished_at"), f"{place}.finished_at")
            if finished is None and status in FINISHED_DEPLOYMENT_STATUSES:
                finished = created
            if status not in FINISHED_DEPLOYMENT_STATUSES:
                finished = None
            creator = str(spec.get("created_by") or ("ci" if spec.get("pipeline_id") else "api"))
            if creator not in DEPLOYMENT_CREATORS:
                raise ScenarioError(f"{place}.created_by: {creator!r} is not api or ci")
            deployment_id = int(spec.get("id") or self.ids["deployment"])
            ref = str(spec.get("ref") or project.default_branch)
            sha = str(spec.get("sha") or "")
            environment = str(spec["environment"])
            user = str(spec.get("user") or BOT_USERNAME)
            deployment = {
                "id": deployment_id,
                "iid": len(project.deployments) + 1,
                "ref": ref,
                "sha": sha,
                "tag": bool(spec.get("tag", False)),
                "environment": environment,
                "status": status,
                "created_at": created,
                "updated_at": finished or created,
                "finished_at": finished,
                "pipeline_id": spec.get("pipeline_id"),
                "created_by": creator,
                "user": user,
            }
            # GitLab only accepted the deployment if its ref existed: it is a ref of the project from now on.
            project.refs.setdefault(ref, sha)
            self.user_id(user)
            self.environment_id(project, environment)
            project.deployments.append(deployment)
            return deployment

    def set_deployment_status(self, deployment: dict[str, Any], status: str) -> None:
        """Move a deployment, as release tooling does with PUT /deployments/:id."""
        with self.lock:
            if status not in DEPLOYMENT_STATUSES:
                raise ValueError(f"status: {status!r} is not one of {', '.join(DEPLOYMENT_STATUSES)}")
            now = self.now()
            deployment["status"] = status
            deployment["updated_at"] = now
            deployment["finished_at"] = now if status in FINISHED_DEPLOYMENT_STATUSES else None
            deployment.pop("follows_pipeline", None)  # an explicit status wins over the pipeline's

    def add_pipeline(
        self, project: Project, spec: dict[str, Any], *, created_via_api: bool, place: str = "pipeline"
    ) -> dict[str, Any]:
        """A pipeline: scenario ones keep their status; API-created ones progress by `pipeline_behaviour`."""
        with self.lock:
            behaviour = {**project.behaviour, **(spec.get("behaviour") or {})}
            self.check_behaviour(behaviour, f"{place}.behaviour")
            status = str(spec.get("status") or "success")
            if not created_via_api and status not in PIPELINE_STATUSES:
                raise ScenarioError(
                    f"{place}.status: {status!r} is not one of {', '.join(PIPELINE_STATUSES)}"
                )
            self.ids["pipeline"] += 1
            variables = spec.get("variables") or {}
            if isinstance(variables, list):
                variables = {str(v["key"]): str(v.get("value", "")) for v in variables}
            created = self.when(spec.get("created_at"), f"{place}.created_at") or self.now()
            ref = str(spec.get("ref") or project.default_branch)
            head = project.head()
            pipeline_id = int(spec.get("id") or self.ids["pipeline"])
            user = str(spec.get("user") or BOT_USERNAME)
            pipeline = {
                "id": pipeline_id,
                "iid": len(project.pipelines) + 1,
                "project_id": project.id,
                "ref": ref,
                "sha": str(spec.get("sha") or (head["sha"] if head else _fake_sha(project.path, ref))),
                "source": str(spec.get("source") or ("api" if created_via_api else "push")),
                "variables": {str(k): str(v) for k, v in variables.items()},
                "created_at": created,
                "run_from": created,  # moved by a retry
                "fixed_status": None if created_via_api else status,
                "started_at": self.when(spec.get("started_at"), f"{place}.started_at"),
                "finished_at": self.when(spec.get("finished_at"), f"{place}.finished_at"),
                "pending_seconds": float(behaviour.get("pending_seconds", 1)),
                "running_seconds": float(behaviour.get("running_seconds", 3)),
                "result": str(behaviour.get("result", "success")),
                "record": behaviour.get("record_db_deployment") if created_via_api else None,
                "canceled_at": None,
                "canceling_seconds": float(behaviour.get("canceling_seconds", 1)),
                "deployment_id": None,
                "user": user,
            }
            self.user_id(user)
            project.pipelines.append(pipeline)
            if created_via_api:
                self.created_pipelines.setdefault(project.id, []).append(pipeline_id)
                self._record_deployment(project, pipeline)
            return pipeline

    def add_issue(self, project: Project, spec: dict[str, Any], *, place: str = "issue") -> dict[str, Any]:
        """An incident or change request; gates read its labels and state."""
        with self.lock:
            state = str(spec.get("state") or "opened")
            if state not in ("opened", "closed"):
                raise ScenarioError(f"{place}.state: {state!r} is not opened or closed")
            self.ids["issue"] += 1
            created = self.when(spec.get("created_at"), f"{place}.created_at") or self.now()
            author = str(spec.get("author") or BOT_USERNAME)
            issue = {
                "id": self.ids["issue"],
                "iid": int(spec.get("iid") or max([i["iid"] for i in project.issues] + [0]) + 1),
                "project_id": project.id,
                "title": str(spec.get("title") or "issue"),
                "description": str(spec.get("description") or ""),
                "labels": [str(label) for label in spec.get("labels") or []],
                "state": state,
                "created_at": created,
                "updated_at": self.when(spec.get("updated_at"), f"{place}.updated_at") or created,
                "closed_at": created if state == "closed" else None,
                "confidential": bool(spec.get("confidential", False)),
                "author": author,
            }
            self.user_id(author)
            project.issues.append(issue)
            return issue

    def close_issue(self, issue: dict[str, Any]) -> None:
        with self.lock:
            issue["state"] = "closed"
            issue["updated_at"] = issue["closed_at"] = self.now()

    # -- lookups ------------------------------------------------------------------------------------
    def project(self, ident: str | int) -> Project:
        """By numeric id or `path_with_namespace`, as GitLab's `:id` accepts."""
        text = str(ident)
        if text.isdigit() and int(text) in self.projects:
            return self.projects[int(text)]
        for project in self.projects.values():
            if project.path == text:
                return project
        raise NotFound("404 Project Not Found")

    def commit(self, project: Project, ref: str) -> dict[str, Any]:
        """A commit by full or short (≥ 7) sha; the default branch name means the newest commit."""
        if ref in project.commits:
            return project.commits[ref]
        if ref in (project.default_branch, "HEAD") and project.commits:
            return project.head()  # type: ignore[return-value]
        matches = [c for s, c in project.commits.items() if len(ref) >= 7 and s.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound("404 Commit Not Found")

    def compare(self, project: Project, from_ref: str, to_ref: str, straight: bool) -> dict[str, Any]:
        """What GitLab's compare answers. Not straight means from the merge base (`from...to`): history
        here is linear, so the merge base is the older commit, and comparing backwards shows nothing."""
        old, new = self.commit(project, from_ref), self.commit(project, to_ref)
        base = old if straight or old["order"] <= new["order"] else new
        ordered = sorted(project.commits.values(), key=lambda c: c["order"])
        commits = [c for c in ordered if base["order"] < c["order"] <= new["order"]]
        return {
            "from": old,
            "to": new,
            "commits": commits,
            "diffs": changed_files(base["files"], new["files"]),
            "same": old["sha"] == new["sha"],
        }

    def user_id(self, username: str) -> int:
        """A stable id per username (the admin token's user is 1)."""
        with self.lock:
            if username not in self.users:
                self.ids["user"] += 1
                self.users[username] = self.ids["user"]
            return self.users[username]

    def tree(self, project: Project, ref: str, path: str) -> list[dict[str, Any]]:
        """GET …/repository/tree: the entries directly under `path` at `ref` (see gitlab_repository.tree)."""
        try:
            files = self.commit(project, ref)["files"]
        except NotFound:
            raise NotFound("404 Tree Not Found") from None
        entries = tree_entries(files, path)
        if entries is None:
            raise NotFound("404 Tree Not Found")
        return entries

    def truncate_diffs(self, diffs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        """GitLab's diff limits applied to a compare (see gitlab_repository.truncate)."""
        return truncate(diffs, self.diff_limits["max_files"], self.diff_limits["max_lines"])

    def environment_id(self, project: Project, name: str) -> int:
        with self.lock:
            key = (project.id, name)
            if key not in self.environment_ids:
                self.ids["environment"] += 1
                self.environment_ids[key] = self.ids["environment"]
            return self.environment_ids[key]

    def environments(self, project: Project) -> list[tuple[int, str]]:
        return sorted((i, name) for (pid, name), i in self.environment_ids.items() if pid == project.id)

    # -- pipeline progression -------------------------------------------------------------------------
    def pipeline_state(self, pipeline: dict[str, Any]) -> dict[str, Any]:
        """Status and timings now: pending → running → result, by elapsed sandbox time since (re)start.
        A cancel goes through `canceling` (GitLab runs after_script meanwhile) for `canceling_seconds`."""
        canceled = pipeline["canceled_at"]
        now = self.now()

        def cancel_state(started: datetime | None) -> dict[str, Any]:
            done = canceled + timedelta(seconds=pipeline.get("canceling_seconds", 1))
            if now < done:
                return {"status": "canceling", "started_at": started, "finished_at": None}
            return {"status": "canceled", "started_at": started, "finished_at": done}

        if pipeline["fixed_status"] is not None:
            status = pipeline["fixed_status"]
            started = pipeline["started_at"]
            if started is None and status not in (
                "created",
                "pending",
                "waiting_for_resource",
                "preparing",
                "waiting_for_callback",
            ):
                started = pipeline["created_at"]
            finished = pipeline["finished_at"]
            if finished is None and status in FINISHED_PIPELINE_STATUSES:
                finished = (started or pipeline["created_at"]) + timedelta(seconds=60)
            if canceled is not None and status not in FINISHED_PIPELINE_STATUSES:
                return cancel_state(started)
            return {"status": status, "started_at": started, "finished_at": finished}
        started = pipeline["run_from"] + timedelta(seconds=pipeline["pending_seconds"])
        finished = started + timedelta(seconds=pipeline["running_seconds"])
        if canceled is not None and canceled < finished:
            return cancel_state(started if canceled >= started else None)
        if now < started:
            return {"status": "pending", "started_at": None, "finished_at": None}
        if now < finished:
            return {"status": "running", "started_at": started, "finished_at": None}
        return {"status": pipeline["result"], "started_at": started, "finished_at": finished}

    def cancel_pipeline(self, pipeline: dict[str, Any]) -> None:
        with self.lock:
            if pipeline["canceled_at"] is None and (
                self.pipeline_state(pipeline)["status"] not in FINISHED_PIPELINE_STATUSES
            ):
                pipeline["canceled_at"] = self.now()

    def retry_pipeline(self, project: Project, pipeline: dict[str, Any]) -> None:
        """Failed or canceled pipelines run again from now, with the project's current behaviour."""
        with self.lock:
            if self.pipeline_state(pipeline)["status"] not in ("failed", "canceled"):
                return
            pipeline["fixed_status"] = None
            pipeline["run_from"] = self.now()
            pipeline["canceled_at"] = None
            pipeline["pending_seconds"] = float(project.behaviour.get("pending_seconds", 1))
            pipeline["running_seconds"] = float(project.behaviour.get("running_seconds", 3))
            pipeline["result"] = str(project.behaviour.get("result", "success"))

    def _record_deployment(self, project: Project, pipeline: dict[str, Any]) -> None:
        """Like release-tools: a PDM pipeline records itself as a deployment to db/<env>."""
        record = pipeline.get("record")
        if not record:
            return
        values = dict(pipeline["variables"])
        try:
            target = self.project(record.get("project") or project.path)
            environment = str(record["environment"]).format(**values)
            sha = str(record.get("sha", "")).format(**values)
            ref = str(record.get("ref", "")).format(**values)
        except KeyError as missing:
            self.notes.append(
                f"pipeline {pipeline['id']}: no deployment recorded, variable {missing} missing"
            )
            return
        except NotFound:
            self.notes.append(
                f"pipeline {pipeline['id']}: no deployment recorded, no project {record['project']}"
            )
            return
        deployment = self.add_deployment(
            target,
            {
                "environment": environment,
                "sha": sha,
                "ref": ref,
                "status": "running",
                "pipeline_id": pipeline["id"],
            },
        )
        deployment["follows_pipeline"] = (project.id, pipeline["id"])
        deployment["pipeline_project"] = project.path
        pipeline["deployment_id"] = deployment["id"]

    def deployment_state(self, deployment: dict[str, Any]) -> dict[str, Any]:
        """A deployment that follows a pipeline takes its status and finish time from the pipeline."""
        follows = deployment.get("follows_pipeline")
        if not follows:
            return deployment
        project = self.projects[follows[0]]
        pipeline = next(p for p in project.pipelines if p["id"] == follows[1])
        state = self.pipeline_state(pipeline)
        status = state["status"] if state["status"] in FINISHED_PIPELINE_STATUSES else "running"
        result = dict(deployment)
        result["status"] = status
        result["finished_at"] = state["finished_at"]
        result["updated_at"] = state["finished_at"] or state["started_at"] or deployment["created_at"]
        return result


def _fake_sha(*parts: str) -> str:
    """A stable 40-hex sha for projects whose repository the scenario leaves out."""
    return hashlib.sha1("/".join(parts).encode(), usedforsecurity=False).hexdigest()
