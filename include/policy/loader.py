"""Reads and validates a policy file; every problem is reported at once as `file: key.path: problem`.

The file's YAML and line map come from yaml_lines, each field from fields.FieldReader, each section from its
builder (build_windows, build_gates, build_classes, build_gitlab); this module runs the pass and the overrides.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from include.policy import schema
from include.policy.build_classes import Classes
from include.policy.build_gates import TRAFFIC_KEYS, Gates
from include.policy.build_gitlab import GitLabAndEnvironments
from include.policy.build_windows import LOCK_KINDS, WindowsAndLocks
from include.policy.errors import PolicyError
from include.policy.fields import kind_of, template_fields
from include.policy.model import Policy
from include.policy.yaml_lines import read_yaml

__all__ = ["LOCK_KINDS", "TOP_KEYS", "TRAFFIC_KEYS", "load_policy", "parse_policy", "template_fields"]

# Every section's keys, from the one schema (include/policy/schema.py); each builder module holds its own.
TOP_KEYS = schema.keys("")


def load_policy(path: str | Path) -> Policy:
    """Parse and validate a policy file; raises PolicyError naming the file, key path, line and problem.

    A valid policy is kept by its path and content (a Policy is pure): the DAG file and each DAG's
    timetable load the same file in one parse, and re-reading an unchanged file costs a hash.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror}") from exc
    key = (str(path), hashlib.sha256(text.encode("utf-8")).hexdigest())
    policy = _LOADED.get(key)
    if policy is None:
        policy = _load_text(path, text)
        if len(_LOADED) >= 16:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = policy
    return policy


_LOADED: dict[tuple[str, str], Policy] = {}


def _load_text(path: Path, text: str) -> Policy:
    """Parse and validate the text of the policy file at `path` (its name goes into every message)."""
    data, lines, duplicates = read_yaml(path, text)
    return _Parser(str(path), lines).parse(data, duplicates)


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    """Validate policy data (as loaded from YAML or built in code) and build the typed Policy."""
    return _Parser(source, {}).parse(data, [])


class _Parser(WindowsAndLocks, Gates, Classes, GitLabAndEnvironments):
    """One validation pass over the whole file: each section by its builder, then the overrides."""

    # -- the file -----------------------------------------------------------------------------------
    def parse(self, data: Any, duplicates: list[tuple[str, str]]) -> Policy:
        for path, problem in duplicates:
            self.error(path, problem, with_line=False)
        if not isinstance(data, dict):
            self.error(
                "",
                f"the policy must be a mapping of keys ({', '.join(TOP_KEYS[:5])}, …), got {kind_of(data)}",
            )
            self.fail_if_errors()
        self.mapping(data, "", TOP_KEYS)
        version = data.get("version", 1)
        if version != 1 or isinstance(version, bool):
            self.error("version", f"unsupported policy version {version!r} (this release reads version 1)")
        tz = self.zone(data.get("timezone", "UTC"), "timezone", ZoneInfo("UTC"))
        target = self.declared(data, "target")
        mode = self.declared(data, "execution_mode")
        windows = self.parse_windows(data.get("windows"), tz)
        locks = self.parse_locks(data.get("change_locks"), tz)
        gates = self.parse_gates(data.get("gates"))
        classes = self.parse_classes(data.get("classes"), {**windows, **self.learned_windows}, gates)
        gitlab = self.parse_gitlab(data.get("gitlab"))
        prometheus = self.mapping(data.get("prometheus"), "prometheus", schema.keys("prometheus"))
        environments = self.parse_environments(data.get("environments"))
        notifications = self.parse_notifications(data.get("notifications"))
        approval = self.parse_approval(data.get("approval"))
        prometheus_conn_id = self.declared(prometheus, "prometheus.conn_id")
        pipeline_vars = getattr(getattr(gitlab, "pdm_pipeline", None), "variables", None) or {}
        if mode == "selected_versions" and not any("{versions}" in str(v) for v in pipeline_vars.values()):
            self.error(
                "execution_mode",
                "selected_versions needs a gitlab.pdm_pipeline variable carrying {versions}: without the list the "
                "pipeline runs every pending migration, including those no gate was evaluated for",
            )
        self.fail_if_errors()
        policy = Policy(
            source=self.source,
            raw=copy.deepcopy(data),  # the caller's dict may change later; the policy must not
            timezone=tz.key,
            target=target,
            execution_mode=mode,
            windows=windows,
            locks=locks,
            classes=classes,
            gates=gates,
            gitlab=gitlab,
            prometheus_conn_id=prometheus_conn_id or "prometheus_default",
            environments=environments,
            notifications=notifications,
            learned_windows=dict(self.learned_windows),
            approval=approval,
        )
        self.check_every_class_can_run(policy)
        if not self.prefix:
            self.parse_overrides(policy)
        self.fail_if_errors()
        return policy

    def parse_overrides(self, policy: Policy) -> None:
        """Validate each environment's overrides now (not when a run first asks), with their own key paths."""
        base = {k: v for k, v in policy.raw.items() if k != "environments"}
        base["environments"] = {
            name: {k: v for k, v in (spec or {}).items() if k != "overrides"}
            for name, spec in (policy.raw.get("environments") or {}).items()
        }
        for name, env in policy.environments.items():
            if not env.overrides:
                continue
            merged = copy.deepcopy(base)
            _deep_merge(merged, env.overrides)
            parser = _Parser(self.source, self.lines, prefix=f"environments.{name}.overrides.")
            try:
                derived = parser.parse(merged, [])
            except PolicyError as exc:
                self.errors.extend(str(exc).splitlines())
                continue
            derived.environments = policy.environments
            derived.raw = merged
            policy.per_environment[name] = derived


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
