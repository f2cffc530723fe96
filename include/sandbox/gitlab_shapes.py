"""JSON shapes of the sandbox GitLab's answers, field for field as GitLab's REST v4 returns them."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from include.sandbox.gitlab_world import GitLabWorld, Project, iso

SANDBOX_USER = {
    "id": 1,
    "username": "sandbox-bot",
    "name": "Sandbox Bot",
    "state": "active",
    "avatar_url": None,
}


def user_json(base_url: str) -> dict[str, Any]:
    return {**SANDBOX_USER, "web_url": f"{base_url}/{SANDBOX_USER['username']}"}


def project_json(project: Project, base_url: str) -> dict[str, Any]:
    namespace, _, name = project.path.rpartition("/")
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


# The fields GitLab returns for a pipeline in lists and as a deployment's `deployable.pipeline`.
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
        "user": user_json(base_url),
        "detailed_status": {
            "icon": f"status_{state['status']}",
            "text": state["status"],
            "label": state["status"],
            "group": state["status"],
            "has_details": True,
            "details_path": f"/{project.path}/-/pipelines/{pipeline['id']}",
        },
    }


def deployment_json(
    world: GitLabWorld, project: Project, deployment: dict[str, Any], base_url: str
) -> dict[str, Any]:
    current = world.deployment_state(deployment)
    name = current["environment"]
    return {
        "id": current["id"],
        "iid": current["iid"],
        "ref": current["ref"],
        "sha": current["sha"],
        "tag": current.get("tag", False),
        "created_at": iso(current["created_at"]),
        "updated_at": iso(current["updated_at"]),
        "finished_at": iso(current["finished_at"]),
        "status": current["status"],
        "user": user_json(base_url),
        "environment": {
            "id": world.environment_id(project, name),
            "name": name,
            "slug": re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
            "external_url": None,
            "state": "available",
            "tier": _tier(name),
            "created_at": iso(current["created_at"]),
            "updated_at": iso(current["updated_at"]),
        },
        "deployable": _deployable(world, current, base_url),
    }


def _deployable(world: GitLabWorld, deployment: dict[str, Any], base_url: str) -> dict[str, Any] | None:
    """The CI job that ran the deployment, with its pipeline; None for deployments made through the API."""
    pipeline_id = deployment.get("pipeline_id")
    if not pipeline_id:
        return None
    owner_path = deployment.get("pipeline_project")
    pipeline_data: dict[str, Any] = {"id": pipeline_id, "status": deployment["status"]}
    if owner_path:
        owner = world.project(owner_path)
        pipeline = next((p for p in owner.pipelines if p["id"] == pipeline_id), None)
        if pipeline is not None:
            full = pipeline_json(world, owner, pipeline, base_url)
            pipeline_data = {k: full[k] for k in PIPELINE_SUMMARY_KEYS}
    return {
        "id": pipeline_id * 10 + 1,
        "status": deployment["status"],
        "stage": "deploy",
        "name": f"deploy:{deployment['environment']}",
        "ref": deployment["ref"],
        "tag": False,
        "created_at": iso(deployment["created_at"]),
        "finished_at": iso(deployment["finished_at"]),
        "user": user_json(base_url),
        "commit": {"id": deployment["sha"], "short_id": deployment["sha"][:8]},
        "pipeline": pipeline_data,
        "web_url": f"{base_url}/{owner_path or 'jobs'}/-/jobs/{pipeline_id * 10 + 1}",
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
        "author": user_json(base_url),
        "issue_type": "incident" if "incident" in issue["labels"] else "issue",
        "web_url": f"{base_url}/{project.path}/-/issues/{issue['iid']}",
        "references": {"full": f"{project.path}#{issue['iid']}"},
    }


def compare_json(project: Project, answer: dict[str, Any], base_url: str) -> dict[str, Any]:
    commits = [commit_json(c, project, base_url) for c in answer["commits"]]
    old, new = answer["from"]["sha"], answer["to"]["sha"]
    return {
        "commit": commits[-1] if commits else None,
        "commits": commits,
        "diffs": answer["diffs"],
        "compare_timeout": False,
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
