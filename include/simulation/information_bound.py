"""How much each piece of information the product lacks is worth: the candidate with some of the future.

Issue 17's seed 4 misses the bar on delayed deployments: batches that overran the time to the next
deployment. The product sees two things only approximately: when the next deployment starts (its cadence
forecast) and how long the pending batch will run (class-level history of its own past runs). This module
runs the same orchestrator, in the same world, with either or both replaced by the truth:

- `product`: what the product knows (must equal the comparison's orchestrator row);
- `next-deploy`: the world's real calendar says when the next deployment starts (the forecast's
  `expected_at` is the planned start of the next deployment that has not started yet);
- `durations`: each pending batch is predicted at its real run time (pipeline overhead + the sum of its
  migrations' real durations), the deployment forecast as the product's;
- `both`: the two above;
- `per-migration-p99`: product-side: the batch prediction learns from the real duration of every
  migration its past runs executed (what per-migration timings from the PDM job's log would give), at the
  99th percentile, instead of from whole runs' durations shared by their migrations.

Everything else (windows, traffic, bake, the starvation guard, the reviews) is the product's, unchanged:
the variants subclass `OrchestratorPolicy` and override only where it gets those two predictions.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.classification.classes import MigrationClass
from include.gates import deploy_forecast
from include.gates.batch_duration import predict_batch_duration
from include.gates.deploy_forecast import DeploymentExpectation, DurationEstimate
from include.simulation.comparison import load_product_policy
from include.simulation.engine import Outcome, RunRequest, View, simulate
from include.simulation.inputs import load_world_settings
from include.simulation.policies import ManualPolicy, OrchestratorPolicy
from include.simulation.scores import Meter, Scores, score
from include.simulation.world import Migration, World, generate_world

if TYPE_CHECKING:
    from include.policy.model import Policy

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "config" / "policy-daily.yaml"
REFERENCE = "manual-apac-emea"
VARIANTS = ("product", "next-deploy", "durations", "both", "per-migration-p99")


class InformedOrchestrator(OrchestratorPolicy):
    """The orchestrator, told the real next deployment start and/or each batch's real duration.

    `next_deploy`: the deploy-lock forecast's expected start is the calendar's next planned deployment
    (the product's own `_deploy_lock` runs; only `expect_next_deployment`'s answer is replaced).
    `durations`: the batch prediction is the batch's real run time. `per_migration_quantile`: the batch is
    predicted from real per-migration durations of past runs at that quantile (ignored with `durations`).
    """

    def __init__(
        self,
        policy: Policy,
        environment: str,
        review_times: tuple[int, ...],
        *,
        next_deploy: bool = False,
        durations: bool = False,
        per_migration_quantile: float | None = None,
        name: str = "orchestrator",
    ) -> None:
        super().__init__(policy, environment, review_times, name=name)
        self.next_deploy = next_deploy
        self.durations = durations
        self.per_migration_quantile = per_migration_quantile
        self._by_id: dict[int, Migration] = {}
        self._per_migration_batches: dict[tuple[int, int, tuple[int, ...]], DurationEstimate | None] = {}
        self._lock: tuple[float, Any] | None = None
        self.forced: set[float] = set()

    def reset(self, world: World) -> None:
        super().reset(world)
        self._by_id = {m.id: m for m in world.migrations}
        self._lock = None
        self.forced = set()

    def wants_run(self, view: View) -> RunRequest | None:
        """The product's decision; a run the deploy-lock gate let in although it predicted an overlap with
        the next deployment (the starvation guard accepted it) is noted in `forced`."""
        request = super().wants_run(view)
        if request is not None and self._lock is not None and self._lock[0] == view.minute:
            observed = self._lock[1].observed
            expected = (observed.get("next_deployment") or {}).get("expected_at")
            predicted = observed.get("predicted_pdm")
            forecast = getattr(self.policy.gates.deploy_lock, "forecast", None)
            if expected and predicted and forecast is not None:
                ends = view.now + timedelta(seconds=predicted["seconds"]) + forecast.deploy_margin
                if ends > datetime.fromisoformat(expected):
                    self.forced.add(view.minute)
        return request

    def _batch_duration(self, view: View, pending: list[dict[str, Any]]) -> DurationEstimate | None:
        if self.durations:
            work = sum(self._by_id[m["id"]].duration for m in pending)
            total = self.world.pipeline_overhead + work
            return DurationEstimate(timedelta(minutes=total), f"real run time {total:.0f}m")
        if self.per_migration_quantile is not None:
            return self._per_migration_prediction(view, pending, self.per_migration_quantile)
        return super()._batch_duration(view, pending)

    def _per_migration_prediction(
        self, view: View, pending: list[dict[str, Any]], quantile: float
    ) -> DurationEstimate | None:
        """The product's batch prediction, learning each class from its migrations' real durations."""
        window = self.learning_window(view, pending)
        if window is None:
            return None
        forecast, settings, first, classes, key = (
            window.settings,
            window.batch_settings,
            window.first,
            window.classes,
            window.key,
        )
        if key in self._per_migration_batches:
            return self._per_migration_batches[key]
        history: dict[MigrationClass, list[float]] = {}
        for run in view.runs[first:]:
            for item in run.executed:
                known = self.effective_class(item.migration)
                if known is not MigrationClass.UNKNOWN:
                    history.setdefault(known, []).append((item.end - item.start) * 60)
        defaults = {cls: forecast.per_migration_default for cls in MigrationClass}
        estimate = predict_batch_duration(classes, history, defaults, replace(settings, quantile=quantile))
        if len(self._per_migration_batches) > 4096:
            self._per_migration_batches.clear()
        self._per_migration_batches[key] = estimate
        return estimate

    def _deploy_lock(self, view: View, cls: MigrationClass, batch: DurationEstimate | None = None) -> Any:
        if not self.next_deploy:
            result = super()._deploy_lock(view, cls, batch)
        else:
            with _calendar_forecast(self._next_planned(view)) as calls:
                result = super()._deploy_lock(view, cls, batch)
            forecast = getattr(self.policy.gates.deploy_lock, "forecast", None)
            if forecast is not None and forecast.enabled and not calls:
                raise RuntimeError(
                    "the deploy-lock gate no longer asks expect_next_deployment: update the hook"
                )
        self._lock = (view.minute, result)
        return result

    def _next_planned(self, view: View) -> DeploymentExpectation:
        """The start of the next deployment on the world's calendar that has not started yet.

        The engine asks a policy only when no deployment runs, so every deployment started so far has
        finished (`view.deployments`), and the calendar's next one is the following planned one."""
        planned = self.world.deployments
        index = len(view.deployments)
        if index >= len(planned):
            return DeploymentExpectation(None, "no deployment left on the calendar", index)
        start = max(planned[index].start, view.minute)
        return DeploymentExpectation(self.world.at(start), "the world's calendar", index)


@contextmanager
def _calendar_forecast(answer: DeploymentExpectation) -> Iterator[list[int]]:
    """While open, `deploy_forecast.expect_next_deployment` answers `answer` (the product's gate imports
    it when called); yields a list that grows by one per call, so a caller can tell it was used."""
    calls: list[int] = []
    original: Callable[..., DeploymentExpectation] = deploy_forecast.expect_next_deployment

    def known(*args: Any, **kwargs: Any) -> DeploymentExpectation:
        calls.append(1)
        return answer

    deploy_forecast.expect_next_deployment = known
    try:
        yield calls
    finally:
        deploy_forecast.expect_next_deployment = original


def variant_policy(
    variant: str, policy: Policy, environment: str, review_times: tuple[int, ...]
) -> InformedOrchestrator:
    """The orchestrator of one variant (see the module docstring), named `orchestrator` as in the table;
    `product` is told nothing more, so it decides as `OrchestratorPolicy` does."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    return InformedOrchestrator(
        policy,
        environment,
        review_times,
        next_deploy=variant in ("next-deploy", "both"),
        durations=variant in ("durations", "both"),
        per_migration_quantile=99.0 if variant == "per-migration-p99" else None,
    )


def bar_misses(candidate: Scores, reference: Scores) -> list[str]:
    """Issue 17's bar, the scores it misses: 0 heavy@peak, incident rollbacks and bake short, and
    load@peak, blocked minutes, delayed deployments and age p95 no higher than the reference's."""
    misses = [
        f"{name} {getattr(candidate, name):g}"
        for name in ("heavy_peak_min", "incident_rollbacks", "bake_violations")
        if getattr(candidate, name) > 0
    ]
    for name in ("peak_load", "deploy_blocked_min", "deploys_delayed", "pending_p95_h"):
        mine, theirs = getattr(candidate, name), getattr(reference, name)
        if mine is not None and (theirs is None or mine > theirs):
            misses.append(f"{name} {mine:g} > {theirs:g}")
    return misses


def guard_delays(outcome: Outcome, forced: set[float]) -> int:
    """Delayed deployments that waited for a run started at one of the minutes in `forced`."""
    ends = {run.end for run in outcome.runs if run.start in forced}
    return sum(1 for d in outcome.deployments if d.blocked > 0 and any(abs(d.start - e) < 1e-6 for e in ends))


@dataclass(frozen=True)
class Bound:
    """One seed: the reference's scores, each variant's, and each variant's delays the guard let in."""

    seed: int
    reference: Scores
    variants: dict[str, Scores]
    guard: dict[str, int]


def information_bound(
    seed: int, weeks: int = 12, policy_path: Path | None = None, variants: tuple[str, ...] = VARIANTS
) -> Bound:
    """Generate the world of `seed` (the simulator's default world), score manual-apac-emea and each variant."""
    settings = load_world_settings()
    policy = load_product_policy(Path(policy_path or DEFAULT_POLICY), settings.environment)
    world = generate_world(settings, weeks, seed)
    meter = Meter(world)
    manual = ManualPolicy(REFERENCE, settings.manual[REFERENCE], policy, seed)
    reference = score(world, simulate(world, manual), policy, meter)
    results = {}
    guard = {}
    for variant in variants:
        runner = variant_policy(variant, policy, settings.environment, settings.review_times)
        outcome = simulate(world, runner)
        results[variant] = score(world, outcome, policy, meter)
        guard[variant] = guard_delays(outcome, runner.forced)
    return Bound(seed, reference, results, guard)


def check_product(seed: int, weeks: int = 12, policy_path: Path | None = None) -> list[str]:
    """The rows `product` and manual-apac-emea must reproduce from `python -m include.simulation` (the
    comparison's orchestrator and manual-apac-emea rows, same seed, weeks and policy): what differs."""
    from include.simulation.comparison import compare

    bound = information_bound(seed, weeks, policy_path, ("product",))
    settings = load_world_settings()
    comparison = compare(settings, weeks, seed, policy_path=Path(policy_path or DEFAULT_POLICY))
    found = []
    for mine, theirs in ((bound.variants["product"], "orchestrator"), (bound.reference, REFERENCE)):
        expected = replace(comparison.scores[theirs], policy=mine.policy)
        if mine != expected:
            found.append(f"{theirs}: {mine} != {expected}")
    return found


def render(bound: Bound) -> str:
    """One line per variant, then the reference; "by guard": delays whose run the deploy-lock gate let in
    although it predicted the overlap (the starvation guard); the bar column names what a variant misses."""
    header = "variant|delayed|by guard|blocked min|age p95 h|heavy@peak|bake short|runs|bar".split("|")
    rows = [header]
    for name, s in [*bound.variants.items(), (REFERENCE, bound.reference)]:
        misses = bar_misses(s, bound.reference)
        bar = "reference" if name == REFERENCE else ("met" if not misses else "not met: " + "; ".join(misses))
        rows.append(
            [
                name,
                str(s.deploys_delayed),
                str(bound.guard[name]) if name in bound.guard else "-",
                f"{s.deploy_blocked_min:g}",
                f"{s.pending_p95_h:g}" if s.pending_p95_h is not None else "-",
                f"{s.heavy_peak_min:g}",
                str(s.bake_violations),
                str(s.runs),
                bar,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = [f"seed {bound.seed}"]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m include.simulation.information_bound --seed S [--weeks N] [--policy FILE] [--check]`."""
    parser = argparse.ArgumentParser(
        prog="python -m include.simulation.information_bound", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--policy", type=Path, default=None, help="default: config/policy-daily.yaml")
    parser.add_argument(
        "--variant", action="append", choices=VARIANTS, help="only these variants (repeatable; default all)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="also check that `product` and manual-apac-emea equal the simulator's rows (exit 1 if not)",
    )
    args = parser.parse_args(argv)
    variants = tuple(args.variant) if args.variant else VARIANTS
    print(render(information_bound(args.seed, args.weeks, args.policy, variants)), end="")
    if args.check:
        differences = check_product(args.seed, args.weeks, args.policy)
        for line in differences:
            print(f"differs: {line}")
        if differences:
            return 1
        print("check: product and manual-apac-emea equal python -m include.simulation's rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
