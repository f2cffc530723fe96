"""A human's approval of a run that needs one: what the request shows, and what the answer means.

A run whose pending migrations include an `unknown` one, a class the policy marks `approval_required`, or an
annotation conflict is never run on its own. It asks a person instead (Airflow's "Required Actions"): the
request lists the pending migrations with their class and first reason, and links to the diff between the
rollback line (the last PDM run) and the deployed SHA. The answer is audited; it holds for that snapshot only
(the pipeline's create re-checks the pending set, so a changed set voids the decision anyway).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any
from urllib.parse import quote

APPROVE = "Approve"
REJECT = "Reject"
DEFAULT_TIMEOUT = timedelta(hours=24)
TIMEOUT_ENV = "PDM_APPROVAL_TIMEOUT_HOURS"
MAX_LISTED = 30


def response_timeout(configured: timedelta = DEFAULT_TIMEOUT, env: dict[str, str] | None = None) -> timedelta:
    """How long a request waits for an answer: the policy's `approval.timeout` (`configured`, default 24 h).

    `PDM_APPROVAL_TIMEOUT_HOURS` in the Airflow components' environment overrides it (an operator's escape
    hatch, e.g. a shorter wait on a test instance); it must be a positive number of hours."""
    raw = (env if env is not None else os.environ).get(TIMEOUT_ENV)
    if raw is None or raw.strip() == "":
        return configured
    try:
        hours = float(raw)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: expected a number of hours, e.g. 24 or 0.5") from None
    if hours <= 0:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: must be greater than 0")
    return timedelta(hours=hours)


def compare_url(web_base: str, project: str, from_sha: str | None, to_sha: str | None) -> str | None:
    """GitLab's web compare page between two SHAs, if both are known.

    gitlabhq's routes map `compare/:from...:to` to `compare#show` (config/routes/repository.rb; today under the
    project's `/-/` scope — the scope itself is unverified here, older releases had no `/-/`)."""
    if not (web_base and project and from_sha and to_sha):
        return None
    base = web_base.rstrip("/").removesuffix("/api/v4")
    return f"{base}/{quote(project, safe='/')}/-/compare/{from_sha}...{to_sha}"


def subject(snapshot: dict[str, Any]) -> str:
    """One line: which environment, how many migrations, the run's class."""
    count = len(snapshot.get("selected") or snapshot.get("migrations") or [])
    return (
        f"Approve {count} post-deploy migration(s) on {snapshot.get('environment')} "
        f"(run class {snapshot.get('run_class')})?"
    )


def body(snapshot: dict[str, Any], why: str, diff_url: str | None) -> str:
    """Markdown for the request: why a human is asked, each migration's class and first reason, the diff."""
    migrations = snapshot.get("selected") or snapshot.get("migrations") or []
    deployed = snapshot.get("deployed") or {}
    line = snapshot.get("rollback_line") or {}
    lines = [
        f"**Why a person is asked:** {why}",
        "",
        f"Deployed: `{deployed.get('ref') or '?'}` (`{str(deployed.get('sha') or '?')[:12]}`); "
        f"last PDM run (rollback line): `{line.get('ref') or '?'}` (`{str(line.get('sha') or '?')[:12]}`).",
        "",
        f"[Diff of the pending range in GitLab]({diff_url})" if diff_url else "Diff link: unavailable.",
        "",
        "| Migration | Class | Why |",
        "|---|---|---|",
    ]
    for m in sorted(migrations, key=lambda m: (m.get("version") or "", m.get("path") or ""))[:MAX_LISTED]:
        reasons = m.get("reasons") or []
        first = str(reasons[0]) if reasons else "-"
        name = str(m.get("path") or m.get("version")).replace("|", "\\|")
        lines.append(f"| `{name}` | {m.get('class')} | {first.replace('|', '/')[:200]} |")
    if len(migrations) > MAX_LISTED:
        lines.append(f"| … {len(migrations) - MAX_LISTED} more | | |")
    lines += [
        "",
        "**Approve** continues to the gates (window, traffic, deploy lock, rollback safety); **Reject** ends the "
        "run as `rejected`. The answer counts for this snapshot only. Say why in the comment: it is audited.",
    ]
    return "\n".join(lines)


def answer(
    chosen: list[str],
    by: dict[str, Any] | None,
    at: str | None,
    comment: str | None,
    snapshot: dict[str, Any],
) -> dict[str, Any]:
    """The audited record of an answer: approved or rejected, by whom, when, the comment, for which SHA."""
    decision = "approved" if chosen == [APPROVE] else "rejected"
    return {
        "decision": decision,
        "by": (by or {}).get("name") or (by or {}).get("id") or "unknown",
        "at": at,
        "comment": (comment or "").strip() or None,
        "deployed_sha": (snapshot.get("deployed") or {}).get("sha"),
        "versions": [m.get("version") for m in snapshot.get("selected") or snapshot.get("migrations") or []],
    }


def expired(timeout: timedelta, snapshot: dict[str, Any]) -> dict[str, Any]:
    """The audited record of a request nobody answered in time."""
    return {
        "decision": "expired",
        "by": None,
        "at": None,
        "comment": None,
        "timeout_seconds": timeout.total_seconds(),
        "deployed_sha": (snapshot.get("deployed") or {}).get("sha"),
        "versions": [m.get("version") for m in snapshot.get("selected") or snapshot.get("migrations") or []],
    }


def apply_to_outcome(outcome: dict[str, Any], approval: dict[str, Any] | None) -> dict[str, Any]:
    """The run's outcome with the approval: a rejected or expired request ends `rejected`/`approval_expired`."""
    if not approval:
        return outcome
    result = dict(outcome, approval=approval)
    if outcome.get("outcome") != "needs_human":
        return result
    if approval.get("decision") == "rejected":
        why = f": {approval['comment']}" if approval.get("comment") else ""
        result.update(outcome="rejected", reason=f"rejected by {approval.get('by')}{why}")
    elif approval.get("decision") == "expired":
        hours = float(approval.get("timeout_seconds") or 0) / 3600
        result.update(
            outcome="approval_expired",
            reason=f"nobody answered the approval request within {hours:g} h; nothing ran ({outcome.get('reason')})",
        )
    return result
