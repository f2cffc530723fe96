"""The scheduling policy: windows, change locks, per-class rules, gates, environments (product.md §6)."""

from include.policy.loader import PolicyError, load_policy, parse_duration, parse_policy
from include.policy.model import ClassRule, EnvironmentPolicy, Policy, WindowSpan, WindowVerdict

__all__ = [
    "ClassRule",
    "EnvironmentPolicy",
    "Policy",
    "PolicyError",
    "WindowSpan",
    "WindowVerdict",
    "load_policy",
    "parse_duration",
    "parse_policy",
]
