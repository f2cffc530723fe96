"""JSON shapes of the sandbox GitLab's answers, field for field as GitLab's REST v4 returns them."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from include.sandbox.gitlab_world import BOT_USERNAME, GitLabWorld, Project, iso

SANDBOX_USER = {
    "id": 1,
    "username": BOT_USERNAME,
    "name": "Sandbox Bot",
    "state": "active",
    "avatar_url": None,
}


def user_json(base_url: str, username: str = BOT_USERNAME, user_id: int = 1) -> dict[str, Any]:
    """GitLab's UserBasic: id, username, name, state, avatar_url, web_url."""
    name = SANDBOX_USER["name"] if username == BOT_USERNAME else username.replace("-", " ").title()
    return {
        "id": user_id,
        "username": username,
        "name": name,
        "state": "active",
        "avatar_url": None,
        "web_url": f"{base_url}/{username}",
    }


def world_user(world: GitLabWorld, base_url: str, username: str) -> dict[str, Any]:
    return user_json(base_url, username, world.user_id(username))


def project_json(
    project: Project, base_url: str, access_level: int | None = None, *, show_settings: bool = False
) -> dict[str, Any]:
    """ProjectWithAccess: `permissions` carries the caller's own role; the pipeline-variables setting is shown
    only to those who may administer the project (Maintainer+)."""
    namespace, _, name = project.path.rpartition("/")
    extra: dict[str, Any] = {}
    if show_settings:
        extra["ci_pipeline_variables_minimum_override_role"] = project.variables_minimum_role
    return {
        "id": project.id,
        "name": name,
        "path": name,
        "path_with_namespace": project.path,
        "name_with_namespace": project.path.replace("/", " / "),
        "namespace": {"full_path": namespace, "path": namespace.rsplit("/", 1)[-1], "kind": "group"},
        "default_branch": project.default_branch,
        "visibility": "private",
        "web_url": f"{base_url}/{project.path}",
        "permissions": {
            "project_access": (
                {"access_level": access_level, "notification_level": 3} if access_level else None
            ),
            "group_access": None,
        },
        **extra,
    }


def commit_json(commit: dict[str, Any], project: Project, base_url: str) -> dict[str, Any]:
    created = iso(commit["created_at"])
    title = commit["message"].splitlines()[0] if commit["message"] else ""
    return {
        "id": commit["sha"],
        "short_id": commit["sha"][:8],
        "title": title,
        "message": commit["message"],
        "author_name": SANDBOX_USER["name"],
        "author_email": "sandbox-bot@example.com",
        "authored_date": created,
        "committer_name": SANDBOX_USER["name"],
        "committer_email": "sandbox-bot@example.com",
        "committed_date": created,
        "created_at": created,
        "parent_ids": [],
        "web_url": f"{base_url}/{project.path}/-/commit/{commit['sha']}",
    }


# PipelineBasic: a deployment's `deployable.pipeline`; lists add `name` (PipelineBasicWithMetadata).
PIPELINE_SUMMARY_KEYS = (
    "id",
    "iid",
    "project_id",
    "sha",
    "ref",
    "status",
    "source",
    "created_at",
    "updated_at",
    "web_url",
)


def pipeline_json(
    world: GitLabWorld, project: Project, pipeline: dict[str, Any], base_url: str
) -> dict[str, Any]:
    state = world.pipeline_state(pipeline)
    started, finished = state["started_at"], state["finished_at"]
    return {
        "id": pipeline["id"],
        "iid": pipeline["iid"],
        "project_id": project.id,
        "sha": pipeline["sha"],
        "ref": pipeline["ref"],
        "status": state["status"],
        "source": pipeline["source"],
        "before_sha": "0" * 40,
        "tag": False,
        "yaml_errors": None,
        "created_at": iso(pipeline["created_at"]),
        "updated_at": iso(finished or started or pipeline["run_from"]),
        "started_at": iso(started),
        "finished_at": iso(finished),
        "committed_at": None,
        "duration": int((finished - started).total_seconds()) if started and finished else None,
        "queued_duration": (
            int((started - pipeline["run_from"]).total_seconds())
            if started and started >= pipeline["run_from"]
            else None
        ),
        "coverage": None,
        "web_url": f"{base_url}/{project.path}/-/pipelines/{pipeline['id']}",
        "user": world_user(world, base_url, pipeline.get("user") or BOT_USERNAME),
        "detailed_status": {
            "icon": f"status_{state['status']}",
            "text": state["status"],
            "label": state["status"],
            "group": state["status"],
            "has_details": True,
            "details_path": f"/{project.path}/-/pipelines/{pipeline['id']}",
        },
    }


def pipeline_list_item(full: dict[str, Any]) -> dict[str, Any]:
    """The list view of a pipeline (PipelineBasicWithMetadata): the summary plus `name`."""
    return {**{k: full[k] for k in PIPELINE_SUMMARY_KEYS}, "name": None}


def deployment_json(
    world: GitLabWorld, project: Project, deployment: dict[str, Any], base_url: str
) -> dict[str, Any]:
    """API::Entities::Deployment: no `finished_at`, no `tag`. A deployment made by a CI job carries the job
    (`deployable`, with its finished_at); one recorded through the API has `deployable: null`."""
    current = world.deployment_state(deployment)
    name = current["environment"]
    return {
        "id": current["id"],
        "iid": current["iid"],
        "ref": current["ref"],
        "sha": current["sha"],
        "created_at": iso(current["created_at"]),
        "updated_at": iso(current["updated_at"]),
        "user": world_user(world, base_url, current.get("user") or BOT_USERNAME),
        "environment": {
            "id": world.environment_id(project, name),
            "name": name,
            "slug": re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
            "external_url": None,
            "created_at": iso(current["created_at"]),
            "updated_at": iso(current["updated_at"]),
        },
        "deployable": _deployable(world, project, current, base_url),
        "status": current["status"],
    }


def _deployable(
    world: GitLabWorld, project: Project, deployment: dict[str, Any], base_url: str
) -> dict[str, Any] | None:
    """The CI job that ran the deployment (API::Entities::Ci::Job), with its pipeline; None for API records."""
    if deployment.get("created_by") != "ci":
        return None
    pipeline_id = deployment.get("pipeline_id") or deployment["id"] * 7
    job_id = pipeline_id * 10 + 1
    owner_path = deployment.get("pipeline_project") or project.path
    pipeline_data: dict[str, Any] = {
        "id": pipeline_id,
        "iid": deployment["iid"],
        "project_id": project.id,
        "sha": deployment["sha"],
        "ref": deployment["ref"],
        "status": deployment["status"],
        "source": "push",
        "created_at": iso(deployment["created_at"]),
        "updated_at": iso(deployment["updated_at"]),
        "web_url": f"{base_url}/{owner_path}/-/pipelines/{pipeline_id}",
    }
    if deployment.get("pipeline_project"):
        owner = world.project(owner_path)
        pipeline = next((p for p in owner.pipelines if p["id"] == pipeline_id), None)
        if pipeline is not None:
            full = pipeline_json(world, owner, pipeline, base_url)
            pipeline_data = {k: full[k] for k in PIPELINE_SUMMARY_KEYS}
    created, finished = deployment["created_at"], deployment["finished_at"]
    started = created
    return {
        "id": job_id,
        "status": deployment["status"],
        "stage": "deploy",
        "name": f"deploy:{deployment['environment']}",
        "ref": deployment["ref"],
        "tag": bool(deployment.get("tag", False)),
        "coverage": None,
        "allow_failure": False,
        "created_at": iso(created),
        "started_at": iso(started),
        "finished_at": iso(finished),
        "erased_at": None,
        "duration": (finished - started).total_seconds() if finished else None,
        "queued_duration": 0.0,
        "user": world_user(world, base_url, deployment.get("user") or BOT_USERNAME),
        "commit": {"id": deployment["sha"], "short_id": deployment["sha"][:8]},
        "pipeline": pipeline_data,
        "web_url": f"{base_url}/{owner_path}/-/jobs/{job_id}",
        "project": {"ci_job_token_scope_enabled": False},
        "artifacts": [],
        "runner": None,
        "artifacts_expire_at": None,
        "tag_list": [],
    }


def _tier(environment: str) -> str:
    leaf = environment.rsplit("/", 1)[-1]
    if "prd" in leaf or "prod" in leaf:
        return "production"
    if "stg" in leaf or "stag" in leaf:
        return "staging"
    return "other"


def issue_json(project: Project, issue: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {
        "id": issue["id"],
        "iid": issue["iid"],
        "project_id": project.id,
        "title": issue["title"],
        "description": issue["description"],
        "state": issue["state"],
        "labels": list(issue["labels"]),
        "created_at": iso(issue["created_at"]),
        "updated_at": iso(issue["updated_at"]),
        "closed_at": iso(issue["closed_at"]),
        "author": user_json(base_url, issue.get("author") or BOT_USERNAME),
        "confidential": bool(issue.get("confidential")),
        "issue_type": "incident" if "incident" in issue["labels"] else "issue",
        "web_url": f"{base_url}/{project.path}/-/issues/{issue['iid']}",
        "references": {"full": f"{project.path}#{issue['iid']}"},
    }


def compare_json(
    world: GitLabWorld, project: Project, answer: dict[str, Any], base_url: str
) -> dict[str, Any]:
    """API::Entities::Compare; `diffs` cut at GitLab's diff limits, and then compare_timeout is true."""
    commits = [commit_json(c, project, base_url) for c in answer["commits"]]
    old, new = answer["from"]["sha"], answer["to"]["sha"]
    diffs, overflow = world.truncate_diffs(answer["diffs"])
    return {
        "commit": commits[-1] if commits else None,
        "commits": commits,
        "diffs": diffs,
        "compare_timeout": overflow,
        "compare_same_ref": answer["same"],
        "web_url": f"{base_url}/{project.path}/-/compare/{old}...{new}",
    }


def file_json(path: str, content: bytes, ref: str, commit_sha: str) -> dict[str, Any]:
    return {
        "file_name": path.rsplit("/", 1)[-1],
        "file_path": path,
        "size": len(content),
        "encoding": "base64",
        "content": base64.b64encode(content).decode(),
        "content_sha256": hashlib.sha256(content).hexdigest(),
        "ref": ref,
        "blob_id": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
        "commit_id": commit_sha,
        "last_commit_id": commit_sha,
    }


def admin_pending_json(database: str, versions: list[int], names: dict[int, str]) -> dict[str, Any]:
    """GET /admin/migrations/pending: an object, not a list (lib/api/admin/migrations.rb)."""
    items = []
    for version in sorted(versions):
        name = names.get(version) or f"migration_{version}"
        items.append(
            {
                "version": version,
                "name": name,
                "filename": f"db/post_migrate/{version}_{name}.rb",
                "status": "pending",
            }
        )
    return {"pending_migrations": items, "database": database, "total_pending": len(items)}
