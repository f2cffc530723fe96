"""The timeline: replay a world under one scheduling policy, every 5 minutes, and record what happened.

Rules of the world, the same for every policy:
- a deployment starts when the calendar says, unless a PDM run holds the environment (it then starts when
  the run ends) or the previous deployment is still running; its package holds every migration merged at
  least `package_lag` minutes before it started, which become pending when it finishes;
- a PDM run never starts while a deployment runs (release managers check by hand, the product has a gate);
- a run executes every pending migration (all_pending) or the ones the policy selected (selected_versions),
  one after the other, in version order, after the pipeline's own overhead; it moves the rollback line to
  the package deployed when it started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from include.classification.classes import MigrationClass
from include.deployments import Deployment
from include.simulation.inputs import STEP_MINUTES
from include.simulation.world import Migration, PlannedDeployment, World


@dataclass
class DeploymentRun:
    """A deployment as it happened: `ready` is when it could have started, `blocked` the minutes a PDM cost."""

    planned: PlannedDeployment
    ready: float
    start: float
    end: float
    blocked: float
    package: list[int] = field(default_factory=list)

    def as_deployment(self, world: World, environment: str = "gprd") -> Deployment:
        """The product's Deployment type, as the GitLab hook would return it."""
        stamp = world.at(self.start).strftime("%Y%m%d%H%M")
        sha = f"{self.planned.id:011x}"
        return Deployment(
            id=self.planned.id + 1,
            environment=environment,
            sha=sha,
            ref=f"18.{world.at(self.start).month}.{stamp}-{sha}.{sha}",
            status="success",
            created_at=world.at(self.start),
            finished_at=world.at(self.end),
        )


@dataclass(frozen=True)
class ExecutedMigration:
    migration: Migration
    pending_since: float
    start: float
    end: float


@dataclass
class PdmRun:
    """One PDM pipeline run: when, what it executed, and the package it set as the rollback line."""

    start: float
    end: float
    executed: list[ExecutedMigration]
    deployment: DeploymentRun | None
    line_moved: bool
    run_class: MigrationClass
    manual_actions: int = 0


@dataclass
class Outcome:
    """Everything a policy did to the world; the scores are computed from this and the world alone."""

    policy: str
    runs: list[PdmRun]
    deployments: list[DeploymentRun]
    unexecuted: list[tuple[Migration, float]]
    manual_actions: int


@dataclass
class View:
    """What a policy may look at when deciding at `minute` (it never sees the future)."""

    world: World
    minute: float
    step: int
    pending: list[tuple[Migration, float]]
    last_deployment: DeploymentRun | None
    environment: str = "gprd"
    deployments: list[DeploymentRun] = field(default_factory=list)  # started so far, oldest first
    runs: list[PdmRun] = field(default_factory=list)  # this policy's finished runs, oldest first

    @property
    def now(self) -> datetime:
        return self.world.at(self.minute)


@dataclass(frozen=True)
class RunRequest:
    """A policy's decision to start the PDM pipeline now."""

    run_class: MigrationClass
    manual_actions: int = 0
    # selected_versions: the ids of the pending migrations to run (the rest stay pending); None runs all.
    migration_ids: frozenset[int] | None = None


class SchedulingPolicy(Protocol):
    name: str

    def reset(self, world: World) -> None: ...

    def wants_run(self, view: View) -> RunRequest | None: ...

    def extra_manual_actions(self) -> int: ...


def simulate(world: World, policy: SchedulingPolicy) -> Outcome:
    """Run `policy` over the whole horizon of `world`; deterministic for a given world and policy."""
    policy.reset(world)
    planned = world.deployments
    migrations = world.migrations
    next_deploy = 0
    next_merge = 0
    active: DeploymentRun | None = None
    last_deployment: DeploymentRun | None = None
    previous_end = 0.0
    pdm: PdmRun | None = None
    line: DeploymentRun | None = None
    pending: list[tuple[Migration, float]] = []
    runs: list[PdmRun] = []
    done: list[DeploymentRun] = []
    manual = 0
    for step in range(world.steps):
        minute = float(step * STEP_MINUTES)
        pdm_ended_at = None
        if pdm is not None and pdm.end <= minute:
            pdm_ended_at = pdm.end
            pdm = None
        if active is not None and active.end <= minute:
            pending.extend((migrations[i], active.end) for i in active.package)
            last_deployment, previous_end = active, active.end
            done.append(active)
            active = None
        if (
            active is None
            and pdm is None
            and next_deploy < len(planned)
            and planned[next_deploy].start <= minute
        ):
            plan = planned[next_deploy]
            ready = max(plan.start, previous_end)
            begin = max(ready, pdm_ended_at or ready)
            blocked = begin - ready
            package = []
            while next_merge < len(migrations) and migrations[next_merge].merged <= begin - world.package_lag:
                package.append(next_merge)
                next_merge += 1
            active = DeploymentRun(plan, ready, begin, begin + plan.duration, blocked, package)
            next_deploy += 1
        if pdm is not None or active is not None or not pending:
            continue
        view = View(world, minute, step, pending, last_deployment, deployments=done, runs=runs)
        request = policy.wants_run(view)
        if request is None:
            continue
        executed = []
        cursor = minute + world.pipeline_overhead
        chosen = request.migration_ids
        selected = pending if chosen is None else [p for p in pending if p[0].id in chosen]
        if not selected:
            raise ValueError(f"{policy.name}: a run at minute {minute:g} selected no pending migration")
        for migration, since in sorted(selected, key=lambda p: (p[0].version, p[0].id)):
            executed.append(ExecutedMigration(migration, since, cursor, cursor + migration.duration))
            cursor += migration.duration
        moved = last_deployment is not None and last_deployment is not line
        line = last_deployment
        pdm = PdmRun(
            minute, cursor, executed, last_deployment, moved, request.run_class, request.manual_actions
        )
        runs.append(pdm)
        manual += request.manual_actions
        pending = [] if chosen is None else [p for p in pending if p[0].id not in chosen]
    if active is not None:
        done.append(active)
    # Deployments the calendar wanted but that never started: blocked until the end counts as blocked.
    for plan in planned[next_deploy:]:
        ready = max(plan.start, previous_end)
        blocked = max(0.0, world.minutes - ready) if pdm is not None and plan.start < world.minutes else 0.0
        if blocked:
            done.append(DeploymentRun(plan, ready, world.minutes, world.minutes, blocked))
    return Outcome(policy.name, runs, done, pending, manual + policy.extra_manual_actions())
