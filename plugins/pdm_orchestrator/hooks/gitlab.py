"""GitLab hook: everything the PDM flow reads from or asks of GitLab, through python-gitlab."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from airflow.sdk import BaseHook

from include.deployments import ACTIVE_DEPLOYMENT_STATUSES, Deployment
from include.gates.rollback import BlockingIssue
from include.pipelines import PipelineRun

if TYPE_CHECKING:
    import gitlab


class GitLabError(RuntimeError):
    """A GitLab call failed; the message names the endpoint and the status, never the token."""


def _wrap(endpoint: str):
    """Turn python-gitlab's and the transport's exceptions into one GitLabError naming the endpoint."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            import gitlab.exceptions
            import requests

            try:
                return fn(*args, **kwargs)
            except gitlab.exceptions.GitlabError as exc:
                code = getattr(exc, "response_code", None)
                message = getattr(exc, "error_message", None) or str(exc)
                raise GitLabError(f"GitLab {endpoint}: HTTP {code}: {str(message)[:200]}") from None
            except requests.RequestException as exc:
                raise GitLabError(f"GitLab {endpoint}: {type(exc).__name__}: {str(exc)[:200]}") from None
            except (ValueError, KeyError, TypeError) as exc:  # malformed JSON or unexpected shape
                raise GitLabError(
                    f"GitLab {endpoint}: unexpected answer: {type(exc).__name__}: {exc}"
                ) from None

        return wrapper

    return decorator


class GitLabHook(BaseHook):
    """Talks to one GitLab instance, configured by an Airflow connection.

    Connection: host = base URL (`https://gitlab.com`, or host + schema + port), password = API token
    (scopes: `api` to create pipelines and record deployments, `read_api` for reads); extra:
    `{"timeout": 30, "verify": true, "max_retries": 5, "per_page": 100, "trigger_token": "…"}` (the trigger
    token only when the policy's pipeline uses `trigger: trigger_token`; `per_page` is the page size of every
    list, which is always followed to its last page). Transient errors (5xx, 429 with Retry-After) are retried by
    python-gitlab; anything else raises :class:`GitLabError` naming the endpoint.
    """

    conn_name_attr = "gitlab_conn_id"
    default_conn_name = "gitlab_default"
    conn_type = "http"
    hook_name = "GitLab"

    def __init__(self, gitlab_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.gitlab_conn_id = gitlab_conn_id
        self._client: gitlab.Gitlab | None = None

    # -- connection ---------------------------------------------------------------------------------
    def get_conn(self) -> gitlab.Gitlab:
        if self._client is None:
            import gitlab

            conn = self.get_connection(self.gitlab_conn_id)
            extra = conn.extra_dejson or {}
            self._client = gitlab.Gitlab(
                _base_url(conn.host or "", conn.schema, conn.port),
                private_token=conn.password or None,
                timeout=float(extra.get("timeout", 30)),
                ssl_verify=bool(extra.get("verify", True)),
                retry_transient_errors=True,
                per_page=int(extra.get("per_page", 100)),
            )
            # python-gitlab retries transient errors 10 times with exponential backoff (~100 s); a gate
            # should rather fail closed sooner and poll again, so the bound comes from the connection.
            self._client.http_request = functools.partial(
                self._client.http_request, max_retries=int(extra.get("max_retries", 5))
            )
        return self._client

    def _project(self, project: str | int):
        # lazy=True: no GET of the project itself, the next call names the resource.
        return self.get_conn().projects.get(project, lazy=True)

    # -- deployments ----------------------------------------------------------------------------------
    @_wrap("GET /projects/:id/deployments (latest successful)")
    def latest_successful_deployment(self, project: str, environment: str) -> Deployment | None:
        """The deployment now live on `environment` (or the last PDM run, for `db/<env>`)."""
        found = self._project(project).deployments.list(
            environment=environment, status="success", order_by="finished_at", sort="desc", page=1, per_page=1
        )
        return Deployment.from_gitlab(found[0].asdict()) if found else None

    @_wrap("GET /projects/:id/deployments (active)")
    def active_deployments(
        self, project: str, environment: str, statuses: Iterable[str] = ACTIVE_DEPLOYMENT_STATUSES
    ) -> list[Deployment]:
        """Deployments that hold the environment: created, running or blocked."""
        result: list[Deployment] = []
        for status in statuses:
            for item in self._project(project).deployments.list(
                environment=environment, status=status, get_all=True
            ):
                result.append(Deployment.from_gitlab(item.asdict()))
        return result

    @_wrap("GET /projects/:id/deployments (recent)")
    def recent_deployments(self, project: str, environment: str, since: datetime) -> list[Deployment]:
        """Deployments of `environment` created since `since`, any status, oldest first (the forecast's
        history: a failed or canceled deployment started too)."""
        found = self._project(project).deployments.list(
            environment=environment,
            updated_after=since.isoformat(),
            order_by="updated_at",
            sort="asc",
            get_all=True,
        )
        deployments = [Deployment.from_gitlab(item.asdict()) for item in found]
        recent = [d for d in deployments if d.created_at is not None and d.created_at >= since]
        return sorted(recent, key=lambda d: (d.created_at, d.id))

    @_wrap("POST /projects/:id/deployments")
    def record_deployment(
        self, project: str, environment: str, sha: str, ref: str, status: str = "running"
    ) -> Deployment:
        """Record a PDM run as a deployment to `db/<env>`, as GitLab's release tooling does."""
        created = self._project(project).deployments.create(
            {"environment": environment, "sha": sha, "ref": ref, "tag": False, "status": status}
        )
        return Deployment.from_gitlab(created.asdict())

    @_wrap("PUT /projects/:id/deployments/:deployment_id")
    def update_deployment_status(self, project: str, deployment_id: int, status: str) -> Deployment:
        """Move a recorded PDM run to success, failed or canceled."""
        deployment = self._project(project).deployments.get(deployment_id, lazy=True)
        deployment.status = status
        deployment.save()
        return Deployment.from_gitlab(self._project(project).deployments.get(deployment_id).asdict())

    @_wrap("GET /admin/migrations/pending")
    def admin_pending_migrations(self, database: str) -> list[str]:
        """Versions the instance itself reports pending for one database (admin token)."""
        answer = self.get_conn().http_get("/admin/migrations/pending", query_data={"database": database})
        if not isinstance(answer, list):
            raise ValueError("pending migrations answer is not a list")
        return sorted(str(item["version"]) for item in answer)

    # -- repository ---------------------------------------------------------------------------------
    @_wrap("GET /projects/:id/repository/compare")
    def compare(self, project: str, from_sha: str, to_sha: str) -> list[dict[str, Any]]:
        """The file diffs between two commits (no diff bodies needed: paths and flags)."""
        answer = self._project(project).repository_compare(from_sha, to_sha)
        diffs = answer.get("diffs") if isinstance(answer, dict) else None
        if not isinstance(diffs, list):
            raise ValueError("compare answer has no 'diffs' list")
        return diffs

    @_wrap("GET /projects/:id/repository/files/:path/raw")
    def raw_file(self, project: str, path: str, ref: str) -> bytes:
        return self._project(project).files.raw(file_path=path, ref=ref)

    # -- pipelines ----------------------------------------------------------------------------------
    @_wrap("GET /projects/:id/pipelines (active)")
    def active_pipelines(
        self, project: str, ref: str | None = None, variables: dict[str, str] | None = None
    ) -> list[PipelineRun]:
        """Pipelines not finished yet, optionally only those whose variables include `variables`."""
        proj = self._project(project)
        found: dict[int, PipelineRun] = {}
        # `scheduled`: a delayed job is about to start. `manual` is left out: a pipeline parked at a manual job
        # nobody plays would hold the environment forever.
        for status in ("created", "waiting_for_resource", "preparing", "pending", "running", "scheduled"):
            params: dict[str, Any] = {"status": status, "get_all": True}
            if ref:
                params["ref"] = ref
            for item in proj.pipelines.list(**params):
                if variables and not self._variables_match(proj, item.id, variables):
                    continue
                found[item.id] = PipelineRun.from_gitlab(project, item.asdict())
        return list(found.values())

    @_wrap("GET /projects/:id/pipelines (by decision)")
    def find_pipeline_by_variable(
        self, project: str, ref: str, key: str, value: str, updated_after: datetime | None = None
    ) -> PipelineRun | None:
        """A pipeline already created for this decision: the exactly-once guard before creating one."""
        proj = self._project(project)
        params: dict[str, Any] = {"ref": ref, "order_by": "id", "sort": "desc", "get_all": True}
        if updated_after:
            params["updated_after"] = updated_after.isoformat()
        for item in proj.pipelines.list(**params):
            if self._variables_match(proj, item.id, {key: value}):
                return PipelineRun.from_gitlab(project, item.asdict())
        return None

    @staticmethod
    def _variables_match(proj, pipeline_id: int, wanted: dict[str, str]) -> bool:
        variables = {
            v.key: v.value for v in proj.pipelines.get(pipeline_id, lazy=True).variables.list(get_all=True)
        }
        return all(variables.get(k) == v for k, v in wanted.items())

    @_wrap("POST /projects/:id/pipeline")
    def create_pipeline(self, project: str, ref: str, variables: dict[str, str]) -> PipelineRun:
        """Create the PDM pipeline. Not retried on timeouts here: the caller's exactly-once guard decides."""
        created = self._project(project).pipelines.create(
            {"ref": ref, "variables": [{"key": k, "value": v} for k, v in variables.items()]},
            retry_transient_errors=False,  # a 502 after GitLab accepted must not create a second pipeline
        )
        return PipelineRun.from_gitlab(project, created.asdict())

    @_wrap("POST /projects/:id/trigger/pipeline")
    def trigger_pipeline_with_token(self, project: str, ref: str, variables: dict[str, str]) -> PipelineRun:
        """Create the PDM pipeline with a pipeline trigger token (connection extra `trigger_token`)."""
        conn = self.get_connection(self.gitlab_conn_id)
        token = (conn.extra_dejson or {}).get("trigger_token")
        if not token:
            raise ValueError(f"connection {self.gitlab_conn_id!r} has no extra trigger_token")
        created = self._project(project).trigger_pipeline(
            ref, token, variables=variables, retry_transient_errors=False
        )
        return PipelineRun.from_gitlab(project, created.asdict())

    @_wrap("GET /projects/:id/pipelines/:pipeline_id")
    def pipeline(self, project: str, pipeline_id: int) -> PipelineRun:
        return PipelineRun.from_gitlab(project, self._project(project).pipelines.get(pipeline_id).asdict())

    @_wrap("POST /projects/:id/pipelines/:pipeline_id/cancel")
    def cancel_pipeline(self, project: str, pipeline_id: int) -> None:
        self._project(project).pipelines.get(pipeline_id, lazy=True).cancel()

    # -- issues ---------------------------------------------------------------------------------------
    @_wrap("GET /projects/:id/issues (blocking)")
    def blocking_issues(
        self,
        projects: Iterable[str],
        labels_any: Iterable[str] = (),
        change_labels_all: Iterable[str] = (),
        change_labels_any: Iterable[str] = (),
    ) -> list[BlockingIssue]:
        """Open incidents with any of `labels_any`, and open change requests with all of
        `change_labels_all` and any of `change_labels_any`."""
        found: dict[tuple[str, int], BlockingIssue] = {}
        for project in projects:
            proj = self._project(project)
            for label in labels_any:
                for item in proj.issues.list(state="opened", labels=[label], get_all=True):
                    found[(project, item.iid)] = _issue(project, item.asdict())
            all_labels = list(change_labels_all)
            if all_labels:
                for item in proj.issues.list(state="opened", labels=all_labels, get_all=True):
                    labels = set(item.asdict().get("labels") or [])
                    if not change_labels_any or labels & set(change_labels_any):
                        found[(project, item.iid)] = _issue(project, item.asdict())
        return list(found.values())


def _issue(project: str, data: dict[str, Any]) -> BlockingIssue:
    return BlockingIssue(
        project=project,
        iid=int(data["iid"]),
        title=str(data.get("title") or ""),
        labels=tuple(data.get("labels") or ()),
        web_url=str(data.get("web_url") or ""),
    )


def _base_url(host: str, schema: str | None, port: int | None) -> str:
    """Accept `https://gitlab.com`, or a bare host with the connection's schema and port."""
    host = host.rstrip("/")
    if "://" not in host:
        host = f"{schema or 'https'}://{host}"
    parsed = urlparse(host)
    if port and not parsed.port:
        host = f"{parsed.scheme}://{parsed.hostname}:{port}{parsed.path}"
    return host
