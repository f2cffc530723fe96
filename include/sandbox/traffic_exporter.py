"""A Prometheus exporter that stands in for GitLab.com's traffic and database health signals.

Values are either set explicitly (tests: `set_value`, or `POST /set`) or follow the weekly profile (the
local run: `--mode profile`).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from include.sandbox.lifecycle import serve_until_signalled
from include.sandbox.traffic_profile import WeeklyProfile

OPS = "gitlab_component_ops:rate_5m"
APDEX = "gitlab_service_apdex:ratio_5m"
ENVIRONMENTS = ("gprd", "gstg")


def ops_selector(env: str) -> str:
    return f'{OPS}{{env="{env}",environment="{env}",type="web",stage="main"}}'


def apdex_selector(env: str) -> str:
    return f'{APDEX}{{env="{env}",environment="{env}",type="patroni"}}'


class TrafficExporter:
    """Serves `/metrics` with request rates and Patroni apdex for gprd and gstg."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        mode: str = "fixed",
        profile: WeeklyProfile | None = None,
    ) -> None:
        self.host, self.port, self.mode = host, port, mode
        self.profile = profile or WeeklyProfile()
        self.values: dict[tuple[str, str], float] = {}
        for env in ENVIRONMENTS:
            self.values[(env, "ops")] = 100.0 if env == "gprd" else 20.0
            self.values[(env, "apdex")] = 0.9995
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def set_value(self, env: str, metric: str, value: float) -> None:
        """Set the request rate (`ops`) or apdex (`apdex`) of an environment; switches to fixed values."""
        if metric not in ("ops", "apdex"):
            raise ValueError(f"metric must be ops or apdex, got {metric!r}")
        with self.lock:
            self.values[(env, metric)] = float(value)
            if metric == "ops":
                self.mode = "fixed"

    def render(self, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        lines = [f"# HELP {OPS} Requests per second (5m rate).", f"# TYPE {OPS} gauge"]
        with self.lock:
            for env in ENVIRONMENTS:
                value = (
                    self.profile.rate_at(now) * (1.0 if env == "gprd" else 0.1)
                    if self.mode == "profile"
                    else self.values[(env, "ops")]
                )
                lines.append(f"{ops_selector(env)} {value}")
            lines += [f"# HELP {APDEX} Apdex ratio (5m).", f"# TYPE {APDEX} gauge"]
            for env in ENVIRONMENTS:
                lines.append(f"{apdex_selector(env)} {self.values[(env, 'apdex')]}")
        return "\n".join(lines) + "\n"

    def start(self) -> TrafficExporter:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                if self.path != "/set":
                    self.send_error(404)
                    return
                data = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                try:
                    exporter.set_value(data["env"], data.get("metric", "ops"), float(data["value"]))
                except (KeyError, ValueError) as exc:
                    self.send_error(400, str(exc))
                    return
                self.send_response(204)
                self.end_headers()

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="traffic-exporter", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TrafficExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Traffic exporter standing in for GitLab.com's request rates."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=19091)
    parser.add_argument("--mode", choices=("fixed", "profile"), default="profile")
    args = parser.parse_args(argv)
    exporter = TrafficExporter(args.host, args.port, args.mode).start()
    print(f"traffic exporter ({args.mode}) at {exporter.url}/metrics", flush=True)
    return serve_until_signalled(exporter.stop)


if __name__ == "__main__":
    sys.exit(main())
