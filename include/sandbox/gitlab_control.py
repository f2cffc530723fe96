"""The sandbox GitLab's control API (`/-/sandbox/…`: time, world changes, faults) and the pipeline page.

A mixin of the request handler in gitlab_server.py; `self.owner` is the SandboxGitLab.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from include.sandbox.gitlab_world import ScenarioError

if TYPE_CHECKING:
    from include.sandbox.gitlab_server import SandboxGitLab

Answer = tuple[int, Any, dict[str, str]]


class HttpError(Exception):
    """An error answer with GitLab's `{"message": …}` body."""

    def __init__(self, status: int, message: str | dict[str, Any]) -> None:
        super().__init__(str(message))
        self.status = status
        self.message = message


class ControlApi:
    """Control API routes and the HTML page at a pipeline's web_url."""

    owner: SandboxGitLab

    def _pipeline_page(self, segments: list[str]) -> Answer:
        """A small HTML page at a pipeline's web_url, so links from the Airflow UI open something."""
        dash = segments.index("-")
        with self.owner.world.lock:
            project = self.owner.world.project("/".join(segments[:dash]))
            pipeline = next((p for p in project.pipelines if str(p["id"]) == segments[-1]), None)
            if pipeline is None:
                raise HttpError(404, "404 Not found")
            data = self.owner.pipeline_json(project, pipeline)
            variables = "".join(
                f"<li><code>{html.escape(k)}={html.escape(v)}</code></li>"
                for k, v in pipeline["variables"].items()
            )
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>Pipeline #{data['id']}</title></head><body>"
            f"<h1>{html.escape(project.path)} · pipeline #{data['id']}</h1>"
            f"<p>Status: <strong id='status'>{data['status']}</strong></p>"
            f"<p>Ref {html.escape(data['ref'])} · created {data['created_at']} · started {data['started_at'] or '-'}"
            f" · finished {data['finished_at'] or '-'}</p>"
            f"<h2>Variables</h2><ul>{variables}</ul><p><em>Sandbox GitLab</em></p></body></html>"
        )
        return 200, page, {"Content-Type": "text/html; charset=utf-8"}

    # -- control API --------------------------------------------------------------------------------
    def _control(self, method: str, rest: list[str], body: dict[str, Any]) -> Answer:
        sandbox = self.owner
        routes: dict[tuple[str, str], Callable[[], Answer]] = {
            ("GET", "state"): lambda: (200, sandbox.state(), {}),
            ("POST", "clock"): lambda: (
                200,
                {"now": sandbox.advance_clock(float(body.get("advance_seconds", 0)))},
                {},
            ),
            ("POST", "faults"): lambda: (201, self._control_fault(body), {}),
            ("DELETE", "faults"): self._control_clear_faults,
            ("POST", "deployments"): lambda: (201, self._with_project(body, sandbox.add_deployment), {}),
            ("POST", "issues"): lambda: (201, self._with_project(body, sandbox.add_issue), {}),
            ("POST", "commits"): lambda: (201, self._with_project(body, sandbox.add_commit), {}),
            ("POST", "pipeline_behaviour"): lambda: (
                200,
                self._with_project(body, sandbox.set_pipeline_behaviour),
                {},
            ),
        }
        if len(rest) == 1 and (method, rest[0]) in routes:
            try:
                return routes[(method, rest[0])]()
            except ScenarioError as exc:
                raise HttpError(400, f"400 Bad request - {exc}") from None
        if len(rest) == 2 and rest[0] == "deployments" and method == "POST":
            if "status" not in body:
                raise HttpError(400, "400 Bad request - status is missing")
            return 200, sandbox.set_deployment_status(int(rest[1]), str(body["status"])), {}
        if len(rest) == 3 and rest[0] == "issues" and rest[2] == "close" and method == "POST":
            project = body.get("project") or self._project_of_issue(int(rest[1]))
            return 200, sandbox.close_issue(project, int(rest[1])), {}
        raise HttpError(404, "404 Not Found")

    def _control_clear_faults(self) -> Answer:
        self.owner.clear_faults()
        return 200, {"faults": []}, {}

    def _control_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("path"):
            raise HttpError(400, "400 Bad request - path is missing (a regex on the request path)")
        options = {
            k: body[k] for k in ("status", "retry_after", "delay_seconds", "after_success") if k in body
        }
        fault = self.owner.inject_fault(
            str(body["path"]),
            str(body.get("kind", "status")),
            method=body.get("method"),
            count=int(body.get("count", 1)),
            **options,
        )
        return {"fault": fault, "faults": [dict(f) for f in self.owner.faults]}

    def _with_project(self, body: dict[str, Any], action: Callable[..., Any]) -> Any:
        spec = dict(body)
        project = spec.pop("project", None)
        if not project:
            raise HttpError(400, "400 Bad request - project is missing (id or path_with_namespace)")
        return action(project, **spec)

    def _project_of_issue(self, iid: int) -> str:
        owners = [
            p.path for p in self.owner.world.projects.values() if any(i["iid"] == iid for i in p.issues)
        ]
        if len(owners) != 1:
            raise HttpError(400 if owners else 404, "give `project`: the issue iid is ambiguous or unknown")
        return owners[0]
