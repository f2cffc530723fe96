"""The scheduling policy: windows, change locks, per-class rules, gates, environments (product.md §6)."""

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
