"""The sandbox GitLab's REST routes as one table: method, path pattern, endpoint id (its least role) and handler.

GitLab declares each route once (Grape's `get ':id/deployments'`), and python-gitlab declares its paths as
data; the sandbox does the same. A row's endpoint id names its row in gitlab_api.yaml, whose `role` is the
least role the caller needs (`gitlab_access.require` refuses as GitLab does: 404 for a non-member, 403 below
the role, 403 insufficient_scope for a write without `api`). A row without one checks inside its handler
(the pipeline actions) or needs any authenticated user. The first row that matches wins, so a specific
row comes before a general one.

Patterns: segments separated by `/`; `:name` takes one segment; a final `*` takes the rest (zero or more).
Adding an endpoint: its row in gitlab_api.yaml (request, role, entity), a row here, the handler method on
the server's handler class (`gitlab_resources.py` for project resources), and a contract test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from include.sandbox.gitlab_access import Principal
from include.sandbox.gitlab_world import Project


@dataclass(frozen=True)
class Route:
    """One REST route: `method` ("*" for any), `pattern`, `endpoint` id (None: see the module doc), `handler`.

    `authenticated=False` for the one route that authenticates with a token of its own (pipeline triggers).
    """

    method: str
    pattern: str
    endpoint: str | None
    handler: str
    authenticated: bool = True

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.pattern.split("/"))


@dataclass
class Request:
    """What a handler gets: the caller, the project of a `projects/:id/…` route, the captured segments."""

    method: str
    path: list[str]
    who: Principal | None
    project: Project | None
    params: dict[str, str]
    rest: list[str]
    query: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)
    level: int = 0  # the caller's role level in the project, as the route's check found it

    @property
    def tail(self) -> list[str]:
        """The segments after `projects/:id/<resource>`: what the resource handlers read."""
        return self.path[3:]


ROUTES: tuple[Route, ...] = (
    Route("POST", "projects/:id/trigger/pipeline", None, "route_trigger", authenticated=False),
    Route("GET", "version", None, "route_version"),
    Route("GET", "user", None, "route_user"),
    Route("GET", "personal_access_tokens/self", None, "route_token_self"),
    Route("*", "admin/migrations/*", "admin_pending_migrations", "route_admin_migrations"),
    Route("GET", "issues", None, "route_issues"),
    Route("GET", "projects/:id", "get_project", "route_project"),
    Route("GET", "projects/:id/deployments", "list_deployments", "route_deployments"),
    Route("GET", "projects/:id/deployments/*", "get_deployment", "route_deployments"),
    Route("POST", "projects/:id/deployments/*", "create_deployment", "route_deployments"),
    Route("*", "projects/:id/deployments/*", "update_deployment", "route_deployments"),
    Route("GET", "projects/:id/environments/*", "list_deployments", "route_environments"),
    Route("GET", "projects/:id/repository/files/*", "raw_file", "route_repository"),
    Route("GET", "projects/:id/repository/tree/*", "tree", "route_repository"),
    Route("GET", "projects/:id/repository/*", "compare", "route_repository"),
    Route("POST", "projects/:id/pipeline", "create_pipeline", "route_create_pipeline"),
    Route("*", "projects/:id/pipelines", "list_pipelines", "route_pipelines"),
    Route("*", "projects/:id/pipelines/:pipeline_id/cancel", "cancel_pipeline", "route_pipelines"),
    Route("*", "projects/:id/pipelines/:pipeline_id/retry", "cancel_pipeline", "route_pipelines"),
    Route("*", "projects/:id/pipelines/*", "get_pipeline", "route_pipelines"),
    Route("GET", "projects/:id/issues/*", "list_issues", "route_project_issues"),
)


def match(method: str, path: list[str]) -> tuple[Route, dict[str, str], list[str]] | None:
    """The first route for `method` and `path` with its `:name` captures and the `*` rest, or None."""
    for route in ROUTES:
        if route.method not in ("*", method):
            continue
        found = _match(route.segments, path)
        if found is not None:
            return route, found[0], found[1]
    return None


def _match(pattern: tuple[str, ...], path: list[str]) -> tuple[dict[str, str], list[str]] | None:
    params: dict[str, str] = {}
    for index, part in enumerate(pattern):
        if part == "*" and index == len(pattern) - 1:
            return params, list(path[index:])
        if index >= len(path):
            return None
        if part.startswith(":"):
            params[part[1:]] = path[index]
        elif part != path[index]:
            return None
    return (params, []) if len(path) == len(pattern) else None
