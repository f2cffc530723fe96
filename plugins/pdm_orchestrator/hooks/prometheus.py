"""Prometheus hook: PromQL over the HTTP provider, answers turned into the traffic gate's observations."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.http.hooks.http import HttpHook
from requests import Session

from include.gates.rollback import HealthBounds, HealthReading
from include.gates.traffic import TrafficObservation, TrafficSettings

Labels = dict[str, str]
MAX_POINTS = 10_000  # Prometheus refuses range queries of more than 11,000 points per series
BASELINE_STEP_SECONDS = 60
DEFAULT_TIMEOUT_SECONDS = 10.0


class PrometheusError(RuntimeError):
    """A query failed; the message names the endpoint and the problem, never a credential."""


class PrometheusHook(HttpHook):
    """Runs PromQL against a Prometheus (or Thanos) HTTP API named by an `http` Airflow connection.

    :param prometheus_conn_id: the connection: host, port and schema of the query endpoint. A bearer token
        goes in extra `{"bearer_token": ...}` or in the password (with no login; login + password is basic
        auth). Other extra keys are sent as headers (e.g. a tenant header), as with any HttpHook.
    :param timeout: seconds per request; default: extra "timeout" of the connection, else 10.

    `query` and `query_range` raise :class:`PrometheusError` on connection errors, timeouts, HTTP errors,
    a status other than "success" and malformed answers. `traffic_observation` never raises for those:
    it returns an observation carrying the error, which the gate reads as closed.
    """

    conn_name_attr = "prometheus_conn_id"
    default_conn_name = "prometheus_default"
    conn_type = "http"
    hook_name = "Prometheus"

    def __init__(self, prometheus_conn_id: str = default_conn_name, timeout: float | None = None) -> None:
        super().__init__(method="GET", http_conn_id=prometheus_conn_id)
        self.prometheus_conn_id = prometheus_conn_id
        self.timeout = timeout

    def get_conn(
        self, headers: dict[str, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> Session:
        """The HttpHook session, with the bearer token as an Authorization header (not as a stray header)."""
        session = super().get_conn(headers, extra_options)
        conn = self.get_connection(self.http_conn_id)
        extra = conn.extra_dejson or {}
        session.headers.pop("bearer_token", None)  # HttpHook copies unknown extras into headers
        token = extra.get("bearer_token") or (conn.password if not conn.login else None)
        if token:
            session.auth = None
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test connection": Prometheus answers an instant query."""
        try:
            self.query("vector(1)", datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - the message is the answer
            return False, str(exc)[:300]
        return True, f"Prometheus answers at {self._endpoint_name('api/v1/query')}"

    def _endpoint_name(self, path: str) -> str:
        base = getattr(self, "base_url", "")
        if not base:  # the connection could not even be read
            return f"Prometheus connection {self.prometheus_conn_id!r} ({path})"
        return f"{base.rstrip('/')}/{path}"

    def _request_timeout(self) -> float:
        """The hook's timeout, else the connection's extra "timeout", else 10 s (requests has none)."""
        if self.timeout is None:
            extra = self.get_connection(self.http_conn_id).extra_dejson or {}
            self.timeout = float(extra.get("timeout", DEFAULT_TIMEOUT_SECONDS))
        return self.timeout

    def _api(self, path: str, params: dict[str, Any]) -> Any:
        try:
            options = {"check_response": False, "timeout": self._request_timeout()}
            response = self.run(path, data=params, extra_options=options)
        except Exception as exc:  # noqa: BLE001 - refused, timeout, DNS, missing connection: all "no answer"
            raise PrometheusError(
                f"{self._endpoint_name(path)}: {type(exc).__name__}: {_short(exc)}"
            ) from exc
        where = self._endpoint_name(path)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            detail = body.get("error") if isinstance(body, dict) else response.text
            raise PrometheusError(f"{where}: HTTP {response.status_code}: {_short(detail)}")
        if not isinstance(body, dict):
            raise PrometheusError(f"{where}: the answer is not a JSON object: {_short(response.text)}")
        if body.get("status") != "success":
            raise PrometheusError(f"{where}: status {body.get('status')!r}: {_short(body.get('error'))}")
        if not isinstance(body.get("data"), dict):
            raise PrometheusError(f"{where}: the answer has no data object")
        return body["data"]

    def query(self, promql: str, at: datetime) -> list[tuple[Labels, float, datetime]]:
        """An instant query at `at`: (labels, value, time) per series; a scalar answer is one unlabelled row."""
        path = "api/v1/query"
        data = self._api(path, {"query": promql, "time": _unix(at)})
        try:
            if data["resultType"] == "scalar":
                stamp, value = data["result"]
                return [({}, float(value), _time(stamp))]
            if data["resultType"] != "vector":
                raise ValueError(f"expected a vector, got {data['resultType']}")
            return [
                (dict(item["metric"]), float(item["value"][1]), _time(item["value"][0]))
                for item in data["result"]
            ]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PrometheusError(f"{self._endpoint_name(path)}: malformed result: {_short(exc)}") from exc

    def query_sampled(self, promql: str, at: datetime) -> list[tuple[Labels, float, datetime]]:
        """An instant query whose times are the samples' own (PromQL `timestamp()`), not the evaluation
        time: an instant query answers with any sample inside Prometheus' lookback (5 min by default), stamped
        `at`, so staleness judged on that time is bounded by the lookback, not by `max_staleness`.

        For a selector or a recording rule (what GitLab's dashboards query) `timestamp()` is the scrape or rule
        evaluation time; for a computed expression Prometheus returns the evaluation time (no better known).
        A series missing from the timestamp answer gets the epoch: stale, so closed."""
        rows = self.query(promql, at)
        if not rows:
            return rows
        stamps = {_series_key(labels): value for labels, value, _ in self.query(f"timestamp({promql})", at)}
        epoch = datetime.fromtimestamp(0, UTC)
        return [
            (labels, value, _time(stamps[_series_key(labels)]) if _series_key(labels) in stamps else epoch)
            for labels, value, _ in rows
        ]

    def query_range(
        self, promql: str, start: datetime, end: datetime, step_seconds: float
    ) -> list[tuple[Labels, list[tuple[datetime, float]]]]:
        """A range query: (labels, [(time, value), …]) per series, at `step_seconds` from `start` to `end`."""
        path = "api/v1/query_range"
        params = {"query": promql, "start": _unix(start), "end": _unix(end), "step": step_seconds}
        data = self._api(path, params)
        try:
            if data["resultType"] != "matrix":
                raise ValueError(f"expected a matrix, got {data['resultType']}")
            return [
                (dict(item["metric"]), [(_time(t), float(v)) for t, v in item["values"]])
                for item in data["result"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise PrometheusError(f"{self._endpoint_name(path)}: malformed result: {_short(exc)}") from exc

    def traffic_observation(
        self, settings: TrafficSettings, environment: str, now: datetime
    ) -> TrafficObservation:
        """What the traffic gate needs for `environment` at `now`: the sustain window at a fine step, the
        baseline for this hour-of-week (baseline mode) and database health (if configured). Any failure
        becomes `TrafficObservation(error=...)`, never an exception."""
        query = settings.query.replace("{environment}", environment)
        try:
            step = max(1.0, math.ceil(settings.sustain.total_seconds() / 120))
            series = self.query_range(query, now - settings.sustain, now, step)
            if len(series) > 1:
                return TrafficObservation(
                    error=f"query {query} returns {len(series)} series; aggregate it to one (e.g. sum(...))"
                )
            samples = series[0][1] if series else []
            newest_sample_at = None
            if samples:
                stamped = self.query_sampled(query, now)
                newest_sample_at = min((at for _, _, at in stamped), default=datetime.fromtimestamp(0, UTC))
            baseline = (
                self._baseline(query, settings, now) if settings.mode == "baseline_percentile" else None
            )
            health = health_at = None
            if settings.health_query:
                found = self.query_sampled(settings.health_query.replace("{environment}", environment), now)
                if found:
                    _, health, health_at = min(found, key=_nan_first_low)  # the worst database counts
            return TrafficObservation(
                samples=samples,
                baseline=baseline,
                health=health,
                health_at=health_at,
                resolution=timedelta(seconds=step),
                newest_sample_at=newest_sample_at,
            )
        except PrometheusError as exc:
            return TrafficObservation(error=str(exc))
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unexpected, saying what it was
            return TrafficObservation(
                error=f"Prometheus connection {self.prometheus_conn_id!r}: {type(exc).__name__}: {_short(exc)}"
            )

    def _baseline(self, query: str, settings: TrafficSettings, now: datetime) -> float | None:
        """The percentile of this hour-of-week in each of the last `baseline_weeks` weeks (one small range
        query per week, so a poll every minute stays cheap), computed by the core's baseline functions."""
        from include.gates.traffic_baseline import baseline_threshold

        hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        history: list[tuple[datetime, float]] = []
        for weeks_back in range(1, settings.baseline_weeks + 1):
            start = hour - timedelta(weeks=weeks_back)
            end = start + timedelta(hours=1) - timedelta(seconds=BASELINE_STEP_SECONDS)
            found = self.query_range(query, start, end, BASELINE_STEP_SECONDS)
            if len(found) > 1:
                raise PrometheusError(
                    f"baseline query {query} returns {len(found)} series; aggregate it to one"
                )
            history += found[0][1] if found else []
        return baseline_threshold(history, now, settings.percentile)

    def health_reading(self, bounds: HealthBounds, environment: str, now: datetime) -> HealthReading:
        """Apdex (the worst, i.e. lowest, series) and error ratio (the highest) for the rollback gate.
        An empty answer is None (no data); any failure becomes `HealthReading(error=...)`, never raised."""
        try:
            apdex = errors = None
            if bounds.apdex_query:
                found = self.query_sampled(bounds.apdex_query.replace("{environment}", environment), now)
                apdex = min(found, key=_nan_first_low) if found else None
            if bounds.error_ratio_query:
                found = self.query_sampled(
                    bounds.error_ratio_query.replace("{environment}", environment), now
                )
                errors = max(found, key=_nan_first_high) if found else None
            return HealthReading(
                apdex=apdex[1] if apdex else None,
                apdex_at=apdex[2] if apdex else None,
                error_ratio=errors[1] if errors else None,
                error_ratio_at=errors[2] if errors else None,
            )
        except PrometheusError as exc:
            return HealthReading(error=str(exc))
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unexpected, saying what it was
            return HealthReading(
                error=f"Prometheus connection {self.prometheus_conn_id!r}: {type(exc).__name__}: {_short(exc)}"
            )

    def history(self, query: str, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
        """One series' values over a long span (weeks), at the finest step Prometheus allows for it."""
        # Whole minutes, so the points fall on the grid recording rules and 5-minute samples use.
        step = 60 * max(1, math.ceil((end - start).total_seconds() / MAX_POINTS / 60))
        found = self.query_range(query, start, end, step)
        if len(found) > 1:
            raise PrometheusError(f"history query {query} returns {len(found)} series; aggregate it to one")
        return found[0][1] if found else []


def _nan_first_low(row: tuple[Labels, float, datetime]) -> float:
    """Sort key: a NaN series counts as the worst (lowest), so it is never hidden behind a good one."""
    return -math.inf if math.isnan(row[1]) else row[1]


def _nan_first_high(row: tuple[Labels, float, datetime]) -> float:
    return math.inf if math.isnan(row[1]) else row[1]


def _series_key(labels: Labels) -> tuple[tuple[str, str], ...]:
    """A series' identity across `q` and `timestamp(q)` (the latter drops the metric name)."""
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


def _unix(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError(f"Prometheus times must be timezone-aware, got naive {moment.isoformat()}")
    return moment.timestamp()


def _time(stamp: Any) -> datetime:
    return datetime.fromtimestamp(float(stamp), UTC)


def _short(value: object, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
