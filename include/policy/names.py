"""The environment names of a policy file, read even when the policy is invalid.

The PDM DAGs are named after the policy's environments. When the policy fails validation the DAG file still
declares one DAG per environment (each failing closed with the policy's error) instead of vanishing from the
DAG list; this reader gives those names with nothing more than YAML parsing, and falls back to a known list
when even that fails.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

KNOWN_ENVIRONMENTS = ("gstg", "gprd")
"""GitLab.com's PDM environments (staging, production): the DAGs kept when the file cannot be read at all.
`PDM_KNOWN_ENVIRONMENTS` (comma-separated) replaces them for other installations."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def known_environments() -> list[str]:
    """The fallback list: `PDM_KNOWN_ENVIRONMENTS` when set, else gstg and gprd."""
    configured = os.environ.get("PDM_KNOWN_ENVIRONMENTS", "")
    names = [n.strip() for n in configured.split(",") if _NAME.match(n.strip())]
    return names or list(KNOWN_ENVIRONMENTS)


def environment_names(path: str | Path) -> list[str]:
    """The valid-looking keys under `environments:` of the file, else the known list; never raises."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return known_environments()
    environments = data.get("environments") if isinstance(data, dict) else None
    if not isinstance(environments, dict):
        return known_environments()
    names = [str(name) for name in environments if _NAME.match(str(name))]
    return names or known_environments()
