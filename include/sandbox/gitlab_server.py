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
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import yaml

from include.sandbox.gitlab_world import GitLabWorld, NotFound, Project, iso
from include.sandbox.lifecycle import serve_until_signalled

FINISHED = ("success", "failed", "canceled", "skipped")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SandboxGitLab:
    """A GitLab API server over a GitLabWorld, on a background thread."""

    def __init__(
        self,
        scenario: dict[str, Any],
        token: str,
        *,
        read_only_tokens: list[str] | None = None,
        user_tokens: list[str] | None = None,
    ) -> None:
        if not token:
            raise ValueError("the sandbox needs a token (SANDBOX_GITLAB_TOKEN)")
        self.world = GitLabWorld(scenario)
        self.token = token
        self.read_only_tokens = set(read_only_tokens or scenario.get("read_only_tokens") or [])
        self.user_tokens = set(user_tokens or scenario.get("user_tokens") or [])  # not admin
        self.faults: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @classmethod
    def from_file(cls, path: str | Path, token: str, **kwargs: Any) -> SandboxGitLab:
        return cls(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}, token, **kwargs)

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> SandboxGitLab:
        sandbox = self

        class Handler(_Handler):
            owner = sandbox

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-gitlab", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SandboxGitLab:
        return self if self._server else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers -------------------------------------------------------------------------------
    def created_pipelines(self, project: str | int) -> list[dict[str, Any]]:
        with self.world.lock:
            proj = self.world.project(project)
            ids = self.world.created_pipelines.get(proj.id, [])
            return [
                {**self.pipeline_json(proj, p), "variables": dict(p["variables"])}
                for p in proj.pipelines
                if p["id"] in ids
            ]

    def deployments(self, project: str | int, environment: str | None = None) -> list[dict[str, Any]]:
        with self.world.lock:
            proj = self.world.project(project)
            return [
                self.deployment_json(proj, d)
                for d in proj.deployments
                if environment in (None, d["environment"])
            ]

    def inject_fault(
        self, path: str, kind: str = "status", *, method: str | None = None, count: int = 1, **options: Any
    ) -> None:
        with self.world.lock:
            self.faults.append({"path": path, "kind": kind, "method": method, "count": count, **options})

    def clear_faults(self) -> None:
        with self.world.lock:
            self.faults.clear()

    def advance_clock(self, seconds: float) -> None:
        self.world.advance(seconds)

    def add_deployment(self, project: str | int, **spec: Any) -> dict[str, Any]:
        proj = self.world.project(project)
        return self.deployment_json(proj, self.world.add_deployment(proj, spec))

    def add_issue(self, project: str | int, **spec: Any) -> dict[str, Any]:
        proj = self.world.project(project)
        return self.issue_json(proj, self.world.add_issue(proj, spec))

    def set_pipeline_behaviour(self, project: str | int, **behaviour: Any) -> None:
        proj = self.world.project(project)
        with self.world.lock:
            proj.behaviour.update(behaviour)

    # -- JSON shapes --------------------------------------------------------------------------------
    def pipeline_json(self, project: Project, pipeline: dict[str, Any]) -> dict[str, Any]:
        state = self.world.pipeline_state(pipeline)
        started, finished = state["started_at"], state["finished_at"]
        duration = int((finished - started).total_seconds()) if started and finished else None
        return {
            "id": pipeline["id"],
            "iid": pipeline["iid"],
            "project_id": project.id,
            "sha": pipeline["sha"],
            "ref": pipeline["ref"],
            "status": state["status"],
            "source": pipeline["source"],
            "created_at": iso(pipeline["created_at"]),
            "updated_at": iso(finished or started or pipeline["created_at"]),
            "started_at": iso(started),
            "finished_at": iso(finished),
            "duration": duration,
            "queued_duration": 0,
            "web_url": f"{self.url}/{project.path}/-/pipelines/{pipeline['id']}",
            "user": _user(),
        }

    def deployment_json(self, project: Project, deployment: dict[str, Any]) -> dict[str, Any]:
        current = self.world.deployment_state(deployment)
        env_id = self.world.environment_id(project, current["environment"])
        deployable = None
        if current.get("pipeline_id"):
            deployable = {
                "id": current["pipeline_id"] * 10,
                "status": current["status"],
                "pipeline": {"id": current["pipeline_id"]},
            }
        return {
            "id": current["id"],
            "iid": current["iid"],
            "ref": current["ref"],
            "sha": current["sha"],
            "created_at": iso(current["created_at"]),
            "updated_at": iso(current["updated_at"]),
            "finished_at": iso(current["finished_at"]),
            "status": current["status"],
            "user": _user(),
            "environment": {
                "id": env_id,
                "name": current["environment"],
                "slug": re.sub(r"[^a-z0-9]+", "-", current["environment"].lower()),
                "external_url": None,
                "state": "available",
                "tier": "production" if "prd" in current["environment"] else "staging",
            },
            "deployable": deployable,
        }

    def issue_json(self, project: Project, issue: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": issue["id"],
            "iid": issue["iid"],
            "project_id": project.id,
            "title": issue["title"],
            "state": issue["state"],
            "labels": issue["labels"],
            "created_at": iso(issue["created_at"]),
            "updated_at": iso(issue["updated_at"]),
            "web_url": f"{self.url}/{project.path}/-/issues/{issue['iid']}",
        }


def _user() -> dict[str, Any]:
    return {"id": 1, "username": "sandbox-bot", "name": "Sandbox Bot", "state": "active"}


class _Handler(BaseHTTPRequestHandler):
    owner: SandboxGitLab
    protocol_version = "HTTP/1.1"
    server_version = "SandboxGitLab/1.0"

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
        segments = [unquote(s) for s in split.path.split("/")[1:]]
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = self._body(raw, query)
        sandbox = self.owner
        template = _template(segments)
        with sandbox.world.lock:
            key = f"{method} {template}"
            sandbox.world.requests[key] = sandbox.world.requests.get(key, 0) + 1
        fault = self._take_fault(method, split.path)
        if fault and not fault.get("after_success"):
            if self._apply_fault(fault):
                return
        try:
            if segments[:2] == ["-", "sandbox"]:
                self._authorize(write=False)
                status, payload, headers = self._control(method, segments[2:], body)
            elif segments[:2] == ["api", "v4"]:
                self._authorize(write=method != "GET", admin=segments[2:3] == ["admin"])
                status, payload, headers = self._api(method, segments[2:], query, body)
            elif len(segments) >= 4 and "-" in segments and segments[-2] == "pipelines":
                status, payload, headers = self._pipeline_page(segments)
            else:
                raise HttpError(404, "404 Not Found")
        except HttpError as exc:
            status, payload, headers = exc.status, {"message": exc.message}, {}
        except NotFound as exc:
            status, payload, headers = 404, {"message": exc.what}, {}
        except (KeyError, ValueError, TypeError) as exc:
            status, payload, headers = 400, {"message": f"400 Bad request - {exc}"}, {}
        if fault and fault.get("after_success"):
            if self._apply_fault(fault):
                return
        self._send(status, payload, headers, malformed=False)

    def _body(self, raw: bytes, query: dict[str, str]) -> dict[str, Any]:
        if not raw:
            return {}
        content_type = self.headers.get("Content-Type", "")
        if "json" in content_type:
            try:
                data = json.loads(raw)
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in form.items()}

    def _authorize(self, write: bool, admin: bool = False) -> None:
        sandbox = self.owner
        auth = self.headers.get("PRIVATE-TOKEN") or self.headers.get("JOB-TOKEN") or ""
        bearer = self.headers.get("Authorization", "")
        if not auth and bearer.startswith("Bearer "):
            auth = bearer[7:]
        known = {sandbox.token} | sandbox.read_only_tokens | sandbox.user_tokens
        if auth not in known:
            raise HttpError(401, "401 Unauthorized")
        if write and auth in sandbox.read_only_tokens:
            raise HttpError(403, "403 Forbidden")
        if admin and auth != sandbox.token:
            raise HttpError(403, "403 Forbidden")

    def _take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        sandbox = self.owner
        with sandbox.world.lock:
            for fault in sandbox.faults:
                if fault["count"] <= 0:
                    continue
                if fault.get("method") and fault["method"].upper() != method:
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
        if kind == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return True
        if kind == "rate_limit":
            self._send(
                429, {"message": "429 Too Many Requests"}, {"Retry-After": str(fault.get("retry_after", 1))}
            )
            return True
        if kind == "malformed_json":
            self._send(200, None, {}, malformed=True)
            return True
        status = int(fault.get("status", 502))
        self._send(status, {"message": f"{status} sandbox fault"}, {})
        return True

    def _send(self, status: int, payload: Any, headers: dict[str, str], malformed: bool = False) -> None:
        if isinstance(payload, bytes):
            data, content_type = payload, headers.pop("Content-Type", "text/plain; charset=utf-8")
        elif isinstance(payload, str):
            data, content_type = payload.encode(), headers.pop("Content-Type", "text/html; charset=utf-8")
        else:
            data = b'{"id": 1, "status": ' if malformed else json.dumps(payload).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    # -- pagination ---------------------------------------------------------------------------------
    def _page(self, items: list[Any], query: dict[str, str]) -> tuple[int, list[Any], dict[str, str]]:
        try:
            page = max(1, int(query.get("page") or 1))
            per_page = min(100, max(1, int(query.get("per_page") or 20)))
        except ValueError as exc:
            raise HttpError(400, f"400 Bad request - page and per_page must be integers ({exc})") from None
        total = len(items)
        pages = max(1, -(-total // per_page))
        chosen = items[(page - 1) * per_page : page * per_page]
        split = urlsplit(self.path)
        host = self.headers.get("Host") or urlsplit(self.owner.url).netloc

        def link(number: int) -> str:
            params = dict(query, page=str(number), per_page=str(per_page))
            return f"http://{host}{split.path}?{urlencode(params)}"

        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(total),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        links = []
        if page < pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        links.append(f'<{link(1)}>; rel="first"')
        links.append(f'<{link(pages)}>; rel="last"')
        headers["Link"] = ", ".join(links)
        return 200, chosen, headers

    # -- REST API -----------------------------------------------------------------------------------
    def _api(self, method: str, path: list[str], query: dict[str, str], body: dict[str, Any]):
        world = self.owner.world
        if path == ["version"]:
            return 200, {"version": "17.6.0-sandbox", "revision": "sandbox"}, {}
        if path == ["user"]:
            return 200, {**_user(), "is_admin": True}, {}
        if path[:3] == ["admin", "migrations", "pending"]:
            database = query.get("database") or "main"
            if database not in world.admin_pending:
                raise HttpError(400, f"400 Bad request - unknown database {database!r}")
            return 200, [{"version": v, "filename": None} for v in world.admin_pending[database]], {}
        if len(path) >= 2 and path[0] == "projects":
            with world.lock:
                project = world.project(path[1])
                return self._project_api(method, project, path[2:], query, body)
        raise HttpError(404, "404 Not Found")

    def _project_api(
        self, method: str, project: Project, rest: list[str], query: dict[str, str], body: dict[str, Any]
    ):
        sandbox, world = self.owner, self.owner.world
        if not rest:
            return 200, project.summary(sandbox.url), {}
        head = rest[0]
        if head == "deployments":
            if len(rest) == 1 and method == "GET":
                return self._page(self._deployments(project, query), query)
            if len(rest) == 1 and method == "POST":
                for required in ("environment", "sha", "ref", "status"):
                    if not body.get(required):
                        raise HttpError(400, f"400 Bad request - {required} is missing")
                created = world.add_deployment(project, {**body, "tag": bool(body.get("tag"))})
                return 201, sandbox.deployment_json(project, created), {}
            deployment = next((d for d in project.deployments if str(d["id"]) == rest[1]), None)
            if deployment is None:
                raise HttpError(404, "404 Deployment Not Found")
            if method == "PUT":
                status = body.get("status")
                if status not in ("running", "success", "failed", "canceled"):
                    raise HttpError(400, "400 Bad request - status does not have a valid value")
                deployment["status"] = status
                deployment["updated_at"] = world.now()
                if status in ("success", "failed", "canceled"):
                    deployment["finished_at"] = world.now()
            return 200, sandbox.deployment_json(project, deployment), {}
        if head == "environments" and method == "GET":
            names = sorted({d["environment"] for d in project.deployments})
            if query.get("name"):
                names = [n for n in names if n == query["name"]]
            if query.get("search"):
                names = [n for n in names if query["search"] in n]
            items = [{"id": world.environment_id(project, n), "name": n, "state": "available"} for n in names]
            return self._page(items, query)
        if head == "repository":
            return self._repository(project, rest[1:], query)
        if head == "pipeline" and method == "POST":
            return 201, self._create_pipeline(project, body), {}
        if head == "trigger" and rest[1:] == ["pipeline"] and method == "POST":
            token = body.get("token") or query.get("token")
            if token not in project.trigger_tokens and token != os.environ.get(
                "SANDBOX_GITLAB_TRIGGER_TOKEN", "\0"
            ):
                raise HttpError(404, "404 Not Found")
            variables = {k[10:-1]: v for k, v in {**query, **body}.items() if k.startswith("variables[")}
            if isinstance(body.get("variables"), dict):
                variables.update({str(k): str(v) for k, v in body["variables"].items()})
            return (
                201,
                self._create_pipeline(
                    project,
                    {"ref": body.get("ref") or query.get("ref"), "variables": variables},
                    source="trigger",
                ),
                {},
            )
        if head == "pipelines":
            return self._pipelines(method, project, rest[1:], query)
        if head == "issues" and method == "GET":
            return self._page(self._issues(project, query), query)
        raise HttpError(404, "404 Not Found")

    def _deployments(self, project: Project, query: dict[str, str]) -> list[dict[str, Any]]:
        sandbox = self.owner
        items = [sandbox.world.deployment_state(d) for d in project.deployments]
        if query.get("environment"):
            items = [d for d in items if d["environment"] == query["environment"]]
        if query.get("status"):
            items = [d for d in items if d["status"] == query["status"]]
        for key, field_name, compare in (
            ("updated_after", "updated_at", lambda a, b: a > b),
            ("updated_before", "updated_at", lambda a, b: a < b),
            ("finished_after", "finished_at", lambda a, b: a > b),
            ("finished_before", "finished_at", lambda a, b: a < b),
        ):
            if query.get(key):
                bound = sandbox.world.when(query[key])
                items = [d for d in items if d[field_name] is not None and compare(d[field_name], bound)]
        order = query.get("order_by") or "id"
        if order not in ("id", "iid", "created_at", "updated_at", "finished_at", "ref"):
            raise HttpError(400, "400 Bad request - order_by does not have a valid value")
        if order == "finished_at" and query.get("status") != "success":
            raise HttpError(400, "400 Bad request - order_by finished_at requires status success")
        minimum = datetime.min.replace(tzinfo=UTC)
        items.sort(
            key=lambda d: (d[order] or minimum, d["id"]) if order.endswith("_at") else (d[order], d["id"])
        )
        if (query.get("sort") or "asc") == "desc":
            items.reverse()
        by_id = {d["id"]: d for d in project.deployments}
        return [sandbox.deployment_json(project, by_id[d["id"]]) for d in items]

    def _repository(self, project: Project, rest: list[str], query: dict[str, str]):
        world = self.owner.world
        if rest == ["compare"]:
            old = world.commit(project, query["from"])
            new = world.commit(project, query["to"])
            diffs = []
            for path in sorted(set(old["files"]) | set(new["files"])):
                before, after = old["files"].get(path), new["files"].get(path)
                if before == after:
                    continue
                renamed_from = None
                if before is None:
                    renamed_from = next(
                        (p for p, c in old["files"].items() if c == after and p not in new["files"]), None
                    )
                if (
                    before is not None
                    and after is None
                    and any(c == before and p not in old["files"] for p, c in new["files"].items())
                ):
                    continue  # shown as the rename of the new path
                diffs.append(
                    {
                        "old_path": renamed_from or path,
                        "new_path": path,
                        "a_mode": None if before is None and not renamed_from else "100644",
                        "b_mode": None if after is None else "100644",
                        "new_file": before is None and renamed_from is None,
                        "renamed_file": renamed_from is not None,
                        "deleted_file": after is None,
                        "diff": "",
                    }
                )
            commits = [
                {
                    "id": c["sha"],
                    "short_id": c["sha"][:8],
                    "title": c["message"],
                    "created_at": iso(c["created_at"]),
                }
                for c in sorted(project.commits.values(), key=lambda c: c["order"])
                if old["order"] < c["order"] <= new["order"]
            ]
            return (
                200,
                {
                    "commit": commits[-1] if commits else None,
                    "commits": commits,
                    "diffs": diffs,
                    "compare_timeout": False,
                    "compare_same_ref": old["sha"] == new["sha"],
                    "web_url": f"{self.owner.url}/{project.path}/-/compare/{old['sha'][:8]}...{new['sha'][:8]}",
                },
                {},
            )
        if len(rest) >= 2 and rest[0] == "files":
            file_path = rest[1]
            commit = world.commit(project, query.get("ref") or project.default_branch)
            if file_path not in commit["files"]:
                raise HttpError(404, "404 File Not Found")
            content = commit["files"][file_path].encode()
            if rest[2:] == ["raw"]:
                return 200, content, {"Content-Type": "text/plain; charset=utf-8"}
            import base64

            return (
                200,
                {
                    "file_name": file_path.rsplit("/", 1)[-1],
                    "file_path": file_path,
                    "size": len(content),
                    "encoding": "base64",
                    "content": base64.b64encode(content).decode(),
                    "ref": query.get("ref"),
                    "commit_id": commit["sha"],
                },
                {},
            )
        if len(rest) == 2 and rest[0] == "commits":
            commit = world.commit(project, rest[1])
            return (
                200,
                {
                    "id": commit["sha"],
                    "short_id": commit["sha"][:8],
                    "title": commit["message"],
                    "created_at": iso(commit["created_at"]),
                },
                {},
            )
        raise HttpError(404, "404 Not Found")

    def _create_pipeline(self, project: Project, body: dict[str, Any], source: str = "api") -> dict[str, Any]:
        ref = body.get("ref")
        if not ref:
            raise HttpError(400, "400 Bad request - ref is missing")
        variables = body.get("variables") or {}
        if isinstance(variables, list):
            variables = {str(v["key"]): str(v.get("value", "")) for v in variables}
        pipeline = self.owner.world.add_pipeline(
            project, {"ref": ref, "variables": variables, "source": source}, created_via_api=True
        )
        return self.owner.pipeline_json(project, pipeline)

    def _pipelines(self, method: str, project: Project, rest: list[str], query: dict[str, str]):
        sandbox = self.owner
        if not rest and method == "GET":
            items = [(p, sandbox.pipeline_json(project, p)) for p in project.pipelines]
            for key in ("status", "ref", "sha", "source"):
                if query.get(key):
                    items = [(p, j) for p, j in items if j[key] == query[key]]
            if query.get("updated_after"):
                bound = sandbox.world.when(query["updated_after"])
                items = [(p, j) for p, j in items if sandbox.world.when(j["updated_at"]) > bound]
            if query.get("updated_before"):
                bound = sandbox.world.when(query["updated_before"])
                items = [(p, j) for p, j in items if sandbox.world.when(j["updated_at"]) < bound]
            order = query.get("order_by") or "id"
            if order not in ("id", "status", "ref", "updated_at", "user_id"):
                raise HttpError(400, "400 Bad request - order_by does not have a valid value")
            order = "id" if order == "user_id" else order
            items.sort(key=lambda pj: (pj[1][order], pj[1]["id"]))
            if (query.get("sort") or "desc") == "desc":
                items.reverse()
            return self._page([j for _, j in items], query)
        pipeline = next((p for p in project.pipelines if str(p["id"]) == rest[0]), None)
        if pipeline is None:
            raise HttpError(404, "404 Not found")
        if rest[1:] == [] and method == "GET":
            return 200, sandbox.pipeline_json(project, pipeline), {}
        if rest[1:] == ["variables"] and method == "GET":
            items = [
                {"key": k, "value": v, "variable_type": "env_var"} for k, v in pipeline["variables"].items()
            ]
            return 200, items, {}
        if rest[1:] == ["cancel"] and method == "POST":
            if sandbox.world.pipeline_state(pipeline)["status"] not in FINISHED:
                pipeline["canceled_at"] = sandbox.world.now()
            return 200, sandbox.pipeline_json(project, pipeline), {}
        if rest[1:] == ["retry"] and method == "POST":
            if sandbox.world.pipeline_state(pipeline)["status"] in ("failed", "canceled"):
                pipeline["created_at"] = sandbox.world.now()
                pipeline["canceled_at"] = None
                pipeline["fixed_status"] = None if pipeline["fixed_status"] is None else "pending"
                pipeline["result"] = project.behaviour.get("result", "success")
            return 201, sandbox.pipeline_json(project, pipeline), {}
        raise HttpError(404, "404 Not Found")

    def _issues(self, project: Project, query: dict[str, str]) -> list[dict[str, Any]]:
        sandbox = self.owner
        items = list(project.issues)
        state = query.get("state") or "all"
        if state != "all":
            items = [i for i in items if i["state"] == state]
        if query.get("labels"):
            wanted = [label.strip() for label in query["labels"].split(",") if label.strip()]
            items = [i for i in items if all(label in i["labels"] for label in wanted)]
        if query.get("search"):
            items = [i for i in items if query["search"].lower() in i["title"].lower()]
        for key in ("created_after", "updated_after"):
            if query.get(key):
                bound = sandbox.world.when(query[key])
                items = [i for i in items if i[key.replace("_after", "_at")] > bound]
        items.sort(key=lambda i: i["created_at"], reverse=(query.get("sort") or "desc") == "desc")
        return [sandbox.issue_json(project, i) for i in items]

    def _pipeline_page(self, segments: list[str]):
        dash = segments.index("-")
        project = self.owner.world.project("/".join(segments[:dash]))
        pipeline = next((p for p in project.pipelines if str(p["id"]) == segments[-1]), None)
        if pipeline is None:
            raise HttpError(404, "404 Not found")
        data = self.owner.pipeline_json(project, pipeline)
        variables = "".join(f"<li><code>{k}={v}</code></li>" for k, v in pipeline["variables"].items())
        return (
            200,
            (
                f"<!doctype html><html><head><title>Pipeline #{data['id']}</title></head><body>"
                f"<h1>{project.path} · pipeline #{data['id']}</h1><p>Status: <strong id='status'>{data['status']}</strong></p>"
                f"<p>Ref {data['ref']} · created {data['created_at']} · finished {data['finished_at'] or '-'}</p>"
                f"<ul>{variables}</ul><p><em>Sandbox GitLab</em></p></body></html>"
            ),
            {"Content-Type": "text/html; charset=utf-8"},
        )

    # -- control API --------------------------------------------------------------------------------
    def _control(self, method: str, rest: list[str], body: dict[str, Any]):
        sandbox, world = self.owner, self.owner.world
        if rest == ["state"] and method == "GET":
            with world.lock:
                projects = {}
                for project in world.projects.values():
                    projects[project.path] = {
                        "id": project.id,
                        "deployments": [sandbox.deployment_json(project, d) for d in project.deployments],
                        "pipelines": [
                            {**sandbox.pipeline_json(project, p), "variables": p["variables"]}
                            for p in project.pipelines
                        ],
                        "created_pipelines": len(world.created_pipelines.get(project.id, [])),
                        "issues": [sandbox.issue_json(project, i) for i in project.issues],
                    }
                return (
                    200,
                    {
                        "now": iso(world.now()),
                        "projects": projects,
                        "requests": dict(world.requests),
                        "faults": sandbox.faults,
                    },
                    {},
                )
        if method != "POST" and not (method == "DELETE" and rest == ["faults"]):
            raise HttpError(405, "405 Method Not Allowed")
        if rest == ["clock"]:
            world.advance(float(body.get("advance_seconds", 0)))
            return 200, {"now": iso(world.now())}, {}
        if rest == ["faults"]:
            if method == "DELETE":
                sandbox.clear_faults()
                return 200, {"faults": []}, {}
            sandbox.inject_fault(
                body["path"],
                body.get("kind", "status"),
                method=body.get("method"),
                count=int(body.get("count", 1)),
                **{k: v for k, v in body.items() if k not in ("path", "kind", "method", "count")},
            )
            return 201, {"faults": sandbox.faults}, {}
        if rest == ["deployments"]:
            project = body.pop("project", None) or next(iter(world.projects.values())).path
            return 201, sandbox.add_deployment(project, **body), {}
        if len(rest) == 2 and rest[0] == "deployments":
            for project in world.projects.values():
                for deployment in project.deployments:
                    if str(deployment["id"]) == rest[1]:
                        deployment["status"] = body["status"]
                        deployment["updated_at"] = world.now()
                        if body["status"] in ("success", "failed", "canceled"):
                            deployment["finished_at"] = world.now()
                        return 200, sandbox.deployment_json(project, deployment), {}
            raise HttpError(404, "404 Deployment Not Found")
        if rest == ["issues"]:
            project = body.pop("project")
            return 201, sandbox.add_issue(project, **body), {}
        if len(rest) == 3 and rest[0] == "issues" and rest[2] == "close":
            for project in world.projects.values():
                for issue in project.issues:
                    if str(issue["iid"]) == rest[1] and project.path == body.get("project", project.path):
                        issue["state"] = "closed"
                        issue["updated_at"] = world.now()
                        return 200, sandbox.issue_json(project, issue), {}
            raise HttpError(404, "404 Issue Not Found")
        if rest == ["commits"]:
            project = world.project(body.pop("project"))
            commit = world.add_commit(project, body)
            return 201, {"sha": commit["sha"], "files": sorted(commit["files"])}, {}
        if rest == ["pipeline_behaviour"]:
            project = body.pop("project")
            sandbox.set_pipeline_behaviour(project, **body)
            return 200, world.project(project).behaviour, {}
        raise HttpError(404, "404 Not Found")


def _template(segments: list[str]) -> str:
    """The request path with ids replaced, for the request counters."""
    parts = []
    for index, segment in enumerate(segments):
        previous = segments[index - 1] if index else ""
        if previous in ("projects", "deployments", "pipelines", "files", "commits", "issues") and segment:
            parts.append(":" + {"projects": "id", "files": "file_path"}.get(previous, "id"))
        else:
            parts.append(segment)
    return "/" + "/".join(quote(p, safe=":-_.") for p in parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sandbox GitLab API server for the PDM Orchestrator.")
    parser.add_argument("--scenario", required=True, help="scenario YAML file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18929)
    args = parser.parse_args(argv)
    token = os.environ.get("SANDBOX_GITLAB_TOKEN", "")
    if not token:
        print("error: set SANDBOX_GITLAB_TOKEN to the token clients must send", file=sys.stderr)
        return 2
    try:
        sandbox = SandboxGitLab.from_file(args.scenario, token).start(args.host, args.port)
    except (OSError, yaml.YAMLError, KeyError, ValueError) as exc:
        print(f"error: cannot start the sandbox from {args.scenario}: {exc}", file=sys.stderr)
        return 1
    print(f"sandbox GitLab serving {args.scenario} at {sandbox.url}", flush=True)
    return serve_until_signalled(sandbox.stop)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["HttpError", "SandboxGitLab", "main"]
