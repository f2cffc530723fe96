"""The sandbox GitLab's project resources: deployments, environments, repository, pipelines and issues.

A mixin of the request handler in gitlab_server.py (`self.owner` is the SandboxGitLab, `self._page` the
pagination); every answer follows GitLab's finders and entities (gitlab_api.yaml).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from include.isotime import parse_iso_instant
from include.sandbox import gitlab_access as access
from include.sandbox import gitlab_routes as routes
from include.sandbox import gitlab_shapes as shapes
from include.sandbox.gitlab_control import Answer, HttpError
from include.sandbox.gitlab_world import (
    DEPLOYMENT_STATUSES,
    FINISHED_DEPLOYMENT_STATUSES,
    PIPELINE_STATUSES,
    NotFound,
    Project,
    iso,
)

if TYPE_CHECKING:
    from include.sandbox.gitlab_server import SandboxGitLab


class ResourceApi:
    """Handlers of `/projects/:id/…` resources (roles already checked by the caller, except variables)."""

    owner: SandboxGitLab

    if TYPE_CHECKING:  # the pagination of the handler this class is mixed into (gitlab_server._Handler)

        def _page(
            self, items: list[Any], query: dict[str, str], render: Callable[[Any], Any] | None = None
        ) -> Answer: ...

    # -- the routes of gitlab_routes.py that this class answers ----------------------------------------
    def route_trigger(self, request: routes.Request) -> Answer:
        assert request.project is not None
        return self._trigger(request.project, request.query, request.body)

    def route_user(self, request: routes.Request) -> Answer:
        assert request.who is not None
        user = shapes.world_user(self.owner.world, self.owner.url, request.who.username)
        return 200, {**user, "is_admin": request.who.admin}, {}

    def route_token_self(self, request: routes.Request) -> Answer:
        assert request.who is not None
        return 200, self._token_self(request.who), {}

    def _token_self(self, who: access.Principal) -> dict[str, Any]:
        """GET /personal_access_tokens/self: the token's own record (scopes, owner)."""
        world = self.owner.world
        return {
            "id": world.user_id(who.username) * 100,
            "name": f"{who.username} token",
            "revoked": False,
            "created_at": iso(world.started),
            "scopes": sorted(who.scopes),
            "user_id": world.user_id(who.username),
            "active": True,
            "expires_at": None,
        }

    def route_issues(self, request: routes.Request) -> Answer:
        who = request.who
        assert who is not None
        found = [
            (p, i)
            for p in self.owner.world.projects.values()
            if who.level(p) > 0
            for i in p.issues
            if access.sees_issue(who, p, i)
        ]
        return self._page(self._issues(found, request.query), request.query)

    def route_project(self, request: routes.Request) -> Answer:
        assert request.project is not None and request.who is not None
        level = request.level
        shown = shapes.project_json(
            request.project,
            self.owner.url,
            None if request.who.admin else level,
            show_settings=level >= access.MAINTAINER,
        )
        return 200, shown, {}

    def route_deployments(self, request: routes.Request) -> Answer:
        assert request.project is not None and request.who is not None
        return self._deployments_api(
            request.who, request.method, request.project, request.tail, request.query, request.body
        )

    def route_environments(self, request: routes.Request) -> Answer:
        assert request.project is not None
        return self._environments(request.project, request.tail, request.query)

    def route_repository(self, request: routes.Request) -> Answer:
        assert request.project is not None
        return self._repository(request.project, request.tail, request.query)

    def route_create_pipeline(self, request: routes.Request) -> Answer:
        assert request.project is not None and request.who is not None
        sent = {**request.query, **request.body}
        return 201, self._create_pipeline(request.who, request.project, sent, source="api"), {}

    def route_pipelines(self, request: routes.Request) -> Answer:
        assert request.project is not None and request.who is not None
        return self._pipelines(request.who, request.method, request.project, request.tail, request.query)

    def route_project_issues(self, request: routes.Request) -> Answer:
        project, who, tail = request.project, request.who, request.tail
        assert project is not None and who is not None
        visible = [i for i in project.issues if access.sees_issue(who, project, i)]
        if not tail:
            return self._page(self._issues([(project, i) for i in visible], request.query), request.query)
        issue = next((i for i in visible if str(i["iid"]) == tail[0]), None) if len(tail) == 1 else None
        if issue is None:
            raise HttpError(404, "404 Issue Not Found")
        return 200, self.owner.issue_json(project, issue), {}

    # deployments
    def _deployments_api(
        self,
        who: access.Principal,
        method: str,
        project: Project,
        rest: list[str],
        query: dict[str, str],
        body: dict[str, Any],
    ) -> Answer:
        sandbox, world = self.owner, self.owner.world
        if not rest and method == "GET":
            by_id = {d["id"]: d for d in project.deployments}
            return self._page(
                self._deployments(project, query),
                query,
                lambda d: sandbox.deployment_json(project, by_id[d["id"]]),
            )
        if not rest and method == "POST":
            for required in ("environment", "sha", "ref", "tag", "status"):
                if body.get(required) in (None, ""):
                    raise HttpError(400, f"400 Bad request - {required} is missing")
            if body["status"] not in ("running", "success", "failed", "canceled"):
                raise HttpError(400, "400 Bad request - status does not have a valid value")
            if project.commits and body["ref"] not in project.refs and body["ref"] != project.default_branch:
                raise HttpError(400, {"ref": ["The branch or tag does not exist"]})
            spec = {k: body[k] for k in ("environment", "sha", "ref", "status")}
            spec["tag"] = str(body["tag"]).lower() in ("true", "1")
            spec["user"] = who.username
            return 201, sandbox.deployment_json(project, world.add_deployment(project, spec)), {}
        if len(rest) != 1:
            raise HttpError(404, "404 Not Found")
        deployment = next((d for d in project.deployments if str(d["id"]) == rest[0]), None)
        if deployment is None:
            raise HttpError(404, "404 Deployment Not Found")
        if method == "PUT":
            if deployment.get("created_by") == "ci":
                raise HttpError(
                    403,
                    "403 Forbidden - Deployments created using GitLab CI can not be updated using the API",
                )
            status = body.get("status")
            if status not in ("running", "success", "failed", "canceled"):
                raise HttpError(400, "400 Bad request - status does not have a valid value")
            world.set_deployment_status(deployment, status)
        elif method != "GET":
            raise HttpError(405, "405 Method Not Allowed")
        return 200, sandbox.deployment_json(project, deployment), {}

    def _deployments(self, project: Project, query: dict[str, str]) -> list[dict[str, Any]]:
        """GitLab's deployment finder, including its refusals of inefficient filter/order combinations.
        Returns current deployment states in order; only the page served is rendered as JSON."""
        world = self.owner.world
        order = query.get("order_by") or "id"
        sort = query.get("sort") or "asc"
        status = query.get("status")
        if order not in ("id", "iid", "created_at", "updated_at", "finished_at", "ref"):
            raise HttpError(400, "400 Bad request - order_by does not have a valid value")
        if sort not in ("asc", "desc"):
            raise HttpError(400, "400 Bad request - sort does not have a valid value")
        if status and status not in DEPLOYMENT_STATUSES:
            raise HttpError(400, "400 Bad request - status does not have a valid value")
        by_updated = any(query.get(k) for k in ("updated_after", "updated_before"))
        by_finished = any(query.get(k) for k in ("finished_after", "finished_before"))
        if by_updated and by_finished:
            raise HttpError(400, "400 Bad request - both `updated_at` and `finished_at` filters given")
        if by_updated and order != "updated_at":
            raise HttpError(400, "400 Bad request - `updated_at` filter requires `updated_at` sort")
        if by_finished and order != "finished_at":
            raise HttpError(400, "400 Bad request - `finished_at` filter requires `finished_at` sort.")
        if order == "finished_at" and not (by_finished or status in FINISHED_DEPLOYMENT_STATUSES):
            raise HttpError(400, "400 Bad request - `finished_at` sort requires a finished status or filter")
        if by_finished and status != "success":
            raise HttpError(
                400, "400 Bad request - `finished_at` filter must be combined with `success` status"
            )
        items = [world.deployment_state(d) for d in project.deployments]
        if query.get("environment"):
            items = [d for d in items if d["environment"] == query["environment"]]
        if status:
            items = [d for d in items if d["status"] == status]
        bounds: tuple[tuple[str, str, Callable[[datetime, datetime], bool]], ...] = (
            ("updated_after", "updated_at", lambda value, bound: value >= bound),
            ("updated_before", "updated_at", lambda value, bound: value <= bound),
            ("finished_after", "finished_at", lambda value, bound: value >= bound),
            ("finished_before", "finished_at", lambda value, bound: value <= bound),
        )
        for key, field_name, keep in bounds:
            if query.get(key):
                bound = _query_time(query, key)
                items = [d for d in items if d[field_name] is not None and keep(d[field_name], bound)]
        oldest = datetime.min.replace(tzinfo=UTC)
        items.sort(
            key=lambda d: (d[order] or oldest, d["id"]) if order.endswith("_at") else (d[order], d["id"])
        )
        if sort == "desc":
            items.reverse()
        return items

    def _environments(self, project: Project, rest: list[str], query: dict[str, str]) -> Answer:
        world, url = self.owner.world, self.owner.url
        items: list[dict[str, Any]] = []
        for env_id, name in world.environments(project):
            latest = [d for d in project.deployments if d["environment"] == name]
            items.append(
                {
                    "id": env_id,
                    "name": name,
                    "slug": re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
                    "external_url": None,
                    "state": "available",
                    "tier": shapes._tier(name),
                    "last_deployment": self.owner.deployment_json(project, latest[-1]) if latest else None,
                    "web_url": f"{url}/{project.path}/-/environments/{env_id}",
                }
            )
        if rest:
            found = next((e for e in items if str(e["id"]) == rest[0]), None)
            if found is None:
                raise HttpError(404, "404 Environment Not Found")
            return 200, found, {}
        if query.get("name"):
            items = [e for e in items if e["name"] == query["name"]]
        if query.get("search"):
            items = [e for e in items if query["search"] in e["name"]]
        for item in items:
            item.pop("last_deployment")  # the list carries it only in the single view
        return self._page(items, query)

    # repository
    def _repository(self, project: Project, rest: list[str], query: dict[str, str]) -> Answer:
        world, url = self.owner.world, self.owner.url
        if rest == ["compare"]:
            for required in ("from", "to"):
                if not query.get(required):
                    raise HttpError(400, f"400 Bad request - {required} is missing")
            straight = query.get("straight", "false").lower() == "true"
            try:
                answer = world.compare(project, query["from"], query["to"], straight)
            except NotFound:
                raise HttpError(404, "404 Ref Not Found") from None
            return 200, shapes.compare_json(world, project, answer, url), {}
        if rest == ["tree"]:
            if query.get("recursive", "false").lower() == "true":
                raise HttpError(400, "400 Bad request - recursive trees are not modelled by the sandbox")
            entries = world.tree(project, query.get("ref") or project.default_branch, query.get("path") or "")
            return self._page(entries, query)
        if len(rest) in (2, 3) and rest[0] == "files" and rest[2:] in ([], ["raw"]):
            file_path, raw = rest[1], rest[2:] == ["raw"]
            if not raw and not query.get("ref"):
                raise HttpError(400, "400 Bad request - ref is missing")
            commit = world.commit(project, query.get("ref") or project.default_branch)
            if file_path not in commit["files"]:
                raise HttpError(404, "404 File Not Found")
            content = commit["files"][file_path].encode()
            if raw:
                return 200, content, {"Content-Type": "text/plain; charset=utf-8"}
            return 200, shapes.file_json(file_path, content, query["ref"], commit["sha"]), {}
        if len(rest) == 2 and rest[0] == "commits":
            return 200, shapes.commit_json(world.commit(project, rest[1]), project, url), {}
        raise HttpError(404, "404 Not Found")

    # pipelines
    def _create_pipeline(
        self, who: access.Principal, project: Project, body: dict[str, Any], source: str
    ) -> dict[str, Any]:
        ref = body.get("ref")
        if not ref:
            raise HttpError(400, "400 Bad request - ref is missing")
        variables = body.get("variables") or {}
        if isinstance(variables, list):
            if not all(isinstance(v, dict) and v.get("key") for v in variables):
                raise HttpError(400, "400 Bad request - variables[key] is missing")
            variables = {str(v["key"]): str(v.get("value", "")) for v in variables}
        elif not isinstance(variables, dict):
            raise HttpError(400, "400 Bad request - variables is invalid")
        if variables and not access.may_set_variables(who, project):
            raise HttpError(400, {"base": ["Insufficient permissions to set pipeline variables"]})
        # After the permission check, as GitLab's chain does (Validate::Abilities, then Validate::Repository).
        # A project without modelled commits knows its default branch and its `refs` only.
        if project.commits:
            try:
                self.owner.world.commit(project, str(ref))
            except NotFound:
                raise HttpError(400, {"base": ["Reference not found"]}) from None
        elif str(ref) != project.default_branch and str(ref) not in project.refs:
            raise HttpError(400, {"base": ["Reference not found"]})
        pipeline = self.owner.world.add_pipeline(
            project,
            {"ref": ref, "variables": variables, "source": source, "user": who.username},
            created_via_api=True,
        )
        return self.owner.pipeline_json(project, pipeline)

    def _trigger(self, project: Project, query: dict[str, str], body: dict[str, Any]) -> Answer:
        sent = {**query, **body}
        token = sent.get("token")
        allowed = set(project.trigger_tokens)
        if os.environ.get("SANDBOX_GITLAB_TRIGGER_TOKEN"):
            allowed.add(os.environ["SANDBOX_GITLAB_TRIGGER_TOKEN"])
        if not token or token not in allowed:
            raise HttpError(404, "404 Not Found")
        variables = {
            k[len("variables[") : -1]: str(v) for k, v in sent.items() if re.fullmatch(r"variables\[.+\]", k)
        }
        if isinstance(sent.get("variables"), dict):
            variables.update({str(k): str(v) for k, v in sent["variables"].items()})
        owner = self.owner.principals[self.owner.token]  # trigger tokens belong to the bot
        created = self._create_pipeline(
            owner, project, {"ref": sent.get("ref"), "variables": variables}, source="trigger"
        )
        return 201, created, {}

    def _pipelines(
        self, who: access.Principal, method: str, project: Project, rest: list[str], query: dict[str, str]
    ) -> Answer:
        """The pipeline routes (list, one, variables, cancel, retry); gitlab_routes checked the role."""
        sandbox, world = self.owner, self.owner.world
        action = rest[1:]
        if not rest and method == "GET":
            return self._page(self._pipeline_list(project, query), query)
        pipeline = next((p for p in project.pipelines if str(p["id"]) == rest[0]), None) if rest else None
        if pipeline is None:
            raise HttpError(404, "404 Not found")
        if not action and method == "GET":
            return 200, sandbox.pipeline_json(project, pipeline), {}
        if action == ["variables"] and method == "GET":
            if not access.may_read_variables(who, project, pipeline):
                raise access.forbidden()
            variables = [
                {"variable_type": "env_var", "key": k, "value": v} for k, v in pipeline["variables"].items()
            ]
            return 200, variables, {}
        if action == ["cancel"] and method == "POST":
            world.cancel_pipeline(pipeline)
            return 200, sandbox.pipeline_json(project, pipeline), {}
        if action == ["retry"] and method == "POST":
            world.retry_pipeline(project, pipeline)
            return 201, sandbox.pipeline_json(project, pipeline), {}
        raise HttpError(404, "404 Not Found")

    def _pipeline_list(self, project: Project, query: dict[str, str]) -> list[dict[str, Any]]:
        """The list view: GitLab returns the short pipeline shape here, the full one from GET /:id."""
        sandbox = self.owner
        order = query.get("order_by") or "id"
        sort = query.get("sort") or "desc"
        if order not in ("id", "status", "ref", "updated_at", "user_id"):
            raise HttpError(400, "400 Bad request - order_by does not have a valid value")
        if sort not in ("asc", "desc"):
            raise HttpError(400, "400 Bad request - sort does not have a valid value")
        if query.get("status") and query["status"] not in PIPELINE_STATUSES:
            raise HttpError(400, "400 Bad request - status does not have a valid value")
        items = [sandbox.pipeline_json(project, p) for p in project.pipelines]
        scope = query.get("scope")
        if scope in ("running", "pending"):
            items = [j for j in items if j["status"] == scope]
        elif scope == "finished":
            items = [j for j in items if j["status"] in ("success", "failed", "canceled", "skipped")]
        elif scope == "tags":
            items = []
        for key in ("status", "ref", "sha", "source"):
            if query.get(key):
                items = [j for j in items if j[key] == query[key]]
        if query.get("username"):
            items = [j for j in items if j["user"]["username"] == query["username"]]
        if query.get("updated_after"):
            bound = _query_time(query, "updated_after")
            items = [j for j in items if _parse_iso(j["updated_at"]) > bound]
        if query.get("updated_before"):
            bound = _query_time(query, "updated_before")
            items = [j for j in items if _parse_iso(j["updated_at"]) < bound]
        field_name = "id" if order == "user_id" else order
        items.sort(key=lambda j: (j[field_name], j["id"]), reverse=sort == "desc")
        return [shapes.pipeline_list_item(j) for j in items]

    # issues
    def _issues(
        self, found: list[tuple[Project, dict[str, Any]]], query: dict[str, str]
    ) -> list[dict[str, Any]]:
        state = query.get("state") or "all"
        if state not in ("opened", "closed", "all"):
            raise HttpError(400, "400 Bad request - state does not have a valid value")
        if state != "all":
            found = [(p, i) for p, i in found if i["state"] == state]
        labels = query.get("labels")
        if labels == "None":
            found = [(p, i) for p, i in found if not i["labels"]]
        elif labels == "Any":
            found = [(p, i) for p, i in found if i["labels"]]
        elif labels:
            wanted = [label.strip() for label in labels.split(",") if label.strip()]
            found = [(p, i) for p, i in found if all(label in i["labels"] for label in wanted)]
        if query.get("search"):
            text = query["search"].lower()
            found = [
                (p, i) for p, i in found if text in i["title"].lower() or text in i["description"].lower()
            ]
        for key in ("created_after", "created_before", "updated_after", "updated_before"):
            if query.get(key):
                bound = _query_time(query, key)
                field_name = key.split("_")[0] + "_at"
                if key.endswith("_after"):
                    found = [(p, i) for p, i in found if i[field_name] >= bound]
                else:
                    found = [(p, i) for p, i in found if i[field_name] <= bound]
        order = query.get("order_by") or "created_at"
        if order not in ("created_at", "updated_at"):
            raise HttpError(400, "400 Bad request - order_by does not have a valid value")
        found.sort(
            key=lambda pi: (pi[1][order], pi[1]["id"]), reverse=(query.get("sort") or "desc") == "desc"
        )
        return [self.owner.issue_json(p, i) for p, i in found]


def _query_time(query: dict[str, str], key: str) -> datetime:
    try:
        return _parse_iso(query[key])
    except ValueError:
        raise HttpError(400, f"400 Bad request - {key} is invalid") from None


def _parse_iso(text: str) -> datetime:
    return parse_iso_instant(text.strip().replace(" ", "+"))  # a `+` of an offset arrives as a space
