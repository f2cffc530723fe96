"""Run every policy on one generated world and score them side by side."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from include.policy import PolicyError, load_policy
from include.simulation.engine import Outcome, SchedulingPolicy, simulate
from include.simulation.inputs import InputError, WorldSettings
from include.simulation.oracle import run_oracle
from include.simulation.policies import ManualPolicy, OrchestratorPolicy
from include.simulation.scores import Meter, Scores, score
from include.simulation.world import World, generate_world

POLICY_NAMES = ("manual-daily", "manual-apac-emea", "orchestrator", "orchestrator-selected", "oracle")


@dataclass
class Comparison:
    world: World
    policy_path: Path
    outcomes: dict[str, Outcome]
    scores: dict[str, Scores]
    meter: Meter
    seconds: dict[str, float] = field(default_factory=dict)


def load_product_policy(path: Path, environment: str) -> Any:
    """The product's policy for the environment; a bad file is an InputError naming it."""
    try:
        return load_policy(str(path)).for_environment(environment)
    except PolicyError as exc:
        raise InputError(str(exc)) from None  # the same message, as the simulator's error type
    except OSError as exc:
        raise InputError(f"{path}: cannot read the policy: {exc.strerror or exc}") from exc


def compare(
    settings: WorldSettings,
    weeks: int,
    seed: int,
    policy_path: Path | None = None,
    start: date | None = None,
    traffic_week: list[float] | None = None,
    world: World | None = None,
) -> Comparison:
    """Generate the world once (or take `world`), then run the five policies on it."""
    path = Path(policy_path or settings.policy_path)
    policy = load_product_policy(path, settings.environment)
    world = world or generate_world(settings, weeks, seed, start=start, traffic_week=traffic_week)
    meter = Meter(world)
    outcomes: dict[str, Outcome] = {}
    results: dict[str, Scores] = {}
    seconds: dict[str, float] = {}
    runners: list[SchedulingPolicy] = [
        ManualPolicy("manual-daily", settings.manual["manual-daily"], policy, seed),
        ManualPolicy("manual-apac-emea", settings.manual["manual-apac-emea"], policy, seed),
        OrchestratorPolicy(policy, settings.environment, settings.review_times),
        # The same policy with `execution_mode: selected_versions`, the product's other execution mode.
        OrchestratorPolicy(
            policy,
            settings.environment,
            settings.review_times,
            execution_mode="selected_versions",
            name="orchestrator-selected",
        ),
    ]
    for runner in runners:
        began = time.perf_counter()
        outcomes[runner.name] = simulate(world, runner)
        results[runner.name] = score(world, outcomes[runner.name], policy, meter)
        seconds[runner.name] = time.perf_counter() - began
    began = time.perf_counter()
    oracle = run_oracle(world, policy, dict(outcomes), settings.max_pending_age_days, settings.slots_per_day)
    outcomes["oracle"] = oracle.outcome
    results["oracle"] = oracle.scores
    seconds["oracle"] = time.perf_counter() - began
    return Comparison(world, path, outcomes, results, meter, seconds)
