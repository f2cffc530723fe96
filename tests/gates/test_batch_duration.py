"""Predicted duration of the pending batch, and the fit before the window closes: pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.classification.classes import MigrationClass as C
from include.gates.batch_duration import (
    BatchDurationSettings,
    PastBatch,
    batch_fit_reason,
    describe_batch,
    fit_reason,
    history_from_batches,
    per_migration_estimate,
    predict_batch_duration,
    predict_pending,
    settings_from_forecast,
)
from include.policy.model import ForecastSettings

DEFAULTS = {cls: timedelta(minutes=10) for cls in C}
PLAIN = BatchDurationSettings(overhead=timedelta(minutes=10), quantile=90, safety_factor=1.0, min_samples=3)


def test_without_history_every_migration_counts_the_default():
    found = predict_batch_duration([C.DATA, C.CLEANUP, C.CLEANUP], {}, DEFAULTS, PLAIN)
    assert found.duration == timedelta(minutes=40)
    assert "2 cleanup (default" in found.basis


def test_history_gives_mean_and_spread_of_the_sum():
    history = {C.DATA: [60.0, 60.0, 60.0, 60.0]}  # no spread: the sum is exact
    found = predict_batch_duration([C.DATA] * 5, history, DEFAULTS, PLAIN)
    assert found.duration == timedelta(minutes=15)


def test_one_slow_class_sets_a_floor_at_its_single_migration_quantile():
    history = {C.SCHEMA_HEAVY: [60.0, 60.0, 60.0, 3600.0]}
    found = predict_batch_duration([C.SCHEMA_HEAVY], history, DEFAULTS, PLAIN)
    single = per_migration_estimate(history[C.SCHEMA_HEAVY], 90)
    assert found.duration >= timedelta(seconds=600 + single)


def test_unknown_never_learns_from_history():
    history = {C.UNKNOWN: [1.0, 1.0, 1.0, 1.0]}
    found = predict_batch_duration([C.UNKNOWN], history, DEFAULTS, PLAIN)
    assert found.duration == timedelta(minutes=20)


def test_safety_factor_scales_the_whole_run():
    settings = BatchDurationSettings(overhead=timedelta(minutes=10), safety_factor=2.0, min_samples=3)
    assert predict_batch_duration([C.NOOP], {}, DEFAULTS, settings).duration == timedelta(minutes=40)


@pytest.mark.parametrize(
    "bad", [BatchDurationSettings(safety_factor=0.5), BatchDurationSettings(quantile=100)]
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        predict_batch_duration([C.NOOP], {}, DEFAULTS, bad)


def test_a_class_without_default_or_history_is_an_error():
    with pytest.raises(ValueError, match="class data"):
        predict_batch_duration([C.DATA], {}, {}, PLAIN)


def test_fit_before_the_window_closes():
    now = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
    closes = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    assert fit_reason(now, timedelta(hours=2), closes) is None
    assert fit_reason(now, timedelta(hours=2), None) is None
    reason = fit_reason(now, timedelta(hours=11), closes)
    assert reason is not None and "Thu 09:00 UTC" in reason and "Thu 08:00 UTC" in reason


def test_past_runs_share_their_work_evenly_among_their_migrations():
    batches = [
        PastBatch({C.DATA: 2, C.CLEANUP: 1}, 40 * 60.0),  # 10m overhead + 30m of work: 10m each
        PastBatch({C.SCHEMA_HEAVY: 1}, 130 * 60.0),  # one long migration: all of its 2h is its own
        PastBatch({C.UNKNOWN: 1, C.DATA: 1}, 30 * 60.0),  # unknown learns nothing; data gets its share
        PastBatch({}, 600.0),  # nothing executed: no sample
        PastBatch({C.DATA: 1}, float("nan")),  # no duration: no sample
    ]
    history = history_from_batches(batches, timedelta(minutes=10))
    assert history == {
        C.DATA: [600.0, 600.0, 600.0],
        C.CLEANUP: [600.0],
        C.SCHEMA_HEAVY: [7200.0],
    }
    # A run shorter than the overhead counts zero work, never negative.
    assert history_from_batches([PastBatch({C.NOOP: 2}, 60.0)], timedelta(minutes=10)) == {C.NOOP: [0.0, 0.0]}


def _batch_settings(**values) -> BatchDurationSettings | None:
    """The batch settings of a forecast with these values (the policy's path: settings_from_forecast)."""
    base = {
        "enabled": True,
        "per_migration_quantile": 50.0,
        "pipeline_overhead": timedelta(minutes=10),
        "min_samples": 2,
        "safety_factor": 1.0,
    }
    return settings_from_forecast(ForecastSettings(**(base | values)))


def test_predict_pending_is_off_unless_the_policy_predicts_per_batch():
    runs = [PastBatch({C.DATA: 1}, 1200.0)] * 3
    assert predict_pending([C.DATA], runs, _batch_settings(per_migration_quantile=None)) is None
    assert predict_pending([C.DATA], runs, _batch_settings(enabled=False)) is None
    found = predict_pending([C.DATA, C.DATA], runs, _batch_settings())
    assert found is not None and found.duration == timedelta(minutes=30)  # 10m overhead + 2 × 10m learned
    # Too few runs of a class: the conservative per-migration default (10m) for each of its migrations.
    assert predict_pending([C.CLEANUP] * 3, runs, _batch_settings()).duration == timedelta(minutes=40)


def test_a_batch_that_does_not_fit_is_named_with_its_heavy_classes():
    now = datetime(2026, 11, 25, 4, 30, tzinfo=UTC)
    closes = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    batch = [C.SCHEMA_HEAVY] * 3 + [C.BACKGROUND] * 10 + [C.DATA]
    assert describe_batch(batch) == "batch of 14 (3 schema_heavy, 1 data)"
    assert describe_batch([C.NOOP]) == "batch of 1"
    run = timedelta(hours=2, minutes=10)
    assert batch_fit_reason(batch, run, closes - run, closes) is None  # ends as the window closes: fits
    assert batch_fit_reason(batch, run, now, None) is None
    assert batch_fit_reason(batch, run, now, closes) == (
        "batch of 14 (3 schema_heavy, 1 data) predicted 2h10 would end Wed 06:40 UTC, "
        "after the window closes Wed 06:00 UTC"
    )
