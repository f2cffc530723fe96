"""Hand-built tiny worlds for the simulator's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from include.classification.classes import MigrationClass
from include.policy import load_policy
from include.simulation.inputs import STEPS_PER_WEEK
from include.simulation.world import Incident, Migration, PlannedDeployment, World
from tests.conftest import PROJECT_ROOT

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
POLICY_PATH = PROJECT_ROOT / "config" / "policy.yaml"


def product_policy():
    return load_policy(str(POLICY_PATH)).for_environment("gprd")


def peak_first_minutes(minutes: int = 3000, high: float = 1000.0, low: float = 100.0) -> np.ndarray:
    """One week of traffic: `high` for the first `minutes` (more than a quarter of the week), then `low`.

    With the 75th percentile as the peak bar, exactly the high steps are peak and their level is 1.0.
    """
    traffic = np.full(STEPS_PER_WEEK, low)
    traffic[: minutes // 5] = high
    return traffic


def migration(
    id: int, cls: MigrationClass, duration: float, merged: float = 0.0, actual: MigrationClass | None = None
) -> Migration:
    return Migration(id, f"2026010500000{id}", merged, cls, actual or cls, duration, f"m{id}.rb")


def tiny_world(
    deployments: list[tuple[float, float]],
    migrations: list[Migration],
    incidents: list[tuple[float, float, int]] = (),
    traffic: np.ndarray | None = None,
    overhead: float = 0.0,
) -> World:
    return World(
        start=MONDAY,
        weeks=1,
        traffic=peak_first_minutes() if traffic is None else traffic,
        history=np.full(STEPS_PER_WEEK, 100.0),
        deployments=[PlannedDeployment(i, s, d) for i, (s, d) in enumerate(deployments)],
        migrations=migrations,
        incidents=[Incident(a, b, s) for a, b, s in incidents],
        pipeline_overhead=overhead,
        package_lag=0.0,
        rollback_severity=2,
        peak_percentile=75.0,
    )


def policy_variant(tmp_path, *replacements: tuple[str, str]):
    """The shipped policy with text replaced (each `old` must occur), loaded for gprd."""
    text = POLICY_PATH.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return load_policy(str(path)).for_environment("gprd")


def policy_with(tmp_path, *settings: tuple[tuple[str, ...], object]):
    """The shipped policy with keys set by path (robust to how the file spells its comments), for gprd."""
    import yaml

    data = yaml.safe_load(POLICY_PATH.read_text())
    for keys, value in settings:
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    path = tmp_path / "policy-with.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_policy(str(path)).for_environment("gprd")
