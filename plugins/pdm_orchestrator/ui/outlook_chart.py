"""The PDM page's picture of the next 7 days per environment, drawn with plotly (its JavaScript is served by the
plugin itself: the page works without internet access).

`gather` adds to the core's calendar outlook what needs servers — expected traffic (Prometheus, the same hours a
week earlier), expected deployments (GitLab's deployment history through the forecast of the deploy-lock
gate) and the predicted next run (the DAG's own timetable); whatever cannot be read is named under the
picture instead of failing the page. `figure_div` draws it."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from include.outlook import WEEK, Outlook, expected_deployments, outlook, shift

if TYPE_CHECKING:
    from include.policy.model import Policy

log = logging.getLogger(__name__)

CLASS_COLOURS = {
    "noop": "#9aa5b1",
    "background": "#4c9f70",
    "data": "#3a7bd5",
    "schema_heavy": "#b5651d",
    "cleanup": "#8e44ad",
    "unknown": "#555555",
}


def gather(policy_path: str, environment: str, policy: Policy, now: datetime) -> Outlook:
    """The full outlook of one environment; each server-backed part is optional and explained when missing."""
    view = outlook(policy, environment, now)
    env = policy.environments[environment]
    try:
        view.next_run = _next_run(policy_path, environment, now) if env.schedule else None
        if not env.schedule:
            view.notes.append(f"no schedule (environments.{environment}.schedule: false): manual runs only")
    except Exception as exc:  # noqa: BLE001 - the picture explains what it could not compute
        view.notes.append(f"next run unknown: {type(exc).__name__}: {exc}")
    try:
        from include.classification.classes import MigrationClass
        from include.gates.traffic import settings_for_class
        from pdm_orchestrator.hooks.prometheus import PrometheusHook

        query = settings_for_class(policy, MigrationClass.BACKGROUND).query.replace(
            "{environment}", environment
        )
        history = PrometheusHook(policy.prometheus_conn_id, timeout=10).history(query, now - WEEK, now)
        view.traffic = shift(history, WEEK)
        if not history:
            view.notes.append(f"no traffic in Prometheus for the last 7 days ({query})")
    except Exception as exc:  # noqa: BLE001
        view.notes.append(f"traffic unavailable: {type(exc).__name__}: {str(exc)[:200]}")
    try:
        from pdm_orchestrator.hooks.gitlab import GitLabHook

        settings = policy.gates.deploy_lock.forecast
        past = GitLabHook(policy.gitlab.conn_id).recent_deployments(
            policy.gitlab.application_project, env.deploy_environment, now - settings.history
        )
        view.deployments = expected_deployments(
            [d.created_at for d in past if d.created_at], now, view.end, settings.history, settings.min_share
        )
        if not view.deployments:
            view.notes.append(
                f"no deployment expected: {len(past)} deployment(s) to {env.deploy_environment} in the last "
                f"{settings.history.days} days form no regular pattern"
            )
    except Exception as exc:  # noqa: BLE001
        view.notes.append(f"expected deployments unavailable: {type(exc).__name__}: {str(exc)[:200]}")
    return view


def _next_run(policy_path: str, environment: str, now: datetime) -> datetime | None:
    import pendulum

    from pdm_orchestrator.timetables.policy_windows import PolicyWindowTimetable

    found = PolicyWindowTimetable(policy_path, environment).next_run_after(pendulum.instance(now), False)
    return datetime.fromisoformat(found.isoformat()) if found else None


def figure_div(view: Outlook, div_id: str) -> str:
    """A <div> with the plotly figure (the page loads plotly.js once); times are shown in the viewer's zone."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.45, 0.55],
        vertical_spacing=0.06,
        subplot_titles=("Expected traffic (same hours last week) and class thresholds", "When what may run"),
    )
    if view.traffic:
        figure.add_trace(
            go.Scatter(
                x=[_ms(t) for t, _ in view.traffic],
                y=[v for _, v in view.traffic],
                mode="lines",
                name="expected traffic (req/s)",
                line={"color": "#1b1f24", "width": 1},
            ),
            row=1,
            col=1,
        )
    by_value: dict[float, list[str]] = {}
    for cls, threshold in view.thresholds.items():
        by_value.setdefault(threshold, []).append(cls)
    for threshold, classes in sorted(by_value.items()):
        figure.add_trace(
            go.Scatter(
                x=[_ms(view.start), _ms(view.end)],
                y=[threshold, threshold],
                mode="lines",
                name=f"{', '.join(classes)} threshold ({threshold:g} req/s)",
                line={"dash": "dash", "color": CLASS_COLOURS.get(classes[-1])},
            ),
            row=1,
            col=1,
        )
    rows: list[tuple[str, list[dict[str, Any]], str]] = []
    for cls in dict.fromkeys(w["class"] for w in view.windows):
        spans = [w for w in view.windows if w["class"] == cls]
        rows.append((f"{cls} may run", spans, CLASS_COLOURS.get(cls, "#777")))
    rows.append(("change locks", view.locks, "#b3261e"))
    if not view.locks:
        view.notes.append("no change lock in the next 7 days")
    for label, spans, colour in rows:
        if not spans:
            continue
        figure.add_trace(
            go.Bar(
                y=[label] * len(spans),
                base=[_ms(s["opens_at"]) for s in spans],
                x=[(s["closes_at"] - s["opens_at"]).total_seconds() * 1000 for s in spans],
                orientation="h",
                marker={"color": colour},
                name=label,
                showlegend=False,
                customdata=[
                    [s.get("window") or s.get("name"), _ms(s["opens_at"]), _ms(s["closes_at"])] for s in spans
                ],
                hovertemplate="%{y}: %{customdata[0]}<br>%{customdata[1]|%a %d %b %H:%M} – "
                "%{customdata[2]|%a %d %b %H:%M}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    if view.deployments:
        figure.add_trace(
            go.Scatter(
                x=[_ms(d["expected_at"]) for d in view.deployments],
                y=["expected deployments"] * len(view.deployments),
                mode="markers",
                marker={"symbol": "diamond", "size": 11, "color": "#e8a33d"},
                name="expected deployment",
                text=[d["basis"] for d in view.deployments],
                hovertemplate="deployment expected %{x|%a %d %b %H:%M}<br>%{text}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    if view.next_run is not None:
        figure.add_trace(
            go.Scatter(
                x=[_ms(view.next_run)],
                y=["predicted next run"],
                mode="markers+text",
                marker={"symbol": "star", "size": 14, "color": "#137333"},
                text=["next run"],
                textposition="middle right",
                name="predicted next run",
                hovertemplate="next scheduled run %{x|%a %d %b %H:%M}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    figure.update_layout(
        barmode="overlay",
        height=520,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.08},
        template="plotly_white",
    )
    figure.update_xaxes(type="date", range=[_ms(view.start), _ms(view.end)])
    figure.update_yaxes(title_text="req/s", row=1, col=1)
    figure.update_yaxes(autorange="reversed", row=2, col=1)
    page: str = figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False}
    )
    return page


def _ms(moment: datetime) -> float:
    """Epoch milliseconds: plotly.js then draws the instant in the browser's own time zone."""
    return moment.timestamp() * 1000


def plotly_js_path() -> str:
    """The plotly.js bundle shipped inside the plotly package (served at /pdm/static/plotly.min.js)."""
    from importlib.resources import files

    return str(files("plotly") / "package_data" / "plotly.min.js")
