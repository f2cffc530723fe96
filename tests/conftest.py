"""Test-wide set-up: an isolated Airflow home, the project on sys.path, shared fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_HOME = PROJECT_ROOT / ".run" / "test-airflow"

# Airflow reads its configuration at import time: point it at an isolated home before anything imports it.
os.environ.setdefault("AIRFLOW_HOME", str(TEST_HOME))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT_ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
os.environ.setdefault("PDM_POLICY_FILE", str(PROJECT_ROOT / "config" / "policy.yaml"))
for path in (str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")):
    if path not in sys.path:
        sys.path.insert(0, path)

TEST_HOME.mkdir(parents=True, exist_ok=True)

pytest_plugins = ["tests.support.fixtures", "tests.support.prometheus", "tests.support.product"]
