"""The score table as text, CSV or HTML (with timelines of traffic, deployments, incidents and PDM runs)."""

from __future__ import annotations

import csv
import html
import io
from typing import Any

from include.classification.classes import MigrationClass
from include.simulation.comparison import Comparison
from include.simulation.inputs import STEP_MINUTES
from include.simulation.scores import Scores

FORMATS = ("table", "csv", "html")
CLASSES = [c.value for c in MigrationClass]

# (key, table header, formatter) for the single-valued columns, in table order.
_COLUMNS: list[tuple[str, str]] = [
    ("heavy_peak_min", "heavy@peak min"),
    ("peak_load", "load@peak"),
    ("deploy_blocked_min", "deploy blocked min"),
    ("deploys_delayed", "deploys delayed"),
    ("incident_rollbacks", "incident rollbacks"),
    ("bake_violations", "bake short"),
    ("bake_p50_h", "bake p50 h"),
]
_TAIL: list[tuple[str, str]] = [
    ("pending_p95_h", "age p95 h"),
    ("max_pending_age_h", "age max h"),
    ("runs", "runs"),
    ("manual_actions", "manual"),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _rows(scores: dict[str, Scores]) -> tuple[list[str], list[list[str]]]:
    header = ["policy", *(h for _, h in _COLUMNS), *(f"{c} age h" for c in CLASSES), *(h for _, h in _TAIL)]
    rows = []
    for name, s in scores.items():
        ages = [f"{_fmt(s.pending_age_h[c][0])}/{_fmt(s.pending_age_h[c][1])}" for c in CLASSES]
        rows.append(
            [
                name,
                *(_fmt(getattr(s, k)) for k, _ in _COLUMNS),
                *ages,
                *(_fmt(getattr(s, k)) for k, _ in _TAIL),
            ]
        )
    return header, rows


def _caption(comparison: Comparison) -> str:
    world = comparison.world
    return (
        f"{world.weeks} weeks from {world.start:%Y-%m-%d} (Monday 00:00 UTC), seed {world.seed}, "
        f"policy {comparison.policy_path.name}; {len(world.deployments)} deployments planned, "
        f"{len(world.migrations)} migrations, {len(world.incidents)} incidents; "
        f"peak = rate ≥ {comparison.meter.threshold:.0f} req/s (p{world.peak_percentile:g})"
    )


def render_table(comparison: Comparison) -> str:
    """A plain-text table, one row per policy (a Markdown pipe table, so docs can paste it as is)."""
    header, rows = _rows(comparison.scores)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    lines = [_caption(comparison), "", line(header)]
    lines.append(
        "|" + "|".join(("-" * (w + 1) + ":") if i else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    )
    lines.extend(line(r) for r in rows)
    source = comparison.scores.get("oracle")
    if source is not None and source.notes.get("source"):
        lines.append("")
        lines.append(f"oracle schedule: {source.notes['source']}")
    return "\n".join(lines) + "\n"


def render_csv(comparison: Comparison) -> str:
    """One row per policy; each class's pending age as two columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = [k for k, _ in _COLUMNS]
    tail = [k for k, _ in _TAIL]
    writer.writerow(["policy", *keys, *(f"age_{c}_{p}_h" for c in CLASSES for p in ("p50", "p95")), *tail])
    for name, s in comparison.scores.items():
        ages = [s.pending_age_h[c][i] for c in CLASSES for i in (0, 1)]
        writer.writerow(
            [
                name,
                *(getattr(s, k) for k in keys),
                *("" if a is None else a for a in ages),
                *(getattr(s, k) for k in tail),
            ]
        )
    return out.getvalue()


_RUN_COLOURS = {
    "noop": "#9e9e9e",
    "background": "#64b5f6",
    "data": "#ffb74d",
    "schema_heavy": "#e57373",
    "cleanup": "#ba68c8",
    "unknown": "#000000",
}


def _timeline(comparison: Comparison, begin: float, end: float, width: int = 1400) -> str:
    """An SVG of [begin, end) minutes: traffic with peak shading, deployments, incidents, runs per policy."""
    world = comparison.world
    left, lane = 130, 22
    policies = list(comparison.outcomes)
    traffic_h = 90
    height = traffic_h + 20 + lane * (2 + len(policies)) + 20
    span = end - begin

    def x(minute: float) -> float:
        return left + (min(max(minute, begin), end) - begin) / span * (width - left - 10)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11">']
    top = max(float(world.traffic.max()), 1.0)
    first, last = int(begin // STEP_MINUTES), min(int(end // STEP_MINUTES), world.traffic.size)
    points = " ".join(
        f"{x(i * STEP_MINUTES):.1f},{10 + traffic_h * (1 - world.traffic[i] / top):.1f}"
        for i in range(first, last, 3)
    )
    for i in range(first, last):
        if comparison.meter.peak[i]:
            parts.append(
                f'<rect x="{x(i * STEP_MINUTES):.1f}" y="10" width="{max(x((i + 1) * STEP_MINUTES) - x(i * STEP_MINUTES), 0.5):.2f}" '
                f'height="{traffic_h}" fill="#fde0dc"/>'
            )
    parts.append(f'<polyline points="{points}" fill="none" stroke="#1565c0" stroke-width="1"/>')
    parts.append(f'<text x="4" y="{10 + traffic_h / 2}">traffic (peak shaded)</text>')
    day = (begin // 1440) * 1440
    while day < end:
        if day >= begin:
            parts.append(
                f'<line x1="{x(day):.1f}" y1="10" x2="{x(day):.1f}" y2="{height - 10}" stroke="#eee"/>'
            )
            parts.append(f'<text x="{x(day) + 2:.1f}" y="{height - 2}">{world.at(day):%a %d}</text>')
        day += 1440
    y = traffic_h + 20
    reference = comparison.outcomes.get("orchestrator") or next(iter(comparison.outcomes.values()))
    parts.append(f'<text x="4" y="{y + 14}">deployments</text>')
    for d in reference.deployments:
        if d.end > begin and d.start < end:
            parts.append(
                f'<rect x="{x(d.start):.1f}" y="{y + 4}" width="{max(x(d.end) - x(d.start), 1):.1f}" height="14" fill="#81c784"/>'
            )
    y += lane
    parts.append(f'<text x="4" y="{y + 14}">incidents</text>')
    for incident in world.incidents:
        if incident.end > begin and incident.start < end:
            colour = "#c62828" if incident.severity <= world.rollback_severity else "#ffcdd2"
            drawn_from, drawn_to = x(incident.start), x(incident.end)
            parts.append(
                f'<rect x="{drawn_from:.1f}" y="{y + 4}" width="{max(drawn_to - drawn_from, 1):.1f}" height="14" '
                f'fill="{colour}"><title>S{incident.severity}</title></rect>'
            )
    for name in policies:
        y += lane
        parts.append(f'<text x="4" y="{y + 14}">{html.escape(name)}</text>')
        for run in comparison.outcomes[name].runs:
            if run.end > begin and run.start < end:
                parts.append(
                    f'<rect x="{x(run.start):.1f}" y="{y + 4}" width="{max(x(run.end) - x(run.start), 1.5):.1f}" '
                    f'height="14" fill="{_RUN_COLOURS[run.run_class.value]}"><title>{html.escape(name)} '
                    f"{world.at(run.start):%a %Y-%m-%d %H:%M} {run.run_class.value}, {len(run.executed)} migrations, "
                    f"{run.end - run.start:.0f} min</title></rect>"
                )
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(comparison: Comparison) -> str:
    """A standalone page: the table, then a timeline per week."""
    header, rows = _rows(comparison.scores)
    table = ["<table><thead><tr>", *(f"<th>{html.escape(h)}</th>" for h in header), "</tr></thead><tbody>"]
    for row in rows:
        table.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    table.append("</tbody></table>")
    legend = " ".join(
        f'<span style="background:{colour};color:#fff;padding:0 4px">{name}</span>'
        for name, colour in _RUN_COLOURS.items()
    )
    weeks = []
    for week in range(comparison.world.weeks):
        begin = week * 7 * 1440.0
        weeks.append(f"<h3>Week {week + 1} (from {comparison.world.at(begin):%Y-%m-%d})</h3>")
        weeks.append(_timeline(comparison, begin, begin + 7 * 1440.0))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>PDM policy simulation</title>"
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}</style>"
        f"</head><body><h1>PDM policy simulation</h1><p>{html.escape(_caption(comparison))}</p>"
        + "".join(table)
        + f"<h2>Timelines</h2><p>PDM runs coloured by run class: {legend}; deployments green; incidents red "
        "(dark: may need a rollback).</p>" + "\n".join(weeks) + "</body></html>\n"
    )


def render(comparison: Comparison, fmt: str) -> str:
    if fmt == "table":
        return render_table(comparison)
    if fmt == "csv":
        return render_csv(comparison)
    if fmt == "html":
        return render_html(comparison)
    raise ValueError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")
