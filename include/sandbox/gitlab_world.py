"""The sandbox GitLab's world: projects, commits, deployments, pipelines and issues, evolving over time.

Built from a scenario (YAML). Times in a scenario may be ISO-8601 or relative to the world's start
("-3h", "-90m", "+2d", "now"). The world has its own clock, which tests can advance. Thread-safe.
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_RELATIVE = re.compile(r"^([+-])(\d+(?:\.\d+)?)(s|m|h|d|w)$")


class NotFound(LookupError):
    """A resource the request names does not exist (answered 404 with GitLab's message)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def iso(moment: datetime | None) -> str | None:
    """GitLab's timestamp format: ISO-8601 with milliseconds and Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Project:
    id: int
    path: str
    default_branch: str = "master"
    commits: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # sha -> {message, files, created_at, order}
    deployments: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    behaviour: dict[str, Any] = field(default_factory=dict)
    trigger_tokens: list[str] = field(default_factory=list)

    def summary(self, base_url: str) -> dict[str, Any]:
        name = self.path.rsplit("/", 1)[-1]
        return {
            "id": self.id,
            "name": name,
            "path": name,
            "path_with_namespace": self.path,
            "name_with_namespace": self.path.replace("/", " / "),
            "default_branch": self.default_branch,
            "web_url": f"{base_url}/{self.path}",
        }


class GitLabWorld:
    """Everything the sandbox serves, with the progression of pipelines over (sandbox) time."""

    def __init__(self, scenario: dict[str, Any], now: datetime | None = None) -> None:
        self.lock = threading.RLock()
        self.started = now or datetime.now(UTC)
        self.offset = timedelta(0)
        self.scenario = copy.deepcopy(scenario)
        self.projects: dict[int, Project] = {}
        self.ids = {"deployment": 1000, "pipeline": 5000, "issue": 100, "environment": 10}
        self.environment_ids: dict[tuple[int, str], int] = {}
        self.admin_pending: dict[str, list[int]] = {
            str(k): [int(v) for v in (vs or [])]
            for k, vs in (scenario.get("admin_pending_migrations") or {}).items()
        }
        self.created_pipelines: dict[int, list[int]] = {}
        self.requests: dict[str, int] = {}
        for spec in scenario.get("projects") or []:
            self._add_project(spec)

    # -- clock --------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += timedelta(seconds=seconds)

    def when(self, value: Any) -> datetime | None:
        """A scenario time: ISO-8601, a datetime, or relative to the world's start."""
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        text = str(value).strip()
        if text == "now":
            return self.started
        match = _RELATIVE.match(text)
        if match:
            unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(3)]
            delta = timedelta(seconds=float(match.group(2)) * unit)
            return self.started + delta if match.group(1) == "+" else self.started - delta
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    # -- building -----------------------------------------------------------------------------------
    def _add_project(self, spec: dict[str, Any]) -> Project:
        project = Project(
            id=int(spec["id"]),
            path=str(spec["path_with_namespace"]),
            default_branch=str(spec.get("default_branch") or "master"),
            behaviour=dict(spec.get("pipeline_behaviour") or {}),
            trigger_tokens=[str(t) for t in spec.get("trigger_tokens") or []],
        )
        self.projects[project.id] = project
        for order, commit in enumerate(spec.get("commits") or []):
            self.add_commit(project, commit, order)
        for deployment in spec.get("deployments") or []:
            self.add_deployment(project, deployment)
        for pipeline in spec.get("pipelines") or []:
            self.add_pipeline(project, pipeline, created_via_api=False)
        for issue in spec.get("issues") or []:
            self.add_issue(project, issue)
        return project

    def add_commit(self, project: Project, spec: dict[str, Any], order: int | None = None) -> dict[str, Any]:
        with self.lock:
            files: dict[str, str] = {}
            if spec.get("files_from"):
                files.update(self.commit(project, spec["files_from"])["files"])
            files.update({str(k): str(v) for k, v in (spec.get("files") or {}).items()})
            files.update({str(k): str(v) for k, v in (spec.get("add") or {}).items()})
            for path in spec.get("delete") or []:
                files.pop(str(path), None)
            for old, new in (spec.get("rename") or {}).items():
                if old in files:
                    files[str(new)] = files.pop(old)
            commit = {
                "sha": str(spec["sha"]),
                "message": str(spec.get("message") or ""),
                "files": files,
                "created_at": self.when(spec.get("created_at")) or self.now(),
                "order": order if order is not None else len(project.commits),
            }
            project.commits[commit["sha"]] = commit
            return commit

    def add_deployment(self, project: Project, spec: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.ids["deployment"] += 1
            created = self.when(spec.get("created_at")) or self.now()
            status = str(spec.get("status") or "success")
            finished = self.when(spec.get("finished_at"))
            if finished is None and status in ("success", "failed", "canceled"):
                finished = created
            deployment = {
                "id": int(spec.get("id") or self.ids["deployment"]),
                "iid": len(project.deployments) + 1,
                "ref": str(spec.get("ref") or project.default_branch),
                "sha": str(spec.get("sha") or ""),
                "environment": str(spec["environment"]),
                "status": status,
                "created_at": created,
                "updated_at": finished or created,
                "finished_at": finished,
                "pipeline_id": spec.get("pipeline_id"),
            }
            project.deployments.append(deployment)
            return deployment

    def add_pipeline(
        self, project: Project, spec: dict[str, Any], *, created_via_api: bool
    ) -> dict[str, Any]:
        with self.lock:
            self.ids["pipeline"] += 1
            variables = spec.get("variables") or {}
            if isinstance(variables, list):
                variables = {str(v["key"]): str(v.get("value", "")) for v in variables}
            created = self.when(spec.get("created_at")) or self.now()
            behaviour = {**project.behaviour, **(spec.get("behaviour") or {})}
            pipeline = {
                "id": int(spec.get("id") or self.ids["pipeline"]),
                "iid": len(project.pipelines) + 1,
                "project_id": project.id,
                "ref": str(spec.get("ref") or project.default_branch),
                "sha": str(spec.get("sha") or "0" * 40),
                "source": str(spec.get("source") or ("api" if created_via_api else "push")),
                "variables": {str(k): str(v) for k, v in variables.items()},
                "created_at": created,
                "fixed_status": None if created_via_api else str(spec.get("status") or "success"),
                "pending_seconds": float(behaviour.get("pending_seconds", 1)),
                "running_seconds": float(behaviour.get("running_seconds", 3)),
                "result": str(behaviour.get("result", "success")),
                "record": behaviour.get("record_db_deployment") if created_via_api else None,
                "canceled_at": None,
                "deployment_id": None,
            }
            project.pipelines.append(pipeline)
            if created_via_api:
                self.created_pipelines.setdefault(project.id, []).append(pipeline["id"])
                self._record_deployment(project, pipeline)
            return pipeline

    def add_issue(self, project: Project, spec: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.ids["issue"] += 1
            created = self.when(spec.get("created_at")) or self.now()
            issue = {
                "id": self.ids["issue"],
                "iid": int(spec.get("iid") or len(project.issues) + 1),
                "project_id": project.id,
                "title": str(spec.get("title") or "issue"),
                "labels": [str(label) for label in spec.get("labels") or []],
                "state": str(spec.get("state") or "opened"),
                "created_at": created,
                "updated_at": created,
            }
            project.issues.append(issue)
            return issue

    # -- lookups ------------------------------------------------------------------------------------
    def project(self, ident: str | int) -> Project:
        text = str(ident)
        if text.isdigit() and int(text) in self.projects:
            return self.projects[int(text)]
        for project in self.projects.values():
            if project.path == text:
                return project
        raise NotFound("404 Project Not Found")

    def commit(self, project: Project, sha: str) -> dict[str, Any]:
        if sha in project.commits:
            return project.commits[sha]
        if sha == project.default_branch and project.commits:
            return max(project.commits.values(), key=lambda c: c["order"])
        matches = [c for s, c in project.commits.items() if len(sha) >= 7 and s.startswith(sha)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound("404 Commit Not Found")

    def environment_id(self, project: Project, name: str) -> int:
        key = (project.id, name)
        if key not in self.environment_ids:
            self.ids["environment"] += 1
            self.environment_ids[key] = self.ids["environment"]
        return self.environment_ids[key]

    # -- pipeline progression -------------------------------------------------------------------------
    def pipeline_state(self, pipeline: dict[str, Any]) -> dict[str, Any]:
        """Status and timings now: created → pending → running → result, by elapsed sandbox time."""
        if pipeline["fixed_status"] is not None:
            status = pipeline["fixed_status"]
            started = pipeline["created_at"] if status not in ("created", "pending") else None
            finished = (
                pipeline["created_at"] + timedelta(seconds=60)
                if status in ("success", "failed", "canceled")
                else None
            )
            return {"status": status, "started_at": started, "finished_at": finished}
        now = self.now()
        created = pipeline["created_at"]
        started = created + timedelta(seconds=pipeline["pending_seconds"])
        finished = started + timedelta(seconds=pipeline["running_seconds"])
        if pipeline["canceled_at"] is not None and pipeline["canceled_at"] < finished:
            return {
                "status": "canceled",
                "started_at": started if pipeline["canceled_at"] >= started else None,
                "finished_at": pipeline["canceled_at"],
            }
        if now < started:
            return {"status": "pending", "started_at": None, "finished_at": None}
        if now < finished:
            return {"status": "running", "started_at": started, "finished_at": None}
        return {"status": pipeline["result"], "started_at": started, "finished_at": finished}

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
        except (KeyError, NotFound):
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
        pipeline["deployment_id"] = deployment["id"]

    def deployment_state(self, deployment: dict[str, Any]) -> dict[str, Any]:
        """A deployment that follows a pipeline takes its status and finish time from the pipeline."""
        follows = deployment.get("follows_pipeline")
        if not follows:
            return deployment
        project = self.projects[follows[0]]
        pipeline = next(p for p in project.pipelines if p["id"] == follows[1])
        state = self.pipeline_state(pipeline)
        status = {"pending": "running", "created": "created"}.get(state["status"], state["status"])
        result = dict(deployment)
        result["status"] = status
        result["finished_at"] = state["finished_at"]
        result["updated_at"] = state["finished_at"] or deployment["created_at"]
        return result
