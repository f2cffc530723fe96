"""Sandbox GitLab REST v4 server: the paths, auth, pagination, status codes and JSON shapes the product uses.

Run it with `SANDBOX_GITLAB_TOKEN=… python -m include.sandbox.gitlab_server --scenario FILE --port 18929`,
or in-process with `SandboxGitLab(scenario, token=…).start()`. A control API under `/-/sandbox/` lets tests
advance time, change the world and inject faults. See docs/sandbox.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import yaml

from include.sandbox import gitlab_access as access
from include.sandbox import gitlab_routes as routes
from include.sandbox import gitlab_shapes as shapes
from include.sandbox.gitlab_control import Answer, ControlApi, HttpError
from include.sandbox.gitlab_resources import ResourceApi
from include.sandbox.gitlab_world import (
    GitLabWorld,
    NotFound,
    Project,
    ScenarioError,
    iso,
)
from include.sandbox.lifecycle import serve_until_signalled

FAULT_KINDS = ("status", "rate_limit", "slow", "drop", "malformed_json")
# Gitlab::Database.all_database_names (a name outside it is 400; inside it but not run by the instance, 404)
KNOWN_DATABASES = ("main", "ci", "main_clusterwide", "sec", "embedding", "geo")
GITLAB_VERSION = "17.7.0-sandbox"


class SandboxGitLab:
    """A GitLab API server over a GitLabWorld, on a background thread.

    :param scenario: the world (the YAML scenario, already loaded).
    :param token: the admin token clients send; defaults to the scenario's `token`.
    :param read_only_tokens: tokens that may read but get 403 on writes.
    :param user_tokens: tokens of a non-admin user: full project access, 403 on `/admin/…`.
    :param tokens: more tokens with their user, scopes and role per project (see gitlab_access); also the
        scenario's `tokens` list.
    Raises ValueError without a token and ScenarioError (naming the key) for a scenario it cannot build.
    """

    def __init__(
        self,
        scenario: dict[str, Any],
        token: str | None = None,
        *,
        read_only_tokens: list[str] | None = None,
        user_tokens: list[str] | None = None,
        tokens: list[dict[str, Any]] | None = None,
    ) -> None:
        token = token or (scenario or {}).get("token")
        if not token:
            raise ValueError("the sandbox needs a token: pass token=… or set SANDBOX_GITLAB_TOKEN")
        self.world = GitLabWorld(scenario)
        self.token = str(token)
        self.read_only_tokens = {str(t) for t in read_only_tokens or scenario.get("read_only_tokens") or []}
        self.user_tokens = {str(t) for t in user_tokens or scenario.get("user_tokens") or []}
        self.principals = access.build_principals(
            self.token,
            self.read_only_tokens,
            self.user_tokens,
            list(scenario.get("tokens") or []) + list(tokens or []),
        )
        for principal in self.principals.values():
            self.world.user_id(principal.username)
        self.faults: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @classmethod
    def from_file(cls, path: str | Path, token: str | None = None, **kwargs: Any) -> SandboxGitLab:
        """Load a scenario YAML; errors name the file."""
        path = Path(path)
        try:
            scenario = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
        try:
            return cls(scenario, token, **kwargs)
        except ScenarioError as exc:
            raise ScenarioError(f"{path}: {exc}") from None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> SandboxGitLab:
        """Serve on a background thread; port 0 picks a free port. Returns self."""
        sandbox = self

        class Handler(_Handler):
            owner = sandbox

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        # A short poll interval: stop() (every test's teardown) waits for at most one interval.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-gitlab",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxGitLab:
        return self if self._server else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- Python API for tests -----------------------------------------------------------------------
    def created_pipelines(self, project: str | int) -> list[dict[str, Any]]:
        """Pipelines created through the API (create or trigger), oldest first, with their variables."""
        with self.world.lock:
            proj = self.world.project(project)
            ids = self.world.created_pipelines.get(proj.id, [])
            return [self._pipeline_with_variables(proj, p) for p in proj.pipelines if p["id"] in ids]

    def pipelines(self, project: str | int) -> list[dict[str, Any]]:
        """Every pipeline of the project, scenario ones included."""
        with self.world.lock:
            proj = self.world.project(project)
            return [self._pipeline_with_variables(proj, p) for p in proj.pipelines]

    def deployments(self, project: str | int, environment: str | None = None) -> list[dict[str, Any]]:
        with self.world.lock:
            proj = self.world.project(project)
            return [
                self.deployment_json(proj, d)
                for d in proj.deployments
                if environment in (None, d["environment"])
            ]

    def inject_fault(
        self,
        path: str,
        kind: str = "status",
        *,
        method: str | None = None,
        count: int = 1,
        status: int = 502,
        retry_after: float = 1,
        delay_seconds: float = 2,
        after_success: bool = False,
    ) -> dict[str, Any]:
        """Fail the next `count` requests whose path matches the regex `path` (and `method`, if given)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        try:
            re.compile(path)
        except re.error as exc:
            raise ValueError(f"fault path {path!r} is not a regular expression: {exc}") from exc
        fault = {
            "path": path,
            "kind": kind,
            "method": method.upper() if method else None,
            "count": int(count),
            "status": int(status),
            "retry_after": retry_after,
            "delay_seconds": float(delay_seconds),
            "after_success": bool(after_success),
        }
        with self.world.lock:
            self.faults.append(fault)
        return dict(fault)

    def clear_faults(self) -> None:
        with self.world.lock:
            self.faults.clear()

    def advance_clock(self, seconds: float) -> str:
        """Move sandbox time forward (pipelines progress, relative times shift); returns the new now."""
        self.world.advance(seconds)
        return str(iso(self.world.now()))

    def add_deployment(self, project: str | int, **spec: Any) -> dict[str, Any]:
        with self.world.lock:
            proj = self.world.project(project)
            return self.deployment_json(proj, self.world.add_deployment(proj, spec))

    def set_deployment_status(self, deployment_id: int, status: str) -> dict[str, Any]:
        with self.world.lock:
            for project in self.world.projects.values():
                for deployment in project.deployments:
                    if deployment["id"] == int(deployment_id):
                        self.world.set_deployment_status(deployment, status)
                        return self.deployment_json(project, deployment)
        raise NotFound("404 Deployment Not Found")

    def add_issue(self, project: str | int, **spec: Any) -> dict[str, Any]:
        with self.world.lock:
            proj = self.world.project(project)
            return self.issue_json(proj, self.world.add_issue(proj, spec))

    def close_issue(self, project: str | int, iid: int) -> dict[str, Any]:
        with self.world.lock:
            proj = self.world.project(project)
            issue = next((i for i in proj.issues if i["iid"] == int(iid)), None)
            if issue is None:
                raise NotFound("404 Issue Not Found")
            self.world.close_issue(issue)
            return self.issue_json(proj, issue)

    def add_commit(self, project: str | int, **spec: Any) -> dict[str, Any]:
        with self.world.lock:
            proj = self.world.project(project)
            commit = self.world.add_commit(proj, spec)
            return {"sha": commit["sha"], "files": sorted(commit["files"])}

    def set_pipeline_behaviour(self, project: str | int, **behaviour: Any) -> dict[str, Any]:
        """How the next pipelines created through the API go (result, durations, deployment record)."""
        with self.world.lock:
            proj = self.world.project(project)
            merged = {**proj.behaviour, **behaviour}
            self.world.check_behaviour(merged, f"pipeline_behaviour of {proj.path}")
            proj.behaviour = merged
            return dict(merged)

    def set_pending_migrations(self, database: str, versions: list[int]) -> None:
        """What `GET /admin/migrations/pending?database=…` answers."""
        with self.world.lock:
            self.world.admin_pending[database] = [int(v) for v in versions]

    def add_trigger_token(self, project: str | int, token: str) -> None:
        with self.world.lock:
            self.world.project(project).trigger_tokens.append(token)

    def request_count(self, method: str, template: str) -> int:
        """How many requests hit e.g. ("POST", "/api/v4/projects/:id/pipeline")."""
        with self.world.lock:
            return self.world.requests.get(f"{method.upper()} {template}", 0)

    def state(self) -> dict[str, Any]:
        """The world as the control API shows it."""
        world = self.world
        with world.lock:
            projects = {}
            for project in world.projects.values():
                projects[project.path] = {
                    "id": project.id,
                    "deployments": [self.deployment_json(project, d) for d in project.deployments],
                    "pipelines": [self._pipeline_with_variables(project, p) for p in project.pipelines],
                    "created_pipelines": len(world.created_pipelines.get(project.id, [])),
                    "issues": [self.issue_json(project, i) for i in project.issues],
                    "commits": [
                        {"sha": c["sha"], "message": c["message"], "files": sorted(c["files"])}
                        for c in sorted(project.commits.values(), key=lambda c: c["order"])
                    ],
                    "pipeline_behaviour": dict(project.behaviour),
                }
            return {
                "now": iso(world.now()),
                "projects": projects,
                "admin_pending_migrations": {k: list(v) for k, v in world.admin_pending.items()},
                "requests": dict(sorted(world.requests.items())),
                "faults": [dict(f) for f in self.faults],
                "notes": list(world.notes),
            }

    # -- JSON shapes (kept here for callers that render one object) ---------------------------------
    def pipeline_json(self, project: Project, pipeline: dict[str, Any]) -> dict[str, Any]:
        return shapes.pipeline_json(self.world, project, pipeline, self.url)

    def deployment_json(self, project: Project, deployment: dict[str, Any]) -> dict[str, Any]:
        return shapes.deployment_json(self.world, project, deployment, self.url)

    def issue_json(self, project: Project, issue: dict[str, Any]) -> dict[str, Any]:
        return shapes.issue_json(project, issue, self.url)

    def _pipeline_with_variables(self, project: Project, pipeline: dict[str, Any]) -> dict[str, Any]:
        return {**self.pipeline_json(project, pipeline), "variables": dict(pipeline["variables"])}


# -- request handling ---------------------------------------------------------------------------------
class _Handler(ResourceApi, ControlApi, BaseHTTPRequestHandler):
    owner: SandboxGitLab
    protocol_version = "HTTP/1.1"
    server_version = "SandboxGitLab/1.0"
    # Headers and body leave in two writes; with Nagle on, a keep-alive client waits ~40 ms (delayed ACK)
    # on every request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the state API instead
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing -----------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        # Split before unquoting: an encoded project path or file path (%2F) stays one segment.
        segments = [unquote(s) for s in split.path.split("/")[1:]]
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        sandbox = self.owner
        control = segments[:2] == ["-", "sandbox"]
        with sandbox.world.lock:
            key = f"{method} {_template(segments)}"
            sandbox.world.requests[key] = sandbox.world.requests.get(key, 0) + 1
        fault = None if control else self._take_fault(method, split.path)
        if fault and not fault["after_success"] and self._apply_fault(fault):
            return
        try:
            body = self._body(raw)
            if control:
                if self._token() != sandbox.token:
                    raise HttpError(401 if self._token() not in sandbox.principals else 403, "403 Forbidden")
                with sandbox.world.lock:
                    answer = self._control(method, segments[2:], body)
            elif segments[:2] == ["api", "v4"]:
                answer = self._api(method, segments[2:], query, body)
            elif method == "GET" and len(segments) >= 4 and segments[-2] == "pipelines" and "-" in segments:
                answer = self._pipeline_page(segments)
            else:
                raise HttpError(404, "404 Not Found")
        except HttpError as exc:
            answer = (exc.status, {"message": exc.message}, {})
        except access.Refusal as exc:
            answer = (exc.status, exc.body, {})
        except NotFound as exc:
            answer = (404, {"message": exc.what}, {})
        except (KeyError, ValueError, TypeError) as exc:
            answer = (400, {"message": f"400 Bad request - {exc}"}, {})
        if fault and fault["after_success"] and self._apply_fault(fault):
            return
        self._send(*answer)

    def _body(self, raw: bytes) -> dict[str, Any]:
        if not raw:
            return {}
        if "json" in self.headers.get("Content-Type", ""):
            try:
                data = json.loads(raw)
            except ValueError:
                raise HttpError(400, "400 Bad request - the body is not valid JSON") from None
            if not isinstance(data, dict):
                raise HttpError(400, "400 Bad request - the body must be a JSON object")
            return data
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in form.items()}

    def _token(self) -> str:
        sent = self.headers.get("PRIVATE-TOKEN") or self.headers.get("JOB-TOKEN") or ""
        bearer = self.headers.get("Authorization", "")
        if not sent and bearer.lower().startswith("bearer "):
            sent = bearer[7:].strip()
        return sent

    def _principal(self) -> access.Principal:
        """The caller; 401 for a missing or unknown token."""
        principal = self.owner.principals.get(self._token())
        if principal is None:
            raise HttpError(401, "401 Unauthorized")
        return principal

    def _take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        with self.owner.world.lock:
            for fault in self.owner.faults:
                if fault["count"] <= 0 or (fault.get("method") and fault["method"] != method):
                    continue
                if not re.search(fault["path"], path):
                    continue
                fault["count"] -= 1
                return dict(fault)
        return None

    def _apply_fault(self, fault: dict[str, Any]) -> bool:
        """Serve the fault; True when the response is done (or the connection dropped)."""
        kind = fault["kind"]
        if kind == "slow":
            time.sleep(float(fault.get("delay_seconds", 2)))
            return False
        if kind == "drop":  # the client sees the connection close with no answer
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if kind == "rate_limit":
            retry_after = fault.get("retry_after", 1)
            self._send(
                429,
                {"message": "429 Too Many Requests"},
                {
                    "Retry-After": str(int(float(retry_after))),
                    "RateLimit-Limit": "600",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(int(time.time() + float(retry_after))),
                },
            )
            return True
        if kind == "malformed_json":
            self._send(200, b'{"id": 1, "status": ', {"Content-Type": "application/json"})
            return True
        status = int(fault.get("status", 502))
        self._send(status, {"message": f"{status} sandbox fault"}, {})
        return True

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        headers = dict(headers)
        if isinstance(payload, bytes):
            data, content_type = payload, headers.pop("Content-Type", "text/plain; charset=utf-8")
        elif isinstance(payload, str):
            data, content_type = payload.encode(), headers.pop("Content-Type", "text/html; charset=utf-8")
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout in a test)
            self.close_connection = True

    # -- pagination ---------------------------------------------------------------------------------
    def _page(
        self, items: list[Any], query: dict[str, str], render: Callable[[Any], Any] | None = None
    ) -> Answer:
        """GitLab's offset pagination: page/per_page and the X-* and Link headers python-gitlab follows."""
        try:
            page = max(1, int(query.get("page") or 1))
            per_page = min(100, max(1, int(query.get("per_page") or 20)))
        except ValueError:
            raise HttpError(400, "400 Bad request - page and per_page must be integers") from None
        total = len(items)
        pages = max(1, -(-total // per_page))
        host = self.headers.get("Host") or urlsplit(self.owner.url).netloc
        path = urlsplit(self.path).path

        def link(number: int) -> str:
            return f"http://{host}{path}?{urlencode({**query, 'page': number, 'per_page': per_page})}"

        links = []
        if page < pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        if 1 < page <= pages:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        links += [f'<{link(1)}>; rel="first"', f'<{link(pages)}>; rel="last"']
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(total),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if 1 < page <= pages else "",
            "Link": ", ".join(links),
        }
        chosen = items[(page - 1) * per_page : page * per_page]
        return 200, [render(item) for item in chosen] if render else chosen, headers

    # -- REST API -----------------------------------------------------------------------------------
    def _api(self, method: str, path: list[str], query: dict[str, str], body: dict[str, Any]) -> Answer:
        """Route a REST call by the table of gitlab_routes.py, refusing it as GitLab would first."""
        world = self.owner.world
        found = routes.match(method, path)
        # A pipeline trigger authenticates with the trigger token in the request, not a personal token.
        who = self._principal() if found is None or found[0].authenticated else None
        with world.lock:
            project = None
            if len(path) >= 2 and path[0] == "projects":
                if found is not None and not found[0].authenticated:
                    project = world.project(path[1])
                else:
                    try:
                        project = world.project(path[1])
                    except NotFound:
                        raise HttpError(404, "404 Project Not Found") from None
            if found is None:
                raise HttpError(404, "404 Not Found")
            route, params, rest = found
            request = routes.Request(method, path, who, project, params, rest, query, body)
            if route.endpoint is not None and who is not None:
                request.level = access.require(who, route.endpoint, project, write=method != "GET")
            handler: Callable[[routes.Request], Answer] = getattr(self, route.handler)
            return handler(request)

    def route_version(self, request: routes.Request) -> Answer:
        return 200, {"version": GITLAB_VERSION, "revision": "sandbox", "enterprise": True}, {}

    def route_admin_migrations(self, request: routes.Request) -> Answer:
        return self._admin_migrations(request.method, request.rest, request.query)

    def _admin_migrations(self, method: str, rest: list[str], query: dict[str, str]) -> Answer:
        world = self.owner.world
        if not world.admin_migrations_endpoint:
            raise HttpError(404, "404 Not Found")  # an instance older than the endpoint
        database = query.get("database") or "main"
        if database not in KNOWN_DATABASES:
            raise access.Refusal(400, {"error": "database does not have a valid value"})
        if database not in world.admin_pending:
            raise HttpError(404, f"404 Database '{database}' is not configured Not Found")
        if rest == ["pending"] and method == "GET":
            answer = shapes.admin_pending_json(database, world.admin_pending[database], world.admin_names)
            return 200, answer, {}
        if len(rest) == 2 and rest[1] == "mark" and method == "POST":
            version = int(rest[0])
            if version not in world.admin_pending[database]:
                raise HttpError(422, "Migration is already marked as successful or does not exist")
            world.admin_pending[database].remove(version)
            return 201, {}, {}
        raise HttpError(404, "404 Not Found")


def _template(segments: list[str]) -> str:
    """The request path with ids replaced, for the request counters: /api/v4/projects/:id/pipelines/:id."""
    parts = []
    for index, segment in enumerate(segments):
        previous = segments[index - 1] if index else ""
        if (
            previous in ("projects", "deployments", "pipelines", "commits", "issues", "environments")
            and segment
        ):
            parts.append(":id")
        elif previous == "files" and segment:
            parts.append(":file_path")
        elif previous == "migrations" and segment.isdigit():
            parts.append(":version")
        else:
            parts.append(segment)
    return "/" + "/".join(quote(p, safe=":-_.") for p in parts)


def main(argv: list[str] | None = None) -> int:
    """The CLI: serve a scenario until SIGTERM/SIGINT; the token comes from SANDBOX_GITLAB_TOKEN."""
    parser = argparse.ArgumentParser(description="Sandbox GitLab API server for the PDM Orchestrator.")
    parser.add_argument("--scenario", required=True, help="scenario YAML file (see docs/sandbox.md)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18929)
    args = parser.parse_args(argv)
    token = os.environ.get("SANDBOX_GITLAB_TOKEN", "")
    if not token:
        print("error: set SANDBOX_GITLAB_TOKEN to the token clients must send", file=sys.stderr)
        return 2
    try:
        sandbox = SandboxGitLab.from_file(args.scenario, token).start(args.host, args.port)
    except (OSError, ScenarioError, ValueError) as exc:
        print(f"error: cannot start the sandbox GitLab from {args.scenario}: {exc}", file=sys.stderr)
        return 1
    print(f"sandbox GitLab serving {args.scenario} at {sandbox.url}", flush=True)
    return serve_until_signalled(sandbox.stop)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["FAULT_KINDS", "HttpError", "SandboxGitLab", "ScenarioError", "main"]
