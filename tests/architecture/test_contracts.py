"""`make test` enforces what `make lint` and `make typecheck` check: the layers and the types.

Both tools run as the developer runs them, from the project root with its configuration (.importlinter,
pyproject.toml's [tool.mypy]), so a contract broken or a type error added fails CI, not only a reviewer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(tool: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}")
    return subprocess.run(
        [str(BIN / tool)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_layer_contracts_are_kept():
    done = _run("lint-imports", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.timeout(600)
def test_mypy_passes_on_include_and_plugins():
    # A cold cache (CI's fresh clone) reads Airflow's sources once: about a minute on 2 cores.
    done = _run("mypy", timeout=580)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout
