"""FastAPI app mounted by the plugin at /pdm: the PDM page (Airflow login required) and /pdm/metrics.

The page is behind Airflow's own authentication (`requires_authenticated`: the UI's `_token` cookie or a
bearer token). The metrics endpoint uses a static bearer token from `PDM_METRICS_TOKEN` instead, because
Prometheus cannot renew Airflow's short-lived JWTs; without that variable the endpoint is closed.
"""

from __future__ import annotations

import hmac
import html
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse

from include.observability import EnvironmentStatus, environment_status, render_metrics

if TYPE_CHECKING:
    from include.audit import StoredEvent


def _requires_airflow_login() -> Callable[..., None]:
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return requires_authenticated()


def _load_statuses(now: datetime) -> tuple[list[EnvironmentStatus], str | None]:
    """Every environment's status from the audit store and the policy; an error is shown, not raised."""
    from include.audit import AuditStore
    from include.policy import load_policy
    from include.policy.names import environment_names

    error = None
    policy = None
    environments: list[str] = []
    policy_path = os.environ.get("PDM_POLICY_FILE", "config/policy.yaml")
    try:
        policy = load_policy(policy_path)
        environments = list(policy.environments)
    except Exception as exc:  # noqa: BLE001 - the page must explain, not crash
        error = f"policy invalid, every PDM run fails closed until it is fixed: {exc}"
        environments = environment_names(policy_path)
    events = []
    try:
        from airflow.models.connection import Connection

        from pdm_orchestrator.hooks.audit import audit_target

        target = audit_target(Connection.get_connection_from_secrets("pdm_audit"))
        store = AuditStore(target)
        store.migrate()
        events = store.events()
    except Exception as exc:  # noqa: BLE001
        error = "\n".join(filter(None, [error, f"audit store unreachable: {type(exc).__name__}: {exc}"]))
    statuses = []
    overrides = _overrides_by_run(events)
    approvals = _approvals_by_run(events)
    for name in environments or sorted({e.stream for e in events}):
        env_policy = policy.for_environment(name) if policy is not None else None
        status = environment_status(name, events, env_policy, now)
        for run in status.last_runs:
            run["override"] = overrides.get((run["dag_id"], run["run_id"]))
            run["approval"] = approvals.get((run["dag_id"], run["run_id"]))
        statuses.append(status)
    return statuses, error


def _overrides_by_run(events: list[StoredEvent]) -> dict[tuple[str, str], dict[str, Any]]:
    """Who overrode which gates and why, per (dag_id, run_id), from the runs' decision events."""
    found = {}
    for event in events:
        if event.kind == "decision" and event.payload.get("overridden"):
            found[(event.dag_id, event.run_id)] = {
                "user": event.payload.get("override_user") or event.actor,
                "gates": sorted(event.payload["overridden"]),
                "reason": next(iter(event.payload["overridden"].values()), None),
            }
    return found


def _approvals_by_run(events: list[StoredEvent]) -> dict[tuple[str, str], dict[str, Any]]:
    """The answer to each run's approval request (approved/rejected by whom, when, why, or expired)."""
    found = {}
    for event in events:
        if event.kind in ("approval", "approval_expired"):
            found[(event.dag_id, event.run_id)] = dict(event.payload)
    return found


def _approval_cell(approval: dict[str, Any] | None) -> str:
    if not approval:
        return "-"
    if approval.get("decision") == "expired":
        return "expired unanswered"
    esc = html.escape
    comment = f": {esc(str(approval['comment']))}" if approval.get("comment") else ""
    return (
        f"{esc(str(approval.get('decision')))} by {esc(str(approval.get('by')))} "
        f"{_time(approval.get('at'))}{comment}"
    )


def _time(iso: str | None) -> str:
    """A <time> element: UTC in the page, turned into the viewer's zone by the page's script."""
    if not iso:
        return "-"
    esc = html.escape
    try:
        shown = datetime.fromisoformat(iso).astimezone(UTC).strftime("%a %Y-%m-%d %H:%M UTC")
    except ValueError:
        shown = iso
    return f"<time datetime='{esc(iso)}'>{esc(shown)}</time>"


# plotly.js from the plotly package, served by this app (relative to /pdm/: works embedded in Airflow's UI).
PLOTLY_SCRIPT = "<script src='static/plotly.min.js' charset='utf-8'></script>"

# Rewrites every <time datetime> into the viewer's time zone (the browser knows it; the server does not).
LOCAL_TIMES_SCRIPT = (
    "<script>for(const t of document.querySelectorAll('time[datetime]')){const d=new Date(t.dateTime);"
    "if(!isNaN(d)){t.title=t.textContent;t.textContent=d.toLocaleString(undefined,{weekday:'short',"
    "year:'numeric',month:'short',day:'numeric',hour:'2-digit',minute:'2-digit',timeZoneName:'short'});}}"
    "</script>"
)


def _load_profiles(environments: list[str]) -> dict[str, str]:
    """Each environment's learned low-traffic hours (latest stored profile), as one line for the page."""
    from include.policy.learned import TrafficProfile
    from pdm_orchestrator.gate_checks import latest_traffic_profile

    lines = {}
    for name in environments:
        profile, error = latest_traffic_profile(name)
        if error:
            lines[name] = f"unreadable: {error}"
        elif profile is None:
            lines[name] = "no profile learned yet (the pdm_traffic_profile DAG learns it daily)"
        else:
            assert isinstance(profile, TrafficProfile)
            computed = profile.computed_at.strftime("%Y-%m-%d %H:%M UTC")
            lines[name] = f"{profile.describe_hours()} (learned {computed} from {profile.samples} samples)"
    return lines


def _load_pictures(environments: list[str], now: datetime) -> dict[str, str]:
    """Each environment's 7-day picture (a plotly <div>), or a line saying why there is none."""
    from include.policy import load_policy
    from pdm_orchestrator.ui.outlook_chart import figure_div, gather

    policy_path = os.environ.get("PDM_POLICY_FILE", "config/policy.yaml")
    try:
        policy = load_policy(policy_path)
    except Exception:  # noqa: BLE001 - the page already shows the policy error
        return dict.fromkeys(environments, "<p class='error'>No picture: the policy is invalid.</p>")
    pictures = {}
    for name in environments:
        if name not in policy.environments:
            continue
        try:
            view = gather(policy_path, name, policy.for_environment(name), now)
            figure = figure_div(view, f"outlook-{name}")  # may add notes (e.g. no change lock)
            notes = "".join(f"<li>{html.escape(n)}</li>" for n in view.notes)
            pictures[name] = figure + (f"<ul class='muted'>{notes}</ul>" if notes else "")
        except Exception as exc:  # noqa: BLE001 - one environment's picture must not break the page
            pictures[name] = (
                f"<p class='error'>No picture: {html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p>"
            )
    return pictures


def create_app() -> FastAPI:
    app = FastAPI(title="PDM Orchestrator", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(_requires_airflow_login())])
    def pdm_page() -> str:
        now = datetime.now(UTC)
        statuses, error = _load_statuses(now)
        environments = [s.environment for s in statuses]
        return render_page(
            statuses, error, now, _load_profiles(environments), _load_pictures(environments, now)
        )

    @app.get("/static/plotly.min.js", dependencies=[Depends(_requires_airflow_login())])
    def plotly_js() -> FileResponse:
        from pdm_orchestrator.ui.outlook_chart import plotly_js_path

        return FileResponse(plotly_js_path(), media_type="text/javascript")

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics(authorization: str | None = Header(default=None)) -> str:
        expected = os.environ.get("PDM_METRICS_TOKEN", "")
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not expected or not hmac.compare_digest(given, expected):
            raise HTTPException(
                status_code=401, detail="metrics need the bearer token configured in PDM_METRICS_TOKEN"
            )
        statuses, _ = _load_statuses(datetime.now(UTC))
        return render_metrics(statuses)

    return app


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    hours = int(seconds // 3600)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h {int(seconds % 3600 // 60)}m"


def render_page(
    statuses: list[EnvironmentStatus],
    error: str | None,
    now: datetime,
    profiles: dict[str, str] | None = None,
    pictures: dict[str, str] | None = None,
) -> str:
    """The page: per environment, pending migrations, gates, next windows per class, learned low-traffic
    hours (when `profiles` is given), last runs."""
    esc = html.escape
    parts = [f"<p class='muted'>As of {_time(now.isoformat())}</p>"]
    if error:
        parts.append(f"<p class='error'>{esc(error)}</p>")
    for status in statuses:
        parts.append(f"<section id='env-{esc(status.environment)}'><h2>{esc(status.environment)}</h2>")
        if pictures and status.environment in pictures:
            parts.append(f"<h3>The next 7 days</h3><div class='picture'>{pictures[status.environment]}</div>")
        deployed = status.deployed or {}
        if deployed:
            parts.append(
                f"<p>Deployed: <code>{esc(str(deployed.get('ref') or deployed.get('sha', '')))}</code></p>"
            )
        parts.append("<h3>Pending migrations</h3>")
        if status.pending:
            rows = "".join(
                f"<tr><td><code>{esc(m['version'])}</code></td><td>{esc(m.get('name') or m.get('path', ''))}</td>"
                f"<td class='cls cls-{esc(m['class'])}'>{esc(m['class'])}</td><td>{esc(str(m.get('database')))}</td>"
                f"<td>{esc('; '.join(m.get('reasons') or []))}</td><td>{_age(m.get('age_seconds'))}</td></tr>"
                for m in status.pending
            )
            parts.append(
                "<table><tr><th>version</th><th>name</th><th>class</th><th>database</th><th>reasons</th><th>age</th></tr>"
                f"{rows}</table>"
            )
        elif status.last_runs and status.last_runs[0]["outcome"] == "pipeline_succeeded":
            last = status.last_runs[0]
            parts.append(
                f"<p>Nothing pending: the last run's pipeline {esc(str(last.get('pipeline_id') or ''))} "
                "ran what was pending.</p>"
            )
        else:
            parts.append("<p>None pending at the last run.</p>")
        parts.append("<h3>Gates at the last decision</h3>")
        if status.gates:
            gate_rows = "".join(
                f"<tr><td>{esc(g['gate'])}</td><td class='{'open' if g['open'] else 'closed'}'>{'open' if g['open'] else 'closed'}</td>"
                f"<td>{esc(str(g.get('reason')))}</td></tr>"
                for g in status.gates
            )
            parts.append(
                f"<p class='muted'>{_time(status.gates_at)}</p><table><tr><th>gate</th><th>state</th><th>reason</th></tr>{gate_rows}</table>"
            )
        else:
            parts.append("<p>No decision recorded yet.</p>")
        parts.append(
            "<h3>Windows per class</h3><table><tr><th>class</th><th>now</th><th>next opens</th><th>why</th></tr>"
        )
        for cls, window in status.next_windows.items():
            state = "allowed" if window.get("allowed_now") else "closed"
            opens = _time(window.get("opens_at"))
            parts.append(
                f"<tr><td>{esc(cls)}</td><td class='{state}'>{state}</td><td>{opens} ({_age(window.get('seconds'))})</td>"
                f"<td>{esc(str(window.get('reason')))}</td></tr>"
            )
        parts.append("</table>")
        if profiles is not None and status.environment in profiles:
            parts.append(
                f"<h3>Learned low-traffic hours</h3><p class='profile'>{esc(profiles[status.environment])}</p>"
            )
        parts.append("<h3>Last runs</h3>")
        if status.last_runs:
            run_rows: list[str] = []
            for run in status.last_runs:
                run_link = f"/dags/{esc(run['dag_id'])}/runs/{esc(run['run_id'])}"
                pipeline = (
                    f"<a href='{esc(run['pipeline_url'])}'>pipeline {esc(str(run['pipeline_id']))}</a>"
                    if run.get("pipeline_url")
                    else "-"
                )
                override = run.get("override")
                overridden = (
                    f"{esc(', '.join(override['gates'] or []))} by {esc(str(override['user']))}: "
                    f"{esc(str(override['reason'] or ''))}"
                    if override
                    else "-"
                )
                run_rows.append(
                    f"<tr><td>{_time(run['recorded_at'])}</td><td><a href='{run_link}'>{esc(run['run_id'])}</a></td>"
                    f"<td>{esc(str(run['outcome']))}</td><td>{pipeline}</td><td>{overridden}</td>"
                    f"<td class='approval'>{_approval_cell(run.get('approval'))}</td>"
                    f"<td>{esc(str(run.get('reason') or ''))}</td></tr>"
                )
            parts.append(
                "<table><tr><th>ended</th><th>run</th><th>outcome</th><th>pipeline</th><th>override</th><th>approval</th>"
                "<th>reason</th></tr>" + "".join(run_rows) + "</table>"
            )
        else:
            parts.append("<p>No run recorded yet.</p>")
        parts.append("</section>")
    style = (
        "body{font-family:system-ui,sans-serif;margin:1.5em;color:#1b1f24}table{border-collapse:collapse;margin-bottom:1em}"
        "td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}.open,.allowed{color:#137333}"
        ".closed{color:#b3261e}.muted{color:#666}.error{color:#b3261e;font-weight:bold;white-space:pre-wrap}section{margin-bottom:2em}.picture{max-width:1200px}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>PDM Orchestrator</title>"
        f"{PLOTLY_SCRIPT if pictures else ''}<style>{style}</style></head>"
        f"<body><h1>Post-deploy migrations</h1>{''.join(parts)}{LOCAL_TIMES_SCRIPT}</body></html>"
    )


app = create_app()


def page_context() -> dict[str, Any]:
    """For tests: what the page would show now."""
    statuses, error = _load_statuses(datetime.now(UTC))
    return {"statuses": statuses, "error": error}
