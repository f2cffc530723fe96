"""GitLab hook: everything the PDM flow reads from or asks of GitLab, through python-gitlab."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import urlparse

from airflow.sdk import BaseHook

from include.deployments import ACTIVE_DEPLOYMENT_STATUSES, Deployment
from include.gates.rollback import BlockingIssue
from include.pending import POST_DEPLOY_DIRS, diffs_from_trees
from include.pipelines import HOLDING_STATUSES, PipelineRun

if TYPE_CHECKING:
    import gitlab
    from gitlab.v4.objects import Project

P = ParamSpec("P")
R = TypeVar("R")

REPORTER = 20  # GitLab's access level that sees confidential issues (app/finders/issues_finder.rb)
UNREADABLE_VARIABLES = (
    "its variables are unreadable by the bot (GitLab shows them only to Maintainers and to the pipeline's "
    "triggerer), so it counts as holding"
)


class GitLabError(RuntimeError):
    """A GitLab call failed; the message names the endpoint and the status, never the token."""


class AdminCheckUnavailable(GitLabError):
    """GET /admin/migrations/pending answered 404: the instance predates the endpoint, or does not run that
    database. Discovery goes on without the cross-check and says so."""


class CallBudgetExceeded(RuntimeError):
    """A call would outlast the hook's time budget (e.g. a Retry-After longer than what is left)."""


def _wrap(endpoint: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn python-gitlab's and the transport's exceptions into one GitLabError naming the endpoint, and bound
    the whole call (retries and Retry-After waits included) by the connection's `max_call_seconds`."""

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            import gitlab.exceptions
            import requests

            owner = args[0] if args and isinstance(args[0], GitLabHook) else None
            # Only the outermost hook call sets (and clears) the budget; nested calls share it.
            hook = owner if owner is not None and owner._deadline is None else None
            try:
                if hook is not None:
                    hook.get_conn()  # reads the connection's max_call_seconds
                    hook._deadline = time.monotonic() + hook.max_call_seconds
                return fn(*args, **kwargs)
            except GitLabError:
                raise
            except CallBudgetExceeded as exc:
                raise GitLabError(f"GitLab {endpoint}: {exc}") from None  # our own refusal: nothing below it
            except gitlab.exceptions.GitlabError as exc:
                code = getattr(exc, "response_code", None)
                message = getattr(exc, "error_message", None) or str(exc)
                raise GitLabError(f"GitLab {endpoint}: HTTP {code}: {str(message)[:200]}") from exc
            except requests.RequestException as exc:
                raise GitLabError(f"GitLab {endpoint}: {type(exc).__name__}: {str(exc)[:200]}") from exc
            except (ValueError, KeyError, TypeError) as exc:  # malformed JSON or unexpected shape
                raise GitLabError(
                    f"GitLab {endpoint}: unexpected answer: {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                if hook is not None:
                    hook._deadline = None

        return wrapper

    return decorator


def json_object(answer: object) -> dict[str, Any]:
    """python-gitlab's `http_get` answers `dict | Response` (the Response when the body is not JSON); every
    endpoint read here answers a JSON object, so anything else is an unexpected answer (TypeError)."""
    if not isinstance(answer, dict):
        raise TypeError(f"expected a JSON object, got {type(answer).__name__}")
    return answer


class GitLabHook(BaseHook):
    """Talks to one GitLab instance, configured by an Airflow connection.

    Connection: host = base URL (`https://gitlab.com`, or host + schema + port), password = API token
    (scopes: `api` to create pipelines and record deployments, `read_api` for reads); extra:
    `{"timeout": 30, "verify": true, "max_retries": 5, "per_page": 100, "max_call_seconds": 120,
    "trigger_token": "…"}` (the trigger token only when the policy's pipeline uses `trigger: trigger_token`;
    `per_page` is the page size of every list, which is always followed to its last page). Transient errors
    (5xx, 429 with Retry-After) are retried by python-gitlab, within `max_call_seconds` per hook call: a
    Retry-After longer than what is left fails the call at once (python-gitlab would sleep it outside the
    request timeout). Anything else raises :class:`GitLabError` naming the endpoint.
    """

    conn_name_attr = "gitlab_conn_id"
    default_conn_name = "gitlab_default"
    conn_type = "http"
    hook_name = "GitLab"

    def __init__(self, gitlab_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.gitlab_conn_id = gitlab_conn_id
        self._client: gitlab.Gitlab | None = None
        self._deadline: float | None = None
        self.max_call_seconds = 120.0
        self._me: dict[str, Any] | None = None
        self._levels: dict[str, int] = {}

    # -- connection ---------------------------------------------------------------------------------
    def get_conn(self) -> gitlab.Gitlab:
        if self._client is None:
            import gitlab
            import requests

            conn = self.get_connection(self.gitlab_conn_id)
            extra = conn.extra_dejson or {}
            self.max_call_seconds = float(extra.get("max_call_seconds", 120))
            timeout = float(extra.get("timeout", 30))
            session = requests.Session()
            session.hooks["response"].append(self._refuse_long_waits)
            self._client = gitlab.Gitlab(
                _base_url(conn.host or "", conn.schema, conn.port),
                private_token=conn.password or None,
                timeout=timeout,
                ssl_verify=bool(extra.get("verify", True)),
                retry_transient_errors=True,
                per_page=int(extra.get("per_page", 100)),
                session=session,
            )
            # python-gitlab retries transient errors 10 times with exponential backoff (~100 s); a gate
            # should rather fail closed sooner and poll again, so the bound comes from the connection.
            request = functools.partial(
                self._client.http_request, max_retries=int(extra.get("max_retries", 5))
            )

            def bounded(*args: Any, **kwargs: Any) -> Any:
                left = self._time_left()
                if left is not None:
                    kwargs["timeout"] = max(0.1, min(float(kwargs.get("timeout") or timeout), left))
                return request(*args, **kwargs)

            # Patched on the instance (python-gitlab has no hook for it); mypy forbids assigning to a method.
            self._client.http_request = bounded  # type: ignore[method-assign]
        return self._client

    def _time_left(self) -> float | None:
        """Seconds left of the current call's budget (None outside a call); raises when none is left."""
        if self._deadline is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise CallBudgetExceeded(
                f"gave up after {self.max_call_seconds:g} s (connection max_call_seconds)"
            )
        return left

    def _refuse_long_waits(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """requests response hook: a 429 whose Retry-After outlasts the budget fails now instead of sleeping,
        and no transient error is retried once the budget is spent."""
        if response.status_code >= 500 and self._deadline is not None:
            self._time_left()  # raises when nothing is left: python-gitlab would retry otherwise
        if response.status_code == 429 and self._deadline is not None:
            try:
                wait = float(response.headers.get("Retry-After", 0))
            except ValueError:
                wait = 0.0
            left = self._deadline - time.monotonic()
            if wait >= left:
                raise CallBudgetExceeded(
                    f"HTTP 429: rate limited; Retry-After {wait:g} s is more than the {max(left, 0):.0f} s left "
                    f"of max_call_seconds {self.max_call_seconds:g}"
                )
        return response

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test connection": the instance answers and the token is valid (who, which scopes).
        The full check of roles and settings is `python -m pdm_orchestrator.preflight`."""
        try:
            version = json_object(self.get_conn().http_get("/version")).get("version")
            me = self.current_user()
        except Exception as exc:  # noqa: BLE001 - the message is the answer
            return False, f"GitLab at {self.get_conn().url if self._client else '?'}: {str(exc)[:200]}"
        try:
            token = json_object(self.get_conn().http_get("/personal_access_tokens/self"))
            scopes = ", ".join(token.get("scopes") or [])
        except Exception:  # noqa: BLE001 - not every token type can describe itself
            scopes = "unknown"
        return True, f"GitLab {version}: token of {me.get('username')} (scopes: {scopes})"

    def _project(self, project: str | int) -> Project:
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
        """Versions the instance itself reports pending for one database (admin token, admin mode).

        GitLab answers `{pending_migrations: [{version, name, filename, status}], database, total_pending}`.
        404 raises AdminCheckUnavailable: an instance older than the endpoint, or a database it does not run.
        """
        import gitlab.exceptions

        try:
            answer = self.get_conn().http_get("/admin/migrations/pending", query_data={"database": database})
        except gitlab.exceptions.GitlabHttpError as exc:
            if exc.response_code == 404:
                raise AdminCheckUnavailable(
                    f"GitLab GET /admin/migrations/pending?database={database}: HTTP 404: "
                    f"{str(exc.error_message)[:120]} — the instance predates this endpoint or does not run "
                    f"database {database!r}; remove it from gitlab.admin_check_databases"
                ) from exc
            raise
        if not isinstance(answer, dict) or not isinstance(answer.get("pending_migrations"), list):
            raise ValueError("pending migrations answer is not {pending_migrations: [...], …}")
        return sorted(str(item["version"]) for item in answer["pending_migrations"])

    # -- repository ---------------------------------------------------------------------------------
    @_wrap("GET /projects/:id/repository/compare")
    def compare(self, project: str, from_sha: str, to_sha: str) -> list[dict[str, Any]]:
        """The file diffs between two commits (paths and flags), complete for the post-deploy directories.

        GitLab cuts `diffs` at its diff limits (1,000 files / 50,000 lines by default) and then sets
        `compare_timeout`: a week of gitlab-org/gitlab exceeds them. Then the post-deploy directories are
        listed at both SHAs instead (GET …/repository/tree, every page), so no migration is missed; if that
        fails too, the call fails (discovery fails closed).
        """
        answer = self._project(project).repository_compare(from_sha, to_sha)
        if not isinstance(answer, dict) or not isinstance(answer.get("diffs"), list):
            raise ValueError("compare answer has no 'diffs' list")
        diffs: list[dict[str, Any]] = answer["diffs"]
        if not answer.get("compare_timeout"):
            return diffs
        self.log.info(
            "compare %s..%s of %s was cut at GitLab's diff limits (%d diffs): listing %s at both SHAs",
            from_sha[:11], to_sha[:11], project, len(diffs), " and ".join(POST_DEPLOY_DIRS),
        )  # fmt: skip
        return diffs_from_trees(
            self.post_deploy_paths(project, from_sha), self.post_deploy_paths(project, to_sha)
        )

    @_wrap("GET /projects/:id/repository/tree")
    def post_deploy_paths(self, project: str, sha: str) -> set[str]:
        """Every file directly in db/post_migrate and ee/db/post_migrate at `sha`, all pages.

        `db/post_migrate` must exist (else the SHA is wrong: the call fails); `ee/db/post_migrate` may be
        absent (a FOSS-only tree)."""
        import gitlab.exceptions

        paths: set[str] = set()
        for directory in POST_DEPLOY_DIRS:
            try:
                entries = self._project(project).repository_tree(
                    path=directory.rstrip("/"), ref=sha, get_all=True
                )
            except gitlab.exceptions.GitlabGetError as exc:
                if exc.response_code == 404 and directory.startswith("ee/"):
                    continue
                raise
            paths |= {str(e["path"]) for e in entries if e.get("type") == "blob"}
        return paths

    @_wrap("GET /projects/:id/repository/files/:path/raw")
    def raw_file(self, project: str, path: str, ref: str) -> bytes:
        return self._project(project).files.raw(file_path=path, ref=ref)

    # -- pipelines ----------------------------------------------------------------------------------
    @_wrap("GET /projects/:id/pipelines (active)")
    def active_pipelines(
        self, project: str, ref: str | None = None, variables: dict[str, str] | None = None
    ) -> list[PipelineRun]:
        """Pipelines that hold the environment (HOLDING_STATUSES: canceling and waiting_for_callback too),
        optionally only those whose variables include `variables`.

        GitLab shows a pipeline's variables only to Maintainers and to the pipeline's triggerer. A pipeline
        whose variables the bot may not read cannot be ruled out, so it counts as holding, with a note saying
        why (fail closed): the bot needs only Developer, Maintainer makes the check precise.
        """
        import gitlab.exceptions

        proj = self._project(project)
        found: dict[int, PipelineRun] = {}
        for status in HOLDING_STATUSES:
            params: dict[str, Any] = {"status": status, "get_all": True}
            if ref:
                params["ref"] = ref
            for item in proj.pipelines.list(**params):
                note = ""
                if variables:
                    try:
                        if not self._variables_match(proj, item.id, variables):
                            continue
                    except gitlab.exceptions.GitlabError as exc:
                        if getattr(exc, "response_code", None) != 403:
                            raise
                        note = UNREADABLE_VARIABLES
                run = PipelineRun.from_gitlab(project, item.asdict())
                found[item.id] = PipelineRun(**{**run.__dict__, "note": note}) if note else run
        return list(found.values())

    @_wrap("GET /projects/:id/pipelines (by decision)")
    def find_pipeline_by_variable(
        self, project: str, ref: str, key: str, value: str, updated_after: datetime | None = None
    ) -> PipelineRun | None:
        """A pipeline already created for this decision: the exactly-once guard before creating one.

        Only the bot's own pipelines (`username` filter) are looked at: those are the only ones a Developer
        may read the variables of, and the only ones the bot can have created for the decision.
        """
        proj = self._project(project)
        params: dict[str, Any] = {
            "ref": ref,
            "order_by": "id",
            "sort": "desc",
            "username": self.current_user()["username"],
            "get_all": True,
        }
        if updated_after:
            # GitLab compares updated_after strictly (>) on pipelines: a second earlier loses nothing.
            params["updated_after"] = (updated_after.replace(microsecond=0)).isoformat()
        for item in proj.pipelines.list(**params):
            if self._variables_match(proj, item.id, {key: value}):
                return PipelineRun.from_gitlab(project, item.asdict())
        return None

    @staticmethod
    def _variables_match(proj: Project, pipeline_id: int, wanted: dict[str, str]) -> bool:
        variables = {
            v.key: v.value for v in proj.pipelines.get(pipeline_id, lazy=True).variables.list(get_all=True)
        }
        return all(variables.get(k) == v for k, v in wanted.items())

    # -- who the bot is ---------------------------------------------------------------------------------
    @_wrap("GET /user")
    def current_user(self) -> dict[str, Any]:
        """The token's user (username, is_admin), read once per hook."""
        if self._me is None:
            self._me = dict(json_object(self.get_conn().http_get("/user")))
        return self._me

    @_wrap("GET /projects/:id (permissions)")
    def access_level(self, project: str) -> int:
        """The bot's role in `project` as GitLab's access level (10 guest … 50 owner; 50 for an admin; 0 when
        not a member), from the project's `permissions`."""
        if project not in self._levels:
            data = json_object(self.get_conn().http_get(f"/projects/{_encode(project)}"))
            permissions = data.get("permissions") or {}
            levels = [
                int((permissions.get(kind) or {}).get("access_level") or 0)
                for kind in ("project_access", "group_access")
            ]
            level = max(levels)
            if level == 0 and self.current_user().get("is_admin"):
                level = 50
            self._levels[project] = level
        return self._levels[project]

    @_wrap("POST /projects/:id/pipeline")
    def create_pipeline(self, project: str, ref: str, variables: dict[str, str]) -> PipelineRun:
        """Create the PDM pipeline. Not retried on timeouts here: the caller's exactly-once guard decides."""
        with _explain_variables_refusal(project):
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
        with _explain_variables_refusal(project):
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
            level = self.access_level(project)
            if level < REPORTER:
                # GitLab leaves confidential issues out of the list below Reporter: an empty answer would
                # prove nothing, so the gate is closed instead.
                raise GitLabError(
                    f"GitLab GET /projects/:id/issues: the bot's role in {project} is {_role_name(level)}; "
                    "confidential incidents are invisible below Reporter, so 'no incident' cannot be known "
                    "(give the bot Reporter there)"
                )
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


VARIABLES_REFUSED = "Insufficient permissions to set pipeline variables"


@contextlib.contextmanager
def _explain_variables_refusal(project: str) -> Iterator[None]:
    """GitLab's 400 for a pipeline created with variables by a role below the project's setting, explained."""
    import gitlab.exceptions

    try:
        yield
    except gitlab.exceptions.GitlabError as exc:
        if getattr(exc, "response_code", None) == 400 and VARIABLES_REFUSED in str(exc.error_message):
            raise GitLabError(
                f"GitLab POST /projects/:id/pipeline: HTTP 400: {VARIABLES_REFUSED} — project {project} sets "
                "'Minimum role to use pipeline variables' (ci_pipeline_variables_minimum_override_role) above "
                "the bot's role (GitLab.com's default for new projects is no_one_allowed); a Maintainer sets "
                "it to developer under Settings > CI/CD > Variables, or gives the bot the role it names"
            ) from exc
        raise


def _role_name(level: int) -> str:
    names = {0: "none (not a member)", 10: "Guest", 15: "Planner", 20: "Reporter", 30: "Developer"}
    return names.get(level, {40: "Maintainer", 50: "Owner"}.get(level, f"access level {level}"))


def _encode(project: str | int) -> str:
    from urllib.parse import quote

    return quote(str(project), safe="")


def _base_url(host: str, schema: str | None, port: int | None) -> str:
    """Accept `https://gitlab.com`, or a bare host with the connection's schema and port."""
    host = host.rstrip("/")
    if "://" not in host:
        host = f"{schema or 'https'}://{host}"
    parsed = urlparse(host)
    if port and not parsed.port:
        host = f"{parsed.scheme}://{parsed.hostname}:{port}{parsed.path}"
    return host
