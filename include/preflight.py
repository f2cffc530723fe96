"""Preflight: what the bot needs from GitLab and Prometheus, and how a finding is reported (no I/O here).

The shell (plugins/pdm_orchestrator/preflight.py) asks GitLab and Prometheus; this module says which role the
bot needs in which project and why, and renders one line per check: `ok` or `PROBLEM` with the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from include.policy.model import Policy

GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
ROLE_NAMES = {
    0: "no role",
    10: "Guest",
    15: "Planner",
    20: "Reporter",
    30: "Developer",
    40: "Maintainer",
    50: "Owner",
}
ROLE_LEVELS = {"developer": DEVELOPER, "maintainer": MAINTAINER, "owner": OWNER}


@dataclass(frozen=True)
class Check:
    """One preflight finding: ok, or a problem with the fix."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok       {self.name}: {self.detail}"
        return f"PROBLEM  {self.name}: {self.detail}" + (f" — fix: {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class Need:
    """The least role the bot needs in a project, and why."""

    project: str
    level: int
    why: str


def role_name(level: int) -> str:
    return ROLE_NAMES.get(level, f"access level {level}")


def needs(policy: Policy) -> list[Need]:
    """Every project the policy names, with the least role the bot needs there (the highest of its uses).

    Reporter reads deployments, code, pipelines and confidential issues; Developer creates and cancels the
    PDM pipeline and reads the variables of its own pipelines (the exactly-once lookup). Maintainer is never
    needed: pipelines of other users whose variables the bot cannot read count as holding the environment.
    """
    wanted: dict[str, list[tuple[int, str]]] = {}

    def add(project: str, level: int, why: str) -> None:
        wanted.setdefault(project, []).append((level, why))

    gitlab = policy.gitlab
    add(gitlab.application_project, REPORTER, "deployments, compare, repository tree and files")
    add(
        gitlab.pdm_pipeline.project,
        DEVELOPER,
        "create and cancel the PDM pipeline, read its own pipelines' variables",
    )
    for spec in policy.gates.deploy_lock.deploy_pipelines:
        add(spec.project, REPORTER, "list deploy pipelines (deploy lock)")
    for project in policy.gates.rollback.incident_projects:
        add(project, REPORTER, "see confidential incidents (rollback gate)")
    return [
        Need(project, max(level for level, _ in uses), "; ".join(why for _, why in uses))
        for project, uses in wanted.items()
    ]


def role_check(need: Need, level: int) -> Check:
    """The bot's role in a project against what it needs there."""
    name = f"role in {need.project}"
    if level >= need.level:
        return Check(name, True, f"{role_name(level)} (needs {role_name(need.level)}: {need.why})")
    return Check(
        name,
        False,
        f"the bot is {role_name(level)}, needs {role_name(need.level)} ({need.why})",
        f"add the bot user to {need.project} as {role_name(need.level)}",
    )


def variables_setting_check(project: str, minimum: str | None, level: int) -> Check | None:
    """The project's 'Minimum role to use pipeline variables' against the bot's role (None: setting not
    visible to the bot — GitLab shows it to Maintainers only; the probe decides then)."""
    if minimum is None:
        return None
    name = f"pipeline variables in {project}"
    if minimum != "no_one_allowed" and level >= ROLE_LEVELS.get(minimum, OWNER + 1):
        return Check(
            name,
            True,
            f"the bot ({role_name(level)}) may create pipelines with variables (minimum {minimum})",
        )
    return Check(
        name,
        False,
        f"ci_pipeline_variables_minimum_override_role is {minimum}: pipelines with variables are refused for "
        f"the bot ({role_name(level)})",
        "a Maintainer sets Settings > CI/CD > Variables > 'Minimum role to use pipeline variables' to developer",
    )


def render(checks: list[Check]) -> str:
    problems = sum(not c.ok for c in checks)
    summary = "preflight: all checks passed" if not problems else f"preflight: {problems} problem(s)"
    return "\n".join([c.line() for c in checks] + [summary])


def exit_code(checks: list[Check]) -> int:
    return 1 if any(not c.ok for c in checks) else 0
