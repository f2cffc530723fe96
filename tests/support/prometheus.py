"""Session fixture: a real Prometheus with 4 weeks of backfilled traffic and a live, settable exporter.

Use it from any test folder (tests/conftest.py registers this module as a plugin):

    def test_something(prometheus_with_traffic):
        prometheus_with_traffic.set_traffic("gprd", 100.0)   # returns once Prometheus has scraped 100.0
        os.environ["AIRFLOW_CONN_PROMETHEUS_DEFAULT"] = prometheus_with_traffic.url

The exporter and Prometheus are shared by the whole session: set the values your test needs at its start.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from include.sandbox.prometheus_server import DEFAULT_BINARY, PrometheusServer, history_end, profile_history
from include.sandbox.traffic_exporter import APDEX, DEFAULT_VALUES, OPS, TrafficExporter
from include.sandbox.traffic_profile import WeeklyProfile

HISTORY_WEEKS = 4
# The history's profile: tests recompute "what the profile implies" from it.
HISTORY_PROFILE = WeeklyProfile()


@dataclass
class TrafficWorld:
    """The live traffic source, the Prometheus that scrapes it, and what its history was made of."""

    prometheus: PrometheusServer
    exporter: TrafficExporter
    history_start: datetime
    history_end: datetime
    profile: WeeklyProfile

    @property
    def url(self) -> str:
        """Prometheus' base URL, ready for AIRFLOW_CONN_PROMETHEUS_DEFAULT."""
        return self.prometheus.url

    def set_traffic(self, env: str, value: float, timeout: float = 20) -> None:
        """Set an environment's live request rate; returns once Prometheus has scraped it."""
        self.exporter.set_value(env, "ops", value)
        self.prometheus.wait_for_value(f'sum({OPS}{{env="{env}"}})', lambda seen: seen == value, timeout)

    def set_health(self, env: str, value: float, timeout: float = 20) -> None:
        """Set an environment's database apdex; returns once Prometheus has scraped it."""
        self.exporter.set_value(env, "apdex", value)
        self.prometheus.wait_for_value(f'min({APDEX}{{env="{env}"}})', lambda seen: seen == value, timeout)

    def reset(self) -> None:
        """Back to the defaults every test can assume (gprd 100 req/s, gstg 20 req/s, apdex 0.9995)."""
        for metric, setter in (("ops", self.set_traffic), ("apdex", self.set_health)):
            for env, value in DEFAULT_VALUES[metric].items():
                setter(env, value)


@pytest.fixture(scope="session")
def prometheus_with_traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrafficWorld]:
    """A real Prometheus (1 s scrapes of a live exporter) holding 4 weeks of weekly-profile history."""
    if not (shutil.which("prometheus") or os.path.exists(DEFAULT_BINARY)):
        pytest.skip(
            f"Debian's prometheus is not installed ({DEFAULT_BINARY} missing; apt-get install prometheus)"
        )
    end = history_end(datetime.now(UTC))
    history = profile_history(HISTORY_WEEKS, end, profile=HISTORY_PROFILE)
    exporter = TrafficExporter().start()
    server = PrometheusServer(
        tmp_path_factory.mktemp("prometheus"), [exporter.address], history_openmetrics=history
    )
    try:
        server.start()
        server.wait_until_scraped()
        yield TrafficWorld(server, exporter, end - timedelta(weeks=HISTORY_WEEKS), end, HISTORY_PROFILE)
    finally:
        server.stop()
        exporter.stop()
