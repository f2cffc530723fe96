"""Declaring the DAGs stays cheap: what the dag-processor imports when it parses dags/ (issue 18).

Each file of dags/ is parsed as Airflow's dag-processor parses it (bench/support/parse_dag.py: `DagBag` in a
fresh interpreter, Airflow already imported); the modules the parse adds must not include a network client,
a database driver or an engine that only a running task needs. Airflow's own imports are not counted (they
are loaded before the parse). bench/bench_dag_parse.py prints the time against a stock-parts floor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "bench" / "support" / "parse_dag.py"
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))

# Top-level packages a task may use but declaring a DAG must not load: the GitLab and HTTP clients, the
# database drivers, Prometheus and messaging clients, and the heavy engines (tree-sitter, dataframes, charts).
FORBIDDEN_PACKAGES = frozenset(
    {
        "gitlab",
        "requests",
        "httpx",
        "urllib3",
        "aiohttp",
        "websockets",
        "grpc",
        "psycopg2",
        "psycopg",
        "asyncpg",
        "pymysql",
        "MySQLdb",
        "redis",
        "kombu",
        "celery",
        "prometheus_client",
        "tree_sitter",
        "tree_sitter_ruby",
        "sqlglot",
        "pandas",
        "numpy",
        "plotly",
        "fastapi",
        "uvicorn",
    }
)
# Project modules only a task, the CLI or a test needs: the classifier's engine (the policy needs only the
# class names), the sandbox servers and the simulator.
FORBIDDEN_PROJECT_MODULES = ("include.classification.engine", "include.sandbox", "include.simulation")


def _parse(path: Path) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        PDM_POLICY_FILE=str(ROOT / "config" / "policy.yaml"),
    )
    done = subprocess.run(
        [sys.executable, str(PROBE), str(path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_parsing_a_dag_file_loads_no_client_driver_or_engine(path):
    parsed = _parse(path)
    assert parsed["errors"] == {}
    assert parsed["dags"], "the file declares no DAG"
    added = parsed["modules"]
    clients = sorted({name.split(".")[0] for name in added} & FORBIDDEN_PACKAGES)
    assert clients == [], f"parsing {path.name} imports {clients}"
    project = sorted(m for m in added if m.startswith(FORBIDDEN_PROJECT_MODULES))
    assert project == [], f"parsing {path.name} imports {project}"
