"""Policy simulator: wall time of the 12-week, 5-policy comparison on the default world, and its table.

Prints the time of each phase (world generation, each policy, the oracle's search and replays), the
machine's load (other work on the machine slows every figure), then the score table itself.

    .venv/bin/python bench/bench_simulation.py
    BENCH_WEEKS=26 BENCH_SEED=3 .venv/bin/python bench/bench_simulation.py
    BENCH_WORLD=include/simulation/defaults/world-mr-check.yaml .venv/bin/python bench/bench_simulation.py
    BENCH_SEEDS=1-5 .venv/bin/python bench/bench_simulation.py    # issue 17's comparison: times only
    BENCH_SEEDS=1-5 BENCH_POLICY=config/policy-daily.yaml .venv/bin/python bench/bench_simulation.py

With BENCH_SEEDS, every seed's whole comparison is run in turn and only the times are printed: wall and
CPU (process time) per seed and in total, because on a shared machine the wall time says more about the
other jobs than about the simulator.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WEEKS = int(os.environ.get("BENCH_WEEKS", "12"))
SEED = int(os.environ.get("BENCH_SEED", "1"))
WORLD = os.environ.get("BENCH_WORLD")  # a world file; default: include/simulation/defaults/world.yaml
SEEDS = os.environ.get("BENCH_SEEDS")  # "1-5" or "1,3": time the comparison over these seeds
POLICY = os.environ.get("BENCH_POLICY")  # a policy file; default: the world's (config/policy.yaml)


def seeds(text: str) -> list[int]:
    """'1-5' → [1, 2, 3, 4, 5]; '1,3' → [1, 3]."""
    found: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        found += list(range(int(low), int(high or low) + 1))
    return found


def main_seeds() -> None:
    from include.simulation.comparison import compare
    from include.simulation.inputs import load_world_settings

    settings = load_world_settings(WORLD) if WORLD else load_world_settings()
    wall = cpu = 0.0
    for seed in seeds(SEEDS or "1"):
        began, began_cpu = time.perf_counter(), time.process_time()
        compare(settings, WEEKS, seed, policy_path=Path(POLICY) if POLICY else None)
        seed_wall, seed_cpu = time.perf_counter() - began, time.process_time() - began_cpu
        wall, cpu = wall + seed_wall, cpu + seed_cpu
        print(f"seed {seed}: {seed_wall:6.2f} s wall, {seed_cpu:6.2f} s CPU")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}")
    print(f"all seeds, all policies, {WEEKS} weeks: {wall:.2f} s wall, {cpu:.2f} s CPU")


def main() -> None:
    from include.simulation.comparison import compare
    from include.simulation.inputs import load_world_settings
    from include.simulation.report import render_table
    from include.simulation.world import generate_world

    began = time.perf_counter()
    settings = load_world_settings(WORLD) if WORLD else load_world_settings()
    world = generate_world(settings, WEEKS, SEED)
    generated = time.perf_counter() - began
    comparison = compare(settings, WEEKS, SEED, world=world)
    total = time.perf_counter() - began
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}")
    print(f"world file: {settings.source}")
    print(
        f"world: {WEEKS} weeks, seed {SEED}: {world.steps} steps, {len(world.deployments)} deployments, "
        f"{len(world.migrations)} migrations, {len(world.incidents)} incidents; generated in {generated:.2f} s"
    )
    for name, seconds in comparison.seconds.items():
        print(f"  {name:<21} {seconds:6.2f} s")
    policies = len(comparison.seconds)
    print(f"whole comparison ({policies} policies, settings and world included): {total:.2f} s wall")
    print()
    print(render_table(comparison), end="")


if __name__ == "__main__":
    main_seeds() if SEEDS else main()
