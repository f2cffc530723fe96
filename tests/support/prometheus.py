"""Session fixture: a real Prometheus with 4 weeks of backfilled traffic and a live, settable exporter."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from include.sandbox.prometheus_server import PrometheusServer, profile_history
from include.sandbox.traffic_exporter import TrafficExporter

HISTORY_END_OFFSET = timedelta(hours=3)


@dataclass
class TrafficWorld:
    """The live traffic source and the Prometheus that scrapes it."""

    prometheus: PrometheusServer
    exporter: TrafficExporter
    history_end: datetime

    @property
    def url(self) -> str:
        return self.prometheus.url

    def set_traffic(self, env: str, value: float) -> None:
        """Set the live request rate and wait until Prometheus has scraped it."""
        self.exporter.set_value(env, "ops", value)
        self.prometheus.wait_for_value(
            f'sum(gitlab_component_ops:rate_5m{{env="{env}"}})', lambda v: v == value
        )

    def set_health(self, env: str, value: float) -> None:
        self.exporter.set_value(env, "apdex", value)
        self.prometheus.wait_for_value(
            f'min(gitlab_service_apdex:ratio_5m{{env="{env}"}})', lambda v: v == value
        )


@pytest.fixture(scope="session")
def prometheus_with_traffic(tmp_path_factory) -> Iterator[TrafficWorld]:
    if not shutil.which("prometheus"):
        pytest.skip("Debian's prometheus is not installed (scripts/ensure-system-packages.sh installs it)")
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - HISTORY_END_OFFSET
    exporter = TrafficExporter().start()
    server = PrometheusServer(
        tmp_path_factory.mktemp("prometheus"), [exporter.address], history_openmetrics=profile_history(4, end)
    ).start()
    try:
        yield TrafficWorld(server, exporter, end)
    finally:
        server.stop()
        exporter.stop()
