"""Information bounds: the candidate told the real next deployment and/or the real batch durations."""

from __future__ import annotations

import pytest

from include.simulation.information_bound import (
    DEFAULT_POLICY,
    VARIANTS,
    bar_misses,
    check_product,
    information_bound,
    main,
)

SEED, WEEKS = 4, 2


def test_the_product_variant_reproduces_the_simulators_orchestrator_row():
    assert check_product(SEED, WEEKS, DEFAULT_POLICY) == []


def test_every_variant_is_deterministic():
    first = information_bound(SEED, WEEKS)
    second = information_bound(SEED, WEEKS)
    assert list(first.variants) == list(VARIANTS)
    assert first == second


def test_with_both_truths_a_deployment_waits_only_for_a_run_the_guard_let_in():
    """Knowing the next start and the run time, the gate predicts every overlap: only the guard accepts one."""
    bound = information_bound(SEED, WEEKS, variants=("both",))
    assert bound.variants["both"].deploys_delayed == bound.guard["both"]


def test_the_bar_names_each_score_it_misses():
    from dataclasses import replace

    reference = information_bound(SEED, WEEKS, variants=()).reference
    clean = replace(reference, bake_violations=0, incident_rollbacks=0)
    assert bar_misses(clean, reference) == []
    worse = replace(clean, deploys_delayed=reference.deploys_delayed + 1, bake_violations=2)
    assert bar_misses(worse, reference) == [
        "bake_violations 2",
        f"deploys_delayed {reference.deploys_delayed + 1} > {reference.deploys_delayed}",
    ]


def test_an_unknown_variant_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--seed", "1", "--weeks", "1", "--variant", "oracle"])
    assert "invalid choice" in capsys.readouterr().err
