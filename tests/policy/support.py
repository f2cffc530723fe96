"""Small builders for policy tests: the shipped policy as data, changed one key at a time."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from include.policy import Policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "policy.yaml"
SHIPPED_DATA: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())


def shipped_data() -> dict[str, Any]:
    """A fresh copy of the shipped policy's data, to change in a test."""
    return copy.deepcopy(SHIPPED_DATA)


def policy_with(
    *,
    windows: dict[str, Any] | None = None,
    locks: list[dict[str, Any]] | None = None,
    classes: dict[str, Any] | None = None,
    timezone: str | None = None,
) -> Policy:
    """The shipped policy without its locks, plus the windows, locks and class rules given."""
    data = shipped_data()
    data["change_locks"] = locks or []
    data["windows"].update(windows or {})
    for name, rule in (classes or {}).items():
        data["classes"][name] = rule
    if timezone:
        data["timezone"] = timezone
    return parse_policy(data, source="test.yaml")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
