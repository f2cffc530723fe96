"""Predicted duration of the pending batch, and the fit before the window closes: pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.classification.classes import MigrationClass as C
from include.gates.batch_duration import (
    BatchDurationSettings,
    fit_reason,
    per_migration_estimate,
    predict_batch_duration,
)

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
