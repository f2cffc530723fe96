"""GitLab's API facts (gitlab_api.yaml) as Python: the one table the sandbox and the contract tests obey."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

TABLE_PATH = Path(__file__).with_name("gitlab_api.yaml")


@functools.cache
def table() -> dict[str, Any]:
    """The parsed table (read once)."""
    data: dict[str, Any] = yaml.safe_load(TABLE_PATH.read_text(encoding="utf-8"))
    return data


def entity_fields(name: str) -> list[str]:
    """The fields GitLab's entity `name` answers on every supported version."""
    return list(table()["entities"][name]["fields"])


def entity_is_partial(name: str) -> bool:
    """True when the sandbox answers only a subset of a large entity (never a field GitLab lacks)."""
    return bool(table()["entities"][name].get("partial"))


def endpoints() -> list[dict[str, Any]]:
    return list(table()["endpoints"])


def endpoint(endpoint_id: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = table()["endpoints"]
    for row in rows:
        if row["id"] == endpoint_id:
            return row
    raise KeyError(f"gitlab_api.yaml has no endpoint {endpoint_id!r}")


def role_level(role: str) -> int:
    """guest → 10 … owner → 50; raises naming the role when it is not one of GitLab's."""
    try:
        return int(table()["roles"][role])
    except KeyError:
        raise ValueError(f"{role!r} is not a GitLab role ({', '.join(table()['roles'])})") from None


def required_role(endpoint_id: str) -> int:
    """The least role level the endpoint needs (its row's `role` starts with the role name; 0: any user)."""
    text = str(endpoint(endpoint_id)["role"]).split()[0].rstrip(",")
    return int(table()["roles"].get(text, 0))


def statuses(kind: str, subset: str = "all") -> tuple[str, ...]:
    """Status sets: statuses("pipeline", "holding"), statuses("deployment")."""
    return tuple(table()["statuses"][kind][subset])
