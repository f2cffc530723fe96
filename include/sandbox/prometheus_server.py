"""Runs Debian's real Prometheus for tests and the local run: history backfilled with promtool, live values
scraped from the traffic exporter.

What Prometheus 2.42 does with backfilled blocks (each checked by experiment here):
- blocks that overlap each other or the head's time range load without a flag (overlapping blocks are on by
  default since 2.39);
- history that reaches past "now" is a trap: the head then refuses live samples older than the newest
  block as out of bounds, so live scrapes silently vanish. History therefore ends a few hours before now
  (`history_end`), and `start` refuses history that ends in the future;
- time-based retention deletes blocks older than the retention as soon as the server starts: with the 15d
  default a 4-week history would be gone, so `start` refuses a retention shorter than the history span;
- promtool writes one 2-hour block per 2 hours by default (337 blocks and ~8 s for 4 weeks); its hidden
  `--max-block-duration` writes a few large blocks in ~0.2 s;
- the first scrape happens ~5 s after `/-/ready` (the scrape manager applies targets on a 5 s tick):
  `wait_until_scraped` waits for it.
"""

from __future__ import annotations

import argparse
import atexit
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import yaml

from include.sandbox.lifecycle import free_port
from include.sandbox.traffic_exporter import (
    ENVIRONMENT_SCALE,
    ENVIRONMENTS,
    SCRAPE_INSTANCE,
    SCRAPE_JOB,
    apdex_selector,
    ops_selector,
)
from include.sandbox.traffic_profile import WeeklyProfile, openmetrics_history

DEFAULT_BINARY = "/usr/bin/prometheus"
DEFAULT_PROMTOOL = "/usr/bin/promtool"
HISTORY_MARGIN = timedelta(hours=3)  # history ends this long before now: clear of the head block
_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_DURATION_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}
_TSDB_ENTRIES = re.compile(
    r"^(01[0-9A-Z]{24}(\.tmp-for-creation|\.tmp-for-deletion)?|wal|chunks_head|lock|queries\.active)$"
)


class PrometheusUnavailable(RuntimeError):
    """Prometheus could not be started: binary missing, bad history, or not ready in time."""


def parse_duration(text: str) -> timedelta:
    """A Prometheus duration such as `120d`, `4w` or `1h30m`; raises ValueError naming the text."""
    parts = _DURATION.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a Prometheus duration (like 120d or 1h30m): {text!r}")
    return sum((int(number) * _DURATION_UNITS[unit] for number, unit in parts), timedelta())


def history_end(now: datetime) -> datetime:
    """Where backfilled history should stop: on the hour, `HISTORY_MARGIN` before `now`."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - HISTORY_MARGIN


def profile_history(
    weeks: int, end: datetime, step: timedelta = timedelta(minutes=5), profile: WeeklyProfile | None = None
) -> str:
    """`weeks` of request rates and healthy apdex ending at `end`, per environment, as OpenMetrics text.

    Series carry the scrape job and instance labels the live exporter gets, so history and live scrapes
    form one series per environment.
    """
    profile = profile or WeeklyProfile()
    series: dict[str, Callable[[datetime], float]] = {}
    for env in ENVIRONMENTS:
        series[ops_selector(env, target_labels=True)] = profile.scaled(ENVIRONMENT_SCALE[env]).rate_at
        series[apdex_selector(env, target_labels=True)] = lambda _ts: 0.9995
    return openmetrics_history(series, end - timedelta(weeks=weeks), end, step)


class PrometheusServer:
    """A real Prometheus bound to 127.0.0.1, its TSDB, config and log under `data_dir`.

    :param data_dir: directory for `prometheus.yml`, `prometheus.log` and the TSDB (`tsdb/`).
    :param scrape_targets: `host:port` of exporters to scrape as job "traffic"; the first is labelled
        instance="traffic-exporter", like the backfilled history.
    :param port: port to listen on; 0 picks a free one (and retries if another process grabs it first).
    :param scrape_interval: how often to scrape (1s in tests).
    :param history_openmetrics: OpenMetrics text imported with promtool before the server starts, only
        into an empty TSDB; it must end before now (see `history_end`).
    :param retention: TSDB retention; must exceed the history's span.
    :param extra_jobs: more scrape jobs: `{"name", "target", "metrics_path", "bearer_token_file"}`.
    :param binary: the prometheus binary (default: on PATH, else /usr/bin/prometheus); promtool likewise.

    `start` raises PrometheusUnavailable with the reason (missing binary, promtool error, history ending
    in the future or older than the retention, not ready within the timeout, with the log's tail).
    """

    def __init__(
        self,
        data_dir: str | Path,
        scrape_targets: list[str],
        port: int = 0,
        scrape_interval: str = "1s",
        history_openmetrics: str | None = None,
        retention: str = "120d",
        extra_jobs: list[dict[str, str]] | None = None,
        binary: str | None = None,
        promtool: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.scrape_targets = list(scrape_targets)
        self._fixed_port = bool(port)
        self.port = port or free_port()
        self.scrape_interval = scrape_interval
        self.history = history_openmetrics
        self.retention = retention
        self.extra_jobs = extra_jobs or []
        self.binary = binary or shutil.which("prometheus") or DEFAULT_BINARY
        self.promtool = promtool or shutil.which("promtool") or DEFAULT_PROMTOOL
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        parse_duration(scrape_interval)
        parse_duration(retention)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tsdb_dir(self) -> Path:
        return self.data_dir / "tsdb"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "prometheus.log"

    def config(self) -> dict[str, Any]:
        """The prometheus.yml content, as data."""
        targets = [
            {"targets": [target], "labels": {"instance": SCRAPE_INSTANCE}}
            if index == 0
            else {"targets": [target]}
            for index, target in enumerate(self.scrape_targets)
        ]
        jobs: list[dict[str, Any]] = [
            {"job_name": SCRAPE_JOB, "scrape_interval": self.scrape_interval, "static_configs": targets}
        ]
        for job in self.extra_jobs:
            spec: dict[str, Any] = {
                "job_name": job["name"],
                "metrics_path": job.get("metrics_path", "/metrics"),
                "static_configs": [{"targets": [job["target"]]}],
            }
            if job.get("bearer_token_file"):
                spec["authorization"] = {"credentials_file": str(job["bearer_token_file"])}
            jobs.append(spec)
        interval = self.scrape_interval
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": jobs,
        }

    def start(self, timeout: float = 60) -> PrometheusServer:
        """Write the config, backfill history into an empty TSDB, start Prometheus, wait for `/-/ready`."""
        for name, path in (("prometheus", self.binary), ("promtool", self.promtool)):
            if not Path(path).is_file():
                raise PrometheusUnavailable(
                    f"{name} not found at {path}: install Debian's prometheus package (apt-get install prometheus)"
                )
        self.tsdb_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        if self.history and not any(self.tsdb_dir.iterdir()):
            self._backfill()
            try:
                self._check_blocks_fit(datetime.now(UTC))
            except PrometheusUnavailable:
                shutil.rmtree(self.tsdb_dir)  # it was empty before: leave no refused history behind
                raise
        deadline = time.monotonic() + timeout
        for attempt in range(3):
            self._launch(config)
            try:
                return self._wait_ready(deadline)
            except PrometheusUnavailable:
                taken = "address already in use" in self._log_tail()
                self.stop()
                if not taken or self._fixed_port or attempt == 2:
                    raise
                self.port = free_port()  # someone took our port between choosing and binding it
        raise AssertionError("unreachable")

    def _backfill(self) -> None:
        source = self.data_dir / "history.om"
        source.write_text(self.history or "")
        base = [self.promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet"]
        # Hidden flag (present in 2.42): a few large blocks instead of one per 2 hours.
        result = subprocess.run(
            [*base, "--max-block-duration=672h", str(source), str(self.tsdb_dir)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 and "max-block-duration" in result.stderr:
            result = subprocess.run([*base, str(source), str(self.tsdb_dir)], capture_output=True, text=True)
        if result.returncode != 0:
            raise PrometheusUnavailable(
                f"promtool could not import the history ({source}): {result.stderr.strip()[-2000:]}"
            )
        source.unlink()

    def _check_blocks_fit(self, now: datetime) -> None:
        """Refuse history that ends in the future or reaches back beyond the retention (see module doc)."""
        spans = []
        for meta in self.tsdb_dir.glob("01*/meta.json"):
            data = json.loads(meta.read_text())
            spans.append((data["minTime"] / 1000, data["maxTime"] / 1000))
        if not spans:
            return
        oldest = datetime.fromtimestamp(min(low for low, _ in spans), UTC)
        newest = datetime.fromtimestamp(max(high for _, high in spans), UTC)
        if newest > now:
            raise PrometheusUnavailable(
                f"{self.tsdb_dir}: history ends at {newest:%Y-%m-%d %H:%M} UTC, after now: Prometheus would "
                "reject live samples as out of bounds; end the history a few hours before now"
            )
        if now - oldest >= parse_duration(self.retention):
            raise PrometheusUnavailable(
                f"{self.tsdb_dir}: history starts at {oldest:%Y-%m-%d %H:%M} UTC, beyond the retention of "
                f"{self.retention}: Prometheus would delete it; raise the retention"
            )

    def _launch(self, config: Path) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.tsdb_dir}",
                f"--storage.tsdb.retention.time={self.retention}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        atexit.register(self.stop)  # an interrupted test run must not leave Prometheus behind

    def _wait_ready(self, deadline: float) -> PrometheusServer:
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise PrometheusUnavailable(f"prometheus exited at start-up: {self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise PrometheusUnavailable(f"prometheus not ready at {self.url} in time: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return "(no log)"

    def query(self, promql: str, timeout: float = 5) -> list[dict[str, Any]]:
        """The raw `result` list of an instant query now (for harness checks; the hook is the product's)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
            return result

    def wait_for_value(self, promql: str, predicate: Callable[[float], bool], timeout: float = 20) -> float:
        """Poll until the query's first value satisfies `predicate`: the live scrape has caught up."""
        deadline = time.monotonic() + timeout
        last: float | None = None
        while time.monotonic() < deadline:
            try:
                result = self.query(promql)
                if result:
                    last = float(result[0]["value"][1])
                    if predicate(last):
                        return last
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise TimeoutError(
            f"{self.url}: {promql} did not reach the expected value in {timeout}s (last: {last})"
        )

    def wait_until_scraped(self, timeout: float = 20) -> None:
        """Wait until every traffic target has been scraped successfully once."""
        expected = len(self.scrape_targets)
        self.wait_for_value(f'count(up{{job="{SCRAPE_JOB}"}} == 1)', lambda n: n >= expected, timeout)

    def stop(self) -> None:
        """Terminate Prometheus (it flushes its head), kill it if it does not exit within 10 s."""
        atexit.unregister(self.stop)
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def reset_tsdb(tsdb: Path) -> None:
    """Empty a TSDB directory so history is rebuilt; refuses a directory holding anything but a TSDB."""
    if not tsdb.exists():
        return
    strangers = [entry.name for entry in tsdb.iterdir() if not _TSDB_ENTRIES.match(entry.name)]
    if strangers:
        raise PrometheusUnavailable(
            f"{tsdb} holds files that are not a Prometheus TSDB ({strangers[:3]}): not wiping it"
        )
    shutil.rmtree(tsdb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Real Prometheus with backfilled traffic history, for make run."
    )
    parser.add_argument("--port", type=int, default=19090)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--target", action="append", required=True, help="host:port to scrape (repeatable)")
    parser.add_argument("--weeks-of-history", type=int, default=4)
    parser.add_argument("--scrape-interval", default="5s")
    parser.add_argument("--retention", default="120d")
    parser.add_argument(
        "--keep-data", action="store_true", help="reuse the TSDB instead of rebuilding history"
    )
    parser.add_argument("--pdm-metrics", help="host:port of Airflow, to scrape /pdm/metrics")
    parser.add_argument("--pdm-metrics-token-file", help="file holding the bearer token of /pdm/metrics")
    args = parser.parse_args(argv)
    jobs = []
    if args.pdm_metrics:
        job = {"name": "pdm", "target": args.pdm_metrics, "metrics_path": "/pdm/metrics"}
        if args.pdm_metrics_token_file:
            job["bearer_token_file"] = args.pdm_metrics_token_file
        jobs.append(job)
    # Handlers first: a SIGTERM while Prometheus is starting must still stop it, not orphan it.
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    history = None
    try:
        if not args.keep_data:
            # A fresh history each start: the demo's baseline always covers the last weeks, without holes.
            reset_tsdb(Path(args.data_dir) / "tsdb")
        if args.weeks_of_history:
            history = profile_history(args.weeks_of_history, history_end(datetime.now(UTC)))
        server = PrometheusServer(
            args.data_dir, args.target, args.port, args.scrape_interval, history, args.retention, jobs
        ).start(timeout=120)
    except (PrometheusUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"prometheus at {server.url} scraping {', '.join(args.target)} (data: {args.data_dir})", flush=True)
    while not stopped.wait(0.5):
        if server.process is None or server.process.poll() is not None:
            print(f"error: prometheus exited; see {server.log_path}", file=sys.stderr)
            server.stop()
            return 1
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
