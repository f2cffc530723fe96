"""The scheduling policy: windows, change locks, per-class rules, gates, environments (product.md §6).

The names below are loaded on first use (PEP 562), so that importing a light part of the package (durations,
names, the DAG file's declaration) does not import the loader, the model and every section's builder: the
dag-processor pays for each module a DAG file imports at every parse (issue 18).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.policy.durations import format_duration, parse_duration
    from include.policy.errors import PolicyError
    from include.policy.learned import LearnedWindow, TrafficProfile
    from include.policy.loader import load_policy, parse_policy
    from include.policy.model import (
        ClassRule,
        DeployLockSettings,
        EnvironmentPolicy,
        GateSettings,
        GitLabSettings,
        NotificationSettings,
        PipelineSettings,
        Policy,
        RollbackSettings,
        TrafficGateSettings,
        WindowSpan,
        WindowVerdict,
    )

_HOMES = {
    "format_duration": "durations",
    "parse_duration": "durations",
    "PolicyError": "errors",
    "LearnedWindow": "learned",
    "TrafficProfile": "learned",
    "load_policy": "loader",
    "parse_policy": "loader",
    **dict.fromkeys(
        (
            "ClassRule",
            "DeployLockSettings",
            "EnvironmentPolicy",
            "GateSettings",
            "GitLabSettings",
            "NotificationSettings",
            "PipelineSettings",
            "Policy",
            "RollbackSettings",
            "TrafficGateSettings",
            "WindowSpan",
            "WindowVerdict",
        ),
        "model",
    ),
}

__all__ = [
    "ClassRule",
    "DeployLockSettings",
    "EnvironmentPolicy",
    "GateSettings",
    "GitLabSettings",
    "LearnedWindow",
    "NotificationSettings",
    "PipelineSettings",
    "Policy",
    "PolicyError",
    "RollbackSettings",
    "TrafficGateSettings",
    "TrafficProfile",
    "WindowSpan",
    "WindowVerdict",
    "format_duration",
    "load_policy",
    "parse_duration",
    "parse_policy",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (then the name is a plain module attribute)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
