"""Slack and Grafana notices of a PDM run, as pure payload builders (no Airflow, no network).

A notice is built from what the audit store already holds (environment, run, decision id, the migrations and
their classes, the pipeline, the outcome). Payloads carry nothing else: never a token, a connection URI or a
webhook URL, so they are safe to log or record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Phase = Literal["start", "end"]

# How many migrations a Slack message lists before it says "and N more" (Slack truncates long texts).
MAX_LISTED = 20
# Outcomes that mean the PDM did what it was asked; everything else is shown as a failure or a stop.
SUCCESS_OUTCOMES = frozenset({"pipeline_succeeded"})


@dataclass(frozen=True)
class MigrationLine:
    """One migration as the notice lists it."""

    version: str
    name: str
    cls: str

    @classmethod
    def from_snapshot(cls, item: dict[str, Any]) -> MigrationLine:
        """From a classified-snapshot migration (`version`, `name`, `class`, `path`)."""
        name = str(item.get("name") or "") or str(item.get("path") or "").rsplit("/", 1)[-1]
        return cls(str(item.get("version") or "?"), name, str(item.get("class") or "unknown"))


@dataclass(frozen=True)
class RunNotice:
    """What a start or end notice says about one PDM run."""

    environment: str
    dag_id: str
    run_id: str
    started_at: datetime
    decision_id: str | None = None
    run_class: str | None = None
    migrations: tuple[MigrationLine, ...] = ()
    pipeline_id: int | None = None
    pipeline_url: str | None = None
    package: str | None = None
    outcome: str | None = None
    reason: str | None = None
    ended_at: datetime | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def classes(self) -> list[str]:
        """Distinct classes of the migrations, in first-seen order."""
        return list(dict.fromkeys(m.cls for m in self.migrations))


def migrations_of(snapshot: dict[str, Any]) -> tuple[MigrationLine, ...]:
    """The migrations the run executes: the selected prefix in selected_versions mode, else all pending."""
    chosen = snapshot.get("selected")
    if chosen is None:
        chosen = snapshot.get("migrations") or []
    return tuple(MigrationLine.from_snapshot(m) for m in chosen)


def slack_message(phase: Phase, notice: RunNotice) -> dict[str, Any]:
    """A Slack incoming-webhook body: one `text` (mrkdwn) that reads well in a channel and a notification."""
    header = _headline(phase, notice)
    lines = [header]
    if notice.migrations:
        lines.append(f"{len(notice.migrations)} migration(s), class(es) {', '.join(notice.classes)}:")
        for m in notice.migrations[:MAX_LISTED]:
            lines.append(f"• `{m.version}` {m.name} — *{m.cls}*")
        if len(notice.migrations) > MAX_LISTED:
            lines.append(f"• … and {len(notice.migrations) - MAX_LISTED} more")
    if phase == "end" and notice.reason:
        lines.append(f"Outcome: *{notice.outcome}* — {notice.reason}")
    facts = []
    if notice.pipeline_id is not None:
        facts.append(
            f"Pipeline: <{notice.pipeline_url}|#{notice.pipeline_id}>"
            if notice.pipeline_url
            else f"Pipeline: #{notice.pipeline_id}"
        )
    if notice.package:
        facts.append(f"Package: `{notice.package}`")
    if notice.decision_id:
        facts.append(f"Decision: `{notice.decision_id}`")
    facts.append(f"Run: `{notice.dag_id}` / `{notice.run_id}`")
    lines.append(" · ".join(facts))
    return {"text": "\n".join(lines), "unfurl_links": False}


def grafana_annotation(phase: Phase, notice: RunNotice) -> dict[str, Any]:
    """A Grafana `POST /api/annotations` body: a point when the PDM starts, a region (start → end) at the end.

    Tags: `pdm`, the environment, each migration class, and at the end the outcome, so dashboards can filter
    by any of them.
    """
    tags = ["pdm", notice.environment, *notice.classes, *notice.tags]
    if phase == "end" and notice.outcome:
        tags.append(notice.outcome)
    body: dict[str, Any] = {
        "time": _epoch_ms(notice.started_at),
        "tags": list(dict.fromkeys(tags)),
        "text": _headline(phase, notice, markup=False),
    }
    if phase == "end":
        body["timeEnd"] = _epoch_ms(notice.ended_at or notice.started_at)
    return body


def _headline(phase: Phase, notice: RunNotice, *, markup: bool = True) -> str:
    count = len(notice.migrations)
    env = f"*{notice.environment}*" if markup else notice.environment
    what = f"{count} post-deploy migration(s)" if count else "post-deploy migrations"
    if phase == "start":
        text = f"PDM started on {env}: {what}"
        if notice.pipeline_id is not None:
            text += f", pipeline #{notice.pipeline_id}"
        return (":arrow_forward: " if markup else "") + text
    ok = notice.outcome in SUCCESS_OUTCOMES
    icon = ":white_check_mark: " if ok else ":x: "
    text = f"PDM on {env} ended {notice.outcome or 'unknown'}: {what}"
    if notice.pipeline_id is not None:
        text += f", pipeline #{notice.pipeline_id}"
    if not markup and notice.reason:
        text += f" — {notice.reason}"
    return (icon if markup else "") + text


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"notice time {moment.isoformat()} has no time zone")
    return int(moment.timestamp() * 1000)
