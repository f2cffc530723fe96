"""Sends the Slack and Grafana notices of a PDM run through Airflow's HTTP provider.

Both channels are optional (`notifications.slack.conn_id`, `notifications.grafana.conn_id` in the policy;
null = off). A notice is best effort: a channel that fails is logged and recorded in the audit store as
`notification_failed` with a reason that names neither the webhook URL nor the token, and the run carries
on. Connections (type `http`):

- Slack: host = the incoming-webhook URL (`https://hooks.slack.com/services/…`); nothing else.
- Grafana: host = Grafana's base URL; password = a service-account token (sent as `Authorization: Bearer`);
  leave login empty (a login would make the HTTP hook send basic auth instead).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from include.isotime import parse_iso_instant
from include.notifications import Phase, RunNotice, grafana_annotation, migrations_of, slack_message

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
GRAFANA_ENDPOINT = "api/annotations"


class NotificationError(RuntimeError):
    """A channel could not take the notice; the message is safe to log (secrets redacted)."""


def build_notice(
    context: Mapping[str, Any],
    environment: str,
    snapshot: dict[str, Any],
    pipeline: dict[str, Any] | None,
    *,
    outcome: dict[str, Any] | None = None,
    started_at: datetime | None = None,
) -> RunNotice:
    """The notice for this run, from the Airflow context, the classified snapshot, pipeline and outcome."""
    from include.decision import decision_id as make_decision_id

    dag_run = context["dag_run"]
    deployed = snapshot.get("deployed") or {}
    decision = (
        make_decision_id(dag_run.dag_id, dag_run.run_id, environment, deployed["sha"])
        if deployed.get("sha")
        else None
    )
    now = datetime.now(UTC)
    return RunNotice(
        environment=environment,
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        started_at=started_at or now,
        decision_id=decision,
        run_class=snapshot.get("run_class"),
        migrations=migrations_of(snapshot),
        pipeline_id=int(pipeline["id"]) if pipeline and pipeline.get("id") is not None else None,
        pipeline_url=(pipeline or {}).get("web_url") or None,
        package=deployed.get("ref") or None,
        outcome=(outcome or {}).get("outcome"),
        reason=(outcome or {}).get("reason"),
        ended_at=now if outcome is not None else None,
    )


def notify(
    context: Mapping[str, Any],
    environment: str,
    settings: Any,
    phase: Phase,
    notice: RunNotice,
) -> list[str]:
    """Send the notice to every configured channel; returns the failures (already logged and audited).

    Never raises: a notice must not fail the run or stop the audit record that follows it.
    """
    channels = [
        ("slack", getattr(settings, "slack_conn_id", None), send_slack, slack_message),
        ("grafana", getattr(settings, "grafana_conn_id", None), send_grafana, grafana_annotation),
    ]
    failures = []
    for channel, conn_id, send, build in channels:
        if not conn_id:
            continue
        try:
            send(conn_id, build(phase, notice))
            log.info("%s notice (%s) sent through connection %s", channel, phase, conn_id)
        except Exception as exc:  # noqa: BLE001 - best effort by design; recorded below
            reason = exc.args[0] if isinstance(exc, NotificationError) else _describe(exc, ())
            failures.append(f"{channel}: {reason}")
            log.warning("%s notice (%s) failed through connection %s: %s", channel, phase, conn_id, reason)
            _record_failure(context, environment, channel, conn_id, phase, reason)
    return failures


def notify_started(
    context: Mapping[str, Any],
    environment: str,
    settings: Any,
    snapshot: dict[str, Any],
    pipeline: dict[str, Any],
) -> list[str]:
    """The PDM pipeline was created: say so, with the migrations and their classes."""
    if not _enabled(settings):
        return []
    notice = build_notice(context, environment, snapshot, pipeline)
    return notify(context, environment, settings, "start", notice)


def notify_ended(
    context: Mapping[str, Any],
    environment: str,
    settings: Any,
    snapshot: dict[str, Any],
    outcome: dict[str, Any],
) -> list[str]:
    """The run recorded its outcome: close the notice begun at start (only runs that had a pipeline)."""
    pipeline = outcome.get("pipeline")
    if not _enabled(settings) or not pipeline:
        return []
    started = _parse(pipeline.get("created_at"))
    notice = build_notice(context, environment, snapshot, pipeline, outcome=outcome, started_at=started)
    return notify(context, environment, settings, "end", notice)


def _enabled(settings: Any) -> bool:
    return bool(getattr(settings, "slack_conn_id", None) or getattr(settings, "grafana_conn_id", None))


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_iso_instant(str(value))
    except ValueError:
        return None


def send_slack(conn_id: str, payload: dict[str, Any]) -> None:
    """POST the message to the webhook URL held by the connection's host."""
    hook, conn = _hook(conn_id)
    secrets = _secrets(conn)
    try:
        hook.run(
            endpoint=None,
            json=payload,
            headers={"Content-Type": "application/json"},
            extra_options={"timeout": TIMEOUT_SECONDS, "check_response": True},
        )
    except Exception as exc:
        # Not chained: the HTTP error names the webhook URL, whose path is the secret `_describe` masks.
        raise NotificationError(_describe(exc, secrets)) from None


def send_grafana(conn_id: str, payload: dict[str, Any]) -> None:
    """POST the annotation to Grafana with the connection's password as a bearer token."""
    hook, conn = _hook(conn_id)
    secrets = _secrets(conn)
    headers = {"Content-Type": "application/json"}
    if conn.password:
        headers["Authorization"] = f"Bearer {conn.password}"
    try:
        hook.run(
            endpoint=GRAFANA_ENDPOINT,
            json=payload,
            headers=headers,
            extra_options={"timeout": TIMEOUT_SECONDS, "check_response": True},
        )
    except Exception as exc:
        # Not chained: the HTTP error names the webhook URL, whose path is the secret `_describe` masks.
        raise NotificationError(_describe(exc, secrets)) from None


def _hook(conn_id: str) -> tuple[Any, Any]:
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="POST", http_conn_id=conn_id)
    try:
        conn = hook.get_connection(conn_id)
    except Exception as exc:
        raise NotificationError(f"connection {conn_id!r} is not defined ({type(exc).__name__})") from exc
    if not conn.host:
        raise NotificationError(f"connection {conn_id!r} has no host (the webhook or Grafana URL)")
    return hook, conn


def _secrets(conn: Any) -> tuple[str, ...]:
    """What must never appear in a log or audit line: the password and a webhook URL's secret path."""
    found = [conn.password or ""]
    host = conn.host or ""
    if "://" in host:
        path = host.split("://", 1)[1].partition("/")[2]
        found += [host, path]
        found += [part for part in path.split("/") if len(part) >= 6]
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def _describe(exc: BaseException, secrets: tuple[str, ...]) -> str:
    """One line on what went wrong (HTTP status or error type), secrets replaced by `***`."""
    message = str(exc).strip()
    http = re.match(r"^(\d{3}):(.*)$", message)  # how the HTTP hook reports a refused request
    if http:
        text = f"HTTP {http.group(1)} {http.group(2).strip()}"
    else:
        text = f"{type(exc).__name__}: {message.splitlines()[0]}" if message else type(exc).__name__
    for secret in secrets:
        text = text.replace(secret, "***")
    return text[:300]


def _record_failure(
    context: Mapping[str, Any], environment: str, channel: str, conn_id: str, phase: str, reason: str
) -> None:
    from pdm_orchestrator.audit_events import NOTIFICATION_FAILED, record

    try:
        record(
            context,
            environment,
            NOTIFICATION_FAILED,
            {"channel": channel, "conn_id": conn_id, "phase": phase, "reason": reason},
        )
    except Exception as exc:  # noqa: BLE001 - the notice is best effort, and so is its failure record
        log.error("could not record the failed %s notice: %s", channel, exc)
