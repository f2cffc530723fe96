"""A loopback HTTP server with canned answers, for the hook's auth and failure paths a real Prometheus
cannot be made to produce on demand (wrong JSON, slow answers, odd statuses)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

VECTOR = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {"env": "gprd"}, "value": [1795600000, "42"]}]},
}


@dataclass
class CannedPrometheus:
    """Answers every request with `status` and `body` after `delay` seconds; remembers what it was sent."""

    port: int = 0
    status: int = 200
    body: str = json.dumps(VECTOR)
    delay: float = 0.0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, body: object, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.body = body if isinstance(body, str) else json.dumps(body)


@pytest.fixture
def canned_prometheus() -> Iterator[CannedPrometheus]:
    canned = CannedPrometheus()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:
            canned.requests.append((self.path, dict(self.headers)))
            time.sleep(canned.delay)
            data = canned.body.encode()
            self.send_response(canned.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout tests)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    canned.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        yield canned
    finally:
        server.shutdown()
        server.server_close()
