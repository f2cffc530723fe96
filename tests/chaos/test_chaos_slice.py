"""The slice of `make chaos` that runs in `make test`: two seeded rounds against the real parts, the same
ground-truth counts, which must all be 0 (the full campaign also requires N >= 100 faults)."""

from __future__ import annotations

import os
import shutil

import pytest

from include.sandbox.prometheus_server import DEFAULT_BINARY

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.e2e]


def test_two_rounds_of_faults_leave_no_double_or_undecided_pipeline(tmp_path, capsys):
    if not (shutil.which("prometheus") or os.path.exists(DEFAULT_BINARY)):
        pytest.skip("Debian's prometheus is not installed")
    from tests.chaos.campaign import run_campaign

    code = run_campaign(seed=7, rounds=2, workdir=tmp_path / "chaos", min_faults=1)
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith("chaos: ") and last.endswith(
        "double pipelines 0; pipelines without a decision on record 0; runs of unclassified or changed "
        "migrations 0; runs without an outcome record 0"
    ), out[-3000:]
    assert code == 0, out[-3000:]
