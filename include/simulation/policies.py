"""The scheduling policies compared: today's manual practice, the orchestrator, and a replayed schedule.

The orchestrator decides only through the product's own code: `include.decision` (run class, whether a
human is needed, the verdict over the gates) and `include.gates` (window, traffic, deploy lock, rollback
safety), fed with what the simulated world shows at that moment, the way
plugins/pdm_orchestrator/gate_checks.py feeds them from GitLab and Prometheus.
"""

from __future__ import annotations

import bisect
import dataclasses
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from include.classification.classes import MigrationClass, most_restrictive
from include.decision import NEEDS_HUMAN, choose_path, decide, run_class, select_versions
from include.gates.batch_duration import (
    BatchDurationSettings,
    PastBatch,
    batch_fit_reason,
    predict_pending,
    settings_from_forecast,
)
from include.gates.deploy_forecast import DurationEstimate
from include.gates.deploy_lock import DeployLockObservation, evaluate_deploy_lock
from include.gates.rollback import BlockingIssue, RollbackObservation, evaluate_rollback_safety
from include.gates.traffic import TrafficObservation, TrafficSettings, evaluate_traffic, settings_for_class
from include.gates.traffic_baseline import hour_of_week, hourly_percentiles
from include.gates.window import evaluate_window
from include.simulation.engine import RunRequest, View
from include.simulation.inputs import STEP_MINUTES, STEPS_PER_WEEK, ManualSettings
from include.simulation.world import Incident, World

if TYPE_CHECKING:
    from include.policy.model import Policy

INCIDENT_PROJECT = "gitlab-com/gl-infra/production"
# A release manager who finds a deployment running (or nothing deployed yet) comes back within this many
# minutes; later than that, the day's run is skipped.
MANUAL_PATIENCE = 240.0


@dataclasses.dataclass(frozen=True)
class LearningWindow:
    """A batch prediction's inputs: the policy's forecast settings (and their batch form), the first past run
    still within `duration_history`, the batch's classes, and the key its prediction is cached under."""

    settings: Any
    batch_settings: BatchDurationSettings
    first: int
    classes: list[MigrationClass]
    key: tuple[int, int, tuple[int, ...]]


def _due(planned: list[float], holder: Any, minute: float, patience: float) -> bool:
    """Consume the planned starts up to `minute`; True when the latest is at most `patience` minutes old."""
    due = False
    while holder._next < len(planned) and planned[holder._next] <= minute:
        due = minute - planned[holder._next] <= patience
        holder._next += 1
    return due


def weekday_instants(world: World, minute_of_day: int) -> list[float]:
    """The given time of day on every weekday of the horizon, in minutes since the start."""
    return [
        day * 1440.0 + minute_of_day
        for day in range(world.weeks * 7)
        if (world.start.weekday() + day) % 7 < 5
    ]


class ManualPolicy:
    """A release manager starts the PDM pipeline once per weekday at about `time`, whatever is pending.

    Skipped when a change lock of the policy covers that moment; if a deployment is running, they wait
    for it to finish (they check for running pipelines by hand). One manual action per run.
    """

    def __init__(self, name: str, settings: ManualSettings, policy: Policy, seed: int) -> None:
        self.name = name
        self.settings = settings
        self.policy = policy
        self.seed = seed
        self.planned: list[float] = []
        self._next = 0

    def reset(self, world: World) -> None:
        # The jitter has its own stream per policy name: same seed, same release-manager habits.
        rng = np.random.default_rng([self.seed, sum(self.name.encode())])
        self.planned = []
        for base in weekday_instants(world, self.settings.time):
            minute = base + float(rng.uniform(-self.settings.jitter, self.settings.jitter))
            moment = world.at(minute)
            if any(
                a <= moment < b for (a, b), _ in self.policy.lock_spans(moment, moment + timedelta(seconds=1))
            ):
                continue
            self.planned.append(minute)
        self._next = 0

    def wants_run(self, view: View) -> RunRequest | None:
        if not _due(self.planned, self, view.minute, MANUAL_PATIENCE):
            return None
        return RunRequest(most_restrictive(m.actual for m, _ in view.pending), manual_actions=1)

    def extra_manual_actions(self) -> int:
        return 0


def traffic_settings(policy: Policy, cls: MigrationClass) -> TrafficSettings:
    """The traffic gate's settings for a class, resolved by the product's own `settings_for_class`; the
    simulated world has no database-health signal (see docs/evaluation.md), so that query is dropped."""
    return dataclasses.replace(settings_for_class(policy, cls), health_query=None)


class OrchestratorPolicy:
    """The product: classify what is pending, wait for the strictest class's gates, run when all are open.

    Each 5-minute step with something pending and nothing holding the environment is one gate check
    (the DAG polls every `gates.poll_interval` inside runs its timetable creates when windows open).
    A closed window sleeps until the window gate's `retry_at`, as the deferred gate does.

    `unknown` migrations are never run automatically (`decision.choose_path`): a release manager annotates
    them at the next weekday `review_times` (one manual action per review), after which they count as their
    real class. A run of a class with `approval_required` costs one manual action.

    `execution_mode` (default: the policy's) `selected_versions` runs, like run_steps.select_for_run, the
    longest version-ordered prefix of pending migrations whose strictest class is automatic and inside its
    windows now (`decision.select_versions`: lighter migrations ahead of it ride in its window, an `unknown`
    ends the prefix), and waits for the gates of that strictest class, as an all_pending run does.
    """

    def __init__(
        self,
        policy: Policy,
        environment: str,
        review_times: tuple[int, ...],
        execution_mode: str | None = None,
        name: str = "orchestrator",
    ) -> None:
        self.policy = policy.for_environment(environment)
        self.name = name
        self.execution_mode = execution_mode or self.policy.execution_mode
        if self.execution_mode not in ("all_pending", "selected_versions"):
            raise ValueError(f"{name}: unknown execution_mode {self.execution_mode!r}")
        self.environment = environment
        self.review_times = review_times
        self.reviews: list[float] = []
        self.reviewed: set[int] = set()
        self.review_instants_used: set[float] = set()
        self._sleep: dict[MigrationClass, float] = {}
        self._settings = {cls: traffic_settings(self.policy, cls) for cls in MigrationClass}
        self._baselines: dict[tuple[int, float], Any] = {}
        self._issues: dict[int, BlockingIssue] = {}
        self.gate_checks = 0

    def reset(self, world: World) -> None:
        self.world = world
        self.reviews = sorted(m for t in self.review_times for m in weekday_instants(world, t))
        self.reviewed = set()
        self.review_instants_used = set()
        self._sleep = {}
        self._baselines = {}
        self._profiles: dict[int, tuple[Any, str | None]] = {}
        self._issues = {}
        self._decisions: dict[
            tuple[Any, ...], tuple[list[dict[str, Any]], frozenset[int] | None, Any, Any] | None
        ] = {}
        self._batches: dict[tuple[int, int, tuple[int, ...]], DurationEstimate | None] = {}
        self._verdicts: dict[MigrationClass, tuple[bool, float]] = {}
        self.gate_checks = 0
        labels = set(self.policy.gates.rollback.incident_labels_any)
        for index, incident in enumerate(world.incidents):
            incident_labels = (f"severity::{incident.severity}",)
            if labels.intersection(incident_labels):
                self._issues[index] = BlockingIssue(
                    INCIDENT_PROJECT, index + 1, f"simulated S{incident.severity} incident", incident_labels
                )

    def effective_class(self, migration: Any) -> MigrationClass:
        """What the orchestrator knows: the classifier's class, or the annotation once a human reviewed it."""
        known: MigrationClass = migration.actual if migration.id in self.reviewed else migration.cls
        return known

    def _review(self, view: View) -> None:
        for migration, since in view.pending:
            if migration.cls is not MigrationClass.UNKNOWN or migration.id in self.reviewed:
                continue
            index = bisect.bisect_left(self.reviews, since)
            if index < len(self.reviews) and self.reviews[index] <= view.minute:
                self.reviewed.add(migration.id)
                self.review_instants_used.add(self.reviews[index])

    def wants_run(self, view: View) -> RunRequest | None:
        self._review(view)
        decided = self._classified(view)
        if decided is None:
            return None
        pending, chosen, cls, rule = decided
        if self._sleep.get(cls, -1.0) > view.minute:
            return None
        now = view.now
        self.gate_checks += 1
        window = self._window(view, cls)
        if not window.open:
            if window.retry_at is not None:
                self._sleep[cls] = self.world.minute_of(window.retry_at)
            return None
        batch = self._batch_duration(view, pending)
        batch_classes = [MigrationClass.parse(m["class"]) for m in pending]
        if batch is not None and batch_fit_reason(batch_classes, batch.duration, now, _closes_at(window)):
            return None  # the batch would outlast its low-traffic window: wait for a longer one
        results = [
            window,
            evaluate_traffic(now, self._traffic(view, cls), self._settings[cls]),
            evaluate_rollback_safety(now, self._rollback(view), rule.min_bake),
        ]
        # The deploy-lock gate last, and only when the others are open: with a forecast it costs a pandas
        # computation, and a closed gate above already means no go, whatever it says.
        if not all(r.open for r in results):
            return None
        results.append(self._deploy_lock(view, cls, batch))
        if not decide(results).go:
            return None
        return RunRequest(cls, manual_actions=1 if rule.approval_required else 0, migration_ids=chosen)

    def extra_manual_actions(self) -> int:
        return len(self.review_instants_used)

    def _classified(self, view: View) -> tuple[list[dict[str, Any]], frozenset[int] | None, Any, Any] | None:
        """What the DAG's classify/select steps give for the pending set: (the run's migrations, the
        selected ids or None, run class, class rule), or None when nothing may run (a human is needed, or
        selected_versions selects nothing now).

        The pending list only grows at its end between runs, and a run removes what it executed, so
        (length, first id, last id, reviews done) identifies it; with selected_versions the windows'
        verdicts of its classes are part of the key. The answer is cached on that key: the product's
        functions are called once per distinct input instead of every 5 minutes.
        """
        items = view.pending
        key: tuple[Any, ...] = (len(items), items[0][0].id, items[-1][0].id, len(self.reviewed))
        allowed = None
        if self.execution_mode == "selected_versions":
            classes = {self.effective_class(m) for m, _ in items}
            allowed = self._allowed_now(view, classes)
            key += tuple(sorted((c.rank, allowed(c)) for c in classes))
        if key in self._decisions:
            return self._decisions[key]
        pending: list[dict[str, Any]] = [  # the DAG's pending-migration records (include/decision.py)
            {"class": self.effective_class(m).value, "path": m.path, "version": m.version, "id": m.id}
            for m, _ in items
        ]
        chosen: frozenset[int] | None = None
        decided: tuple[list[dict[str, Any]], frozenset[int] | None, Any, Any] | None = None
        if allowed is not None:
            pending = select_versions(pending, allowed)
            chosen = frozenset(m["id"] for m in pending)
        if pending:  # empty: the DAG's "nothing_allowed_now", the first pending migration cannot run now
            cls = run_class(pending)
            rule = self.policy.class_rule(cls)
            path, _ = choose_path(pending, rule.automatic)
            if path != NEEDS_HUMAN:
                decided = (pending, chosen, cls, rule)
        if len(self._decisions) > 4096:
            self._decisions.clear()
        self._decisions[key] = decided
        return decided

    def _allowed_now(self, view: View, classes: set[MigrationClass]) -> Any:
        """run_steps.select_for_run's predicate: the class rule is automatic and its windows allow it now.

        A calendar verdict holds until the window it is in closes (`closes_at`) or the next one opens
        (`next_opens_at`), so it is reused until then; classes with learned windows are judged every step.
        """
        verdicts: dict[MigrationClass, bool] = {}
        for cls in classes:
            cached = self._verdicts.get(cls)
            if cached is not None and cached[1] > view.minute:
                verdicts[cls] = cached[0]
                continue
            rule = self.policy.class_rule(cls)
            if not rule.automatic:
                verdicts[cls] = False
                self._verdicts[cls] = (False, float("inf"))
                continue
            verdict = self.policy.window_verdict(cls, view.now)
            verdicts[cls] = verdict.allowed
            learned = getattr(self.policy, "learned_windows", None) or {}
            if any(name in learned for name in rule.windows):
                continue
            until = verdict.closes_at if verdict.allowed else verdict.next_opens_at
            valid = self.world.minute_of(until) if until is not None else view.minute + 1440.0
            self._verdicts[cls] = (verdict.allowed, valid)
        return verdicts.__getitem__

    # -- observations, as the hooks would report them ---------------------------------------------------
    def _window(self, view: View, cls: MigrationClass) -> Any:
        """As gate_checks.window_gate: a class with learned windows is judged with the traffic profile."""
        learned = getattr(self.policy, "learned_windows", None) or {}
        if not any(name in learned for name in self.policy.class_rule(cls).windows):
            return evaluate_window(view.now, self.policy, cls)
        profile, error = self._profile(view)
        return evaluate_window(view.now, self.policy, cls, profile=profile, profile_error=error)

    def _profile(self, view: View) -> tuple[Any, str | None]:
        """The traffic profile the pdm_traffic_profile DAG would have stored today (it runs daily)."""
        from include.gates.traffic_profile import build_traffic_profile

        day = int(view.minute // 1440)
        if day not in self._profiles:
            settings = self.policy.gates.traffic.profile
            world = self.world
            # The profile depends on the traffic and these settings only: both orchestrator rows share it
            # (the arrays' ids keep a copy of the world with other traffic from reading it).
            shared = (
                id(world.traffic),
                id(world.history),
                self.environment,
                day,
                settings.weeks,
                settings.low_percentile,
            )
            if ("profile", *shared) in world.derived:
                self._profiles[day] = world.derived[("profile", *shared)]
                return self._profiles[day]
            end_step = day * 1440 // STEP_MINUTES
            series = np.concatenate([world.history, world.traffic[:end_step]])
            series = series[-settings.weeks * STEPS_PER_WEEK :]
            origin = end_step - series.size
            history = [(world.at((origin + i) * STEP_MINUTES), float(v)) for i, v in enumerate(series)]
            try:
                profile = build_traffic_profile(
                    self.environment,
                    history,
                    world.at(day * 1440.0),
                    settings.low_percentile,
                    history_start=world.at(origin * STEP_MINUTES),
                )
                self._profiles[day] = (profile, None)
            except ValueError as exc:  # no usable history: learned windows stay closed, saying why
                self._profiles[day] = (None, str(exc))
            world.derived[("profile", *shared)] = self._profiles[day]
        return self._profiles[day]

    def learning_window(self, view: View, pending: list[dict[str, Any]]) -> LearningWindow | None:
        """What a batch prediction learns from and predicts: None when the policy does not predict per batch."""
        settings = getattr(self.policy.gates.deploy_lock, "forecast", None)
        batch_settings = settings_from_forecast(settings)
        if settings is None or batch_settings is None:
            return None
        recent = view.minute - settings.duration_history.total_seconds() / 60
        first = bisect.bisect_left([run.start for run in view.runs], recent)
        classes = [MigrationClass.parse(m["class"]) for m in pending]
        # The prediction depends only on the runs learned from and the batch's classes: reuse it until
        # either changes (a new run, a run ageing out of duration_history, another pending set).
        key = (len(view.runs), first, tuple(sorted(c.rank for c in classes)))
        return LearningWindow(settings, batch_settings, first, classes, key)

    def _batch_duration(self, view: View, pending: list[dict[str, Any]]) -> DurationEstimate | None:
        """With `per_migration_quantile` set, the predicted run time of this batch (batch_duration.py), from
        the facts the DAG reads from the audit store for each past run: the classes it executed (as this
        policy knew them then) and the run's duration (batch_duration.predict_pending, as the DAG calls it)."""
        window = self.learning_window(view, pending)
        if window is None:
            return None
        batch_settings, first, classes, key = window.batch_settings, window.first, window.classes, window.key
        if key in self._batches:
            return self._batches[key]
        batches = []
        for run in view.runs[first:]:
            counts: dict[MigrationClass, int] = {}
            for item in run.executed:
                known = self.effective_class(item.migration)
                counts[known] = counts.get(known, 0) + 1
            batches.append(PastBatch(counts, (run.end - run.start) * 60))
        estimate = predict_pending(classes, batches, batch_settings)
        if len(self._batches) > 4096:
            self._batches.clear()
        self._batches[key] = estimate
        return estimate

    def _deploy_lock(self, view: View, cls: MigrationClass, batch: DurationEstimate | None = None) -> Any:
        """Nothing holds the environment (the engine asks only then); with the policy's next-deployment
        forecast on, it is made as gate_checks.deploy_forecast makes it, from the simulated history."""
        settings = getattr(self.policy.gates.deploy_lock, "forecast", None)
        if settings is None or not settings.enabled:
            return evaluate_deploy_lock(view.now, DeployLockObservation())
        from include.gates.deploy_forecast import (
            DeployForecast,
            expect_next_deployment,
            predict_pdm_duration,
            waiting_since,
        )

        now = view.now
        since = view.minute - settings.history.total_seconds() / 60
        starts = [self.world.at(d.start) for d in view.deployments if d.start >= since]
        expected = expect_next_deployment(
            starts,
            now,
            settings.history,
            settings.min_share,
            gap_percentile=settings.gap_percentile,
            weekly_pattern=settings.weekly_pattern,
        )
        # The starvation guard's clock, from what the DAG reads too: the deployments' finish times and the
        # last PDM run's start (GitLab's db/<environment> deployments).
        held = None
        if settings.max_hold is not None:
            # Both read over the forecast's `history`, as gate_checks.deploy_forecast reads them from GitLab.
            last_run = view.runs[-1].start if view.runs and view.runs[-1].start >= since else None
            waiting = waiting_since(
                [self.world.at(d.end) for d in view.deployments if d.start >= since],
                self.world.at(last_run) if last_run is not None else None,
            )
            held = now - waiting if waiting is not None else None
        if batch is not None:
            forecast = DeployForecast.from_settings(settings, expected, batch, held)
            return evaluate_deploy_lock(now, DeployLockObservation(forecast=forecast))
        recent = view.minute - settings.duration_history.total_seconds() / 60
        durations = [(r.end - r.start) * 60 for r in view.runs if r.run_class is cls and r.start >= recent]
        duration = predict_pdm_duration(
            durations,
            safety_factor=settings.safety_factor,
            min_runs=settings.min_runs,
            class_name=cls.value,
            class_max=self.policy.class_rule(cls).max_predicted_duration,
            default=settings.default_duration,
        )
        forecast = DeployForecast.from_settings(settings, expected, duration, held)
        return evaluate_deploy_lock(now, DeployLockObservation(forecast=forecast))

    def _traffic(self, view: View, cls: MigrationClass) -> TrafficObservation:
        settings = self._settings[cls]
        count = int(settings.sustain.total_seconds() // (STEP_MINUTES * 60)) + 1
        first = max(0, view.step - count + 1)
        samples = [
            (self.world.at(index * STEP_MINUTES), float(self.world.traffic[index]))
            for index in range(first, view.step + 1)
        ]
        baseline = None
        if settings.mode == "baseline_percentile":
            baseline = self._baseline(view, settings)
        return TrafficObservation(
            samples=samples, baseline=baseline, resolution=timedelta(minutes=STEP_MINUTES)
        )

    def _baseline(self, view: View, settings: TrafficSettings) -> float | None:
        """The learned threshold from the `baseline_weeks` weeks before this week (recomputed weekly)."""
        week = view.step // STEPS_PER_WEEK
        key = (week, settings.percentile)
        if key not in self._baselines:
            world = self.world
            series = np.concatenate([world.history, world.traffic[: week * STEPS_PER_WEEK]])
            series = series[-settings.baseline_weeks * STEPS_PER_WEEK :]
            origin = week * STEPS_PER_WEEK - series.size
            history = [(world.at((origin + i) * STEP_MINUTES), float(v)) for i, v in enumerate(series)]
            self._baselines[key] = hourly_percentiles(history, settings.percentile)
        value = self._baselines[key].get(hour_of_week(view.now))
        return None if value is None or value != value else float(value)

    def _rollback(self, view: View) -> RollbackObservation:
        deployed = (
            view.last_deployment.as_deployment(self.world, self.environment) if view.last_deployment else None
        )
        issues = [
            issue for index, issue in self._issues.items() if _open(self.world.incidents[index], view.minute)
        ]
        return RollbackObservation(deployed=deployed, blocking_issues=issues)


def _closes_at(window: Any) -> datetime | None:
    """When the open window gate's window closes (its observed `closes_at`), or None."""
    value = window.observed.get("closes_at") if window.open else None
    return datetime.fromisoformat(value) if value else None


def _open(incident: Incident, minute: float) -> bool:
    return incident.open_at(minute)


class ReplayPolicy:
    """Start a run at each of the given minutes (or at the first step after, when the environment is held)."""

    def __init__(
        self, name: str, starts: list[float], manual_for: Any = None, patience: float = 120.0
    ) -> None:
        self.name = name
        self.patience = patience
        self.starts = sorted(starts)
        self.manual_for = manual_for
        self._next = 0

    def reset(self, world: World) -> None:
        self._next = 0

    def wants_run(self, view: View) -> RunRequest | None:
        if not _due(self.starts, self, view.minute, self.patience):
            return None
        cls = most_restrictive(m.actual for m, _ in view.pending)
        actions = self.manual_for(view) if self.manual_for else 0
        return RunRequest(cls, manual_actions=actions)

    def extra_manual_actions(self) -> int:
        return 0
