"""Who may do what in the sandbox GitLab: tokens, their users, roles per project, scopes and admin mode.

The least role of every endpoint comes from GitLab's API table (gitlab_api.yaml), so the sandbox refuses what
GitLab refuses: a non-member of a private project gets 404, a member below the endpoint's role 403, a
`read_api` token writing 403 `insufficient_scope`, a non-admin (or an admin without admin mode) 403 on
`/admin`. Special rules (GitLab's policies): pipeline variables need Maintainer or Developer + triggerer;
confidential issues are left out of lists below Reporter unless the caller wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from include.sandbox import api_table
from include.sandbox.gitlab_world import BOT_USERNAME, Project, ScenarioError

OWNER = 50
MAINTAINER = 40
DEVELOPER = 30
REPORTER = 20


class Refusal(Exception):
    """An answer GitLab gives instead of the resource: status and body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


@dataclass
class Principal:
    """The user behind a token, with the token's scopes and the user's role in each project."""

    token: str
    username: str
    admin: bool = False
    admin_mode: bool = True
    scopes: frozenset[str] = frozenset({"api"})
    roles: dict[str, int] = field(default_factory=dict)  # project path or id -> role level
    default_level: int = 0  # the role in projects `roles` does not name (0: not a member)

    def level(self, project: Project) -> int:
        """The role level in `project`; an admin counts as owner everywhere."""
        if self.admin:
            return OWNER
        return self.roles.get(project.path, self.roles.get(str(project.id), self.default_level))


def principal_from_spec(spec: Any, place: str) -> Principal:
    """A scenario `tokens` entry: {token, username, admin?, admin_mode?, scopes?, roles: {project: role},
    default_role?}."""
    if not isinstance(spec, dict) or not spec.get("token") or not spec.get("username"):
        raise ScenarioError(f"{place}: needs `token` and `username`")
    scopes = frozenset(str(s) for s in spec.get("scopes") or ["api"])
    unknown = scopes - {"api", "read_api", "read_user", "read_repository"}
    if unknown:
        raise ScenarioError(f"{place}.scopes: {', '.join(sorted(unknown))} is not a token scope")
    try:
        roles = {str(k): api_table.role_level(str(v)) for k, v in (spec.get("roles") or {}).items()}
        default = api_table.role_level(str(spec["default_role"])) if spec.get("default_role") else 0
    except ValueError as exc:
        raise ScenarioError(f"{place}.roles: {exc}") from None
    return Principal(
        token=str(spec["token"]),
        username=str(spec["username"]),
        admin=bool(spec.get("admin", False)),
        admin_mode=bool(spec.get("admin_mode", True)),
        scopes=scopes,
        roles=roles,
        default_level=default,
    )


def build_principals(
    admin_token: str,
    read_only_tokens: set[str],
    user_tokens: set[str],
    token_specs: list[Any],
) -> dict[str, Principal]:
    """Every token the sandbox accepts. The admin token is the bot (sandbox-bot, admin, admin mode on);
    read-only tokens and user tokens are Maintainers everywhere, with `read_api` or `api`."""
    principals = {admin_token: Principal(admin_token, BOT_USERNAME, admin=True)}
    for token in read_only_tokens:
        principals[token] = Principal(
            token, "sandbox-reader", scopes=frozenset({"read_api"}), default_level=40
        )
    for token in user_tokens:
        principals[token] = Principal(token, "sandbox-user", default_level=MAINTAINER)
    for index, spec in enumerate(token_specs or []):
        principal = principal_from_spec(spec, f"tokens[{index}]")
        principals[principal.token] = principal
    return principals


def forbidden() -> Refusal:
    return Refusal(403, {"message": "403 Forbidden"})


def require(
    principal: Principal, endpoint_id: str, project: Project | None = None, write: bool = False
) -> int:
    """Refuse as GitLab would, else return the caller's role level in `project` (OWNER without one)."""
    if write and "api" not in principal.scopes:
        raise Refusal(
            403,
            {
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token.",
                "scope": "api",
            },
        )
    if endpoint_id.startswith("admin_"):
        if not (principal.admin and principal.admin_mode):
            raise forbidden()
        return OWNER
    if project is None:
        return OWNER if principal.admin else 0
    level = principal.level(project)
    if level <= 0:
        raise Refusal(404, {"message": "404 Project Not Found"})
    if level < api_table.required_role(endpoint_id):
        raise forbidden()
    return level


def may_read_variables(principal: Principal, project: Project, pipeline: dict[str, Any]) -> bool:
    """app/policies/ci/pipeline_policy.rb: admin_pipeline (Maintainer), or update_pipeline and triggerer."""
    level = principal.level(project)
    return level >= MAINTAINER or (level >= DEVELOPER and pipeline.get("user") == principal.username)


def may_set_variables(principal: Principal, project: Project) -> bool:
    """ci_pipeline_variables_minimum_override_role: may this caller create a pipeline with variables?"""
    minimum = project.variables_minimum_role
    if minimum == "no_one_allowed":
        return False
    return principal.level(project) >= api_table.role_level(minimum)


def sees_issue(principal: Principal, project: Project, issue: dict[str, Any]) -> bool:
    """app/finders/issues_finder.rb: confidential issues only for Reporter+ and their author."""
    if not issue.get("confidential"):
        return True
    return principal.level(project) >= REPORTER or issue.get("author") == principal.username
