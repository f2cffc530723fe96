"""Helpers for tests that drive real processes over HTTP: free ports, JSON calls, waiting with context."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from include.sandbox.lifecycle import free_port

__all__ = ["call_json", "free_port", "port_open", "wait_for"]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def call_json(
    url: str,
    token: str | None = None,
    data: dict | None = None,
    method: str | None = None,
    timeout: float = 10,
) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(data).encode() if data is not None else None, method=method
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    context: Callable[[], str],
    alive: Callable[[], str | None] = lambda: None,
) -> Any:
    """Poll `predicate` until truthy; on timeout (or when `alive` reports a death) fail with `context()`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        died = alive()
        if died:
            pytest.fail(f"{died} while waiting for {what}:\n{context()}")
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - not there yet
            last = exc
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what} (last error: {last}):\n{context()}")
