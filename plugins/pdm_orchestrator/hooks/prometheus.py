"""Prometheus hook: PromQL over the HTTP provider, answers turned into the traffic gate's observations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.http.hooks.http import HttpHook

from include.gates.traffic import TrafficObservation, TrafficSettings


class PrometheusError(RuntimeError):
    """A query failed: the message names the endpoint and the problem (never a token)."""


class PrometheusHook(HttpHook):
    """Queries a Prometheus (or Thanos) HTTP API named by an `http` Airflow connection.

    Connection: host, port and schema of the query endpoint; an optional bearer token in the password or
    in extra `{"bearer_token": ...}`. Raises :class:`PrometheusError` on HTTP errors, timeouts, a status
    other than "success", or a malformed answer.
    """

    conn_name_attr = "prometheus_conn_id"
    default_conn_name = "prometheus_default"
    hook_name = "Prometheus"

    def __init__(self, prometheus_conn_id: str = default_conn_name, timeout: float = 10.0) -> None:
        super().__init__(method="GET", http_conn_id=prometheus_conn_id)
        self.timeout = timeout

    def get_conn(self, headers: dict[str, Any] | None = None, extra_options: dict[str, Any] | None = None):
        session = super().get_conn(headers, extra_options)
        conn = self.get_connection(self.http_conn_id)
        token = (conn.extra_dejson or {}).get("bearer_token") or conn.password
        session.auth = None  # HttpHook would send login/password as basic auth
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def _api(self, endpoint: str, params: dict[str, Any]) -> Any:
        try:
            response = self.run(
                endpoint, data=params, extra_options={"timeout": self.timeout, "check_response": False}
            )
        except Exception as exc:  # noqa: BLE001 - connection refused, timeout, DNS: all mean "no answer"
            raise PrometheusError(f"Prometheus {endpoint}: {type(exc).__name__}: {str(exc)[:200]}") from None
        if response.status_code != 200:
            raise PrometheusError(
                f"Prometheus {endpoint}: HTTP {response.status_code}: {response.text[:200]}"
            )
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(f"Prometheus {endpoint}: answer is not JSON") from None
        if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
            raise PrometheusError(
                f"Prometheus {endpoint}: status {body.get('status') if isinstance(body, dict) else body!r}: {str(body)[:200]}"
            )
        return body["data"]

    def query(self, promql: str, at: datetime) -> list[tuple[dict[str, str], float, datetime]]:
        data = self._api("api/v1/query", {"query": promql, "time": at.timestamp()})
        try:
            return [
                (
                    item["metric"],
                    float(item["value"][1]),
                    datetime.fromtimestamp(float(item["value"][0]), UTC),
                )
                for item in data["result"]
            ]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PrometheusError(f"Prometheus api/v1/query: malformed result: {exc}") from None

    def query_range(
        self, promql: str, start: datetime, end: datetime, step_seconds: float
    ) -> list[tuple[dict[str, str], list[tuple[datetime, float]]]]:
        data = self._api(
            "api/v1/query_range",
            {"query": promql, "start": start.timestamp(), "end": end.timestamp(), "step": step_seconds},
        )
        try:
            return [
                (
                    item["metric"],
                    [(datetime.fromtimestamp(float(t), UTC), float(v)) for t, v in item["values"]],
                )
                for item in data["result"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise PrometheusError(f"Prometheus api/v1/query_range: malformed result: {exc}") from None

    def traffic_observation(
        self, settings: TrafficSettings, environment: str, now: datetime
    ) -> TrafficObservation:
        """Samples over the sustain period, the baseline and health; failures become `error`, never open."""
        query = settings.query.replace("{environment}", environment)
        try:
            step = max(1.0, settings.sustain.total_seconds() / 120)
            series = self.query_range(query, now - settings.sustain, now, step)
            if len(series) > 1:
                return TrafficObservation(
                    error=f"query returns {len(series)} series; aggregate it to one (e.g. sum(...))"
                )
            samples = series[0][1] if series else []
            baseline = None
            if settings.mode == "baseline_percentile":
                from include.gates.traffic_baseline import baseline_threshold

                start = now - timedelta(weeks=settings.baseline_weeks)
                history = self.query_range(query, start, now - timedelta(hours=1), 300)
                baseline = baseline_threshold(history[0][1] if history else [], now, settings.percentile)
            health = health_at = None
            if settings.health_query:
                found = self.query(settings.health_query.replace("{environment}", environment), now)
                if found:
                    _, health, health_at = found[0]
            return TrafficObservation(samples=samples, baseline=baseline, health=health, health_at=health_at)
        except PrometheusError as exc:
            return TrafficObservation(error=str(exc))
