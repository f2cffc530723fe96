"""A bad policy never makes the PDM DAGs vanish: they stay listed (and serializable) with the policy's error in
their description and docs, every run fails at once with that error and records it, `python -m include.policy
check` exits non-zero with the same messages, and a fixed policy brings the full DAGs back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS = PROJECT_ROOT / "dags"
DAG_FILE = DAGS / "pdm_environments.py"
GOOD_POLICY = PROJECT_ROOT / "config" / "policy.yaml"


def _broken_policy(tmp_path: Path, mutate) -> Path:
    policy = yaml.safe_load(GOOD_POLICY.read_text())
    mutate(policy)
    path = tmp_path / "broken-policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def _bag(path: Path = DAG_FILE):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(path), safe_mode=False)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p["windows"]["weekend"].update(start="25:00"), "windows.weekend.start"),
        (lambda p: p["classes"]["data"].update(windows=["no_such_window"]), "classes.data.windows"),
        (lambda p: p.update(surprise=True), "surprise"),
        (lambda p: p["classes"].update(heavy_ish={"windows": ["weekend"]}), "classes.heavy_ish"),
    ],
    ids=["bad time", "unknown window", "unknown key", "unknown class"],
)
def test_a_bad_policy_keeps_the_dags_listed_with_the_error(
    airflow_db, tmp_path, monkeypatch, mutate, expected
):
    from airflow.serialization.serialized_objects import DagSerialization

    policy = _broken_policy(tmp_path, mutate)
    monkeypatch.setenv("PDM_POLICY_FILE", str(policy))
    bag = _bag()
    assert bag.import_errors == {}
    assert {"pdm_gstg", "pdm_gprd"} <= set(bag.dag_ids)
    for dag_id in ("pdm_gstg", "pdm_gprd"):
        dag = bag.get_dag(dag_id)
        DagSerialization.serialize_dag(dag)
        assert dag.description.startswith("POLICY INVALID") and expected in dag.description
        assert str(policy) in dag.doc_md and expected in dag.doc_md
        assert [t.task_id for t in dag.tasks] == ["policy_invalid"]
        assert (
            type(dag.timetable).__name__ == "NullTimetable"
        )  # unscheduled: a run is only ever the one someone asks for
    check = subprocess.run(
        [sys.executable, "-m", "include.policy", "check", str(policy)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert check.returncode == 1 and expected in check.stderr and str(policy) in check.stderr
    assert check.stderr.strip() in bag.get_dag("pdm_gprd").doc_md


def test_unreadable_yaml_keeps_the_known_environments(airflow_db, tmp_path, monkeypatch):
    policy = tmp_path / "policy.yaml"
    policy.write_text("windows: [unclosed\n")
    monkeypatch.setenv("PDM_POLICY_FILE", str(policy))
    bag = _bag()
    assert bag.import_errors == {}
    assert {"pdm_gstg", "pdm_gprd"} <= set(bag.dag_ids)
    assert "not valid YAML" in bag.get_dag("pdm_gstg").description


def test_check_accepts_the_shipped_policies():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "include.policy",
            "check",
            str(GOOD_POLICY),
            str(GOOD_POLICY.parent / "policy.local.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (") == 2


@pytest.mark.e2e
def test_a_run_fails_closed_with_the_policy_error_and_recovers_when_fixed(
    airflow_db, postgres_database, tmp_path, monkeypatch
):
    """Real `dag.test()`: the run fails once (no retry) with the policy's message, recorded as its outcome;
    after the fix the DAG file declares the full flow again."""
    from include.audit import AuditStore, AuditTarget

    audit = AuditStore(AuditTarget.from_uri(postgres_database))
    audit.migrate()
    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", postgres_database)
    policy = _broken_policy(tmp_path, lambda p: p["windows"]["weekend"].update(start="25:00"))
    monkeypatch.setenv("PDM_POLICY_FILE", str(policy))
    run = _bag(DAGS).get_dag("pdm_gprd").test()
    assert str(run.state).endswith("failed")
    (outcome,) = audit.events(run_id=run.run_id, kind="outcome")
    assert outcome.payload["outcome"] == "policy_invalid"
    assert "windows.weekend.start" in outcome.payload["reason"]
    (failed,) = audit.events(run_id=run.run_id, kind="task_failed")
    assert failed.payload["task_id"] == "policy_invalid"
    assert "policy invalid" in failed.payload["error"] and "windows.weekend.start" in failed.payload["error"]
    fixed = tmp_path / "fixed-policy.yaml"
    fixed.write_text(GOOD_POLICY.read_text())
    monkeypatch.setenv("PDM_POLICY_FILE", str(fixed))
    recovered = _bag().get_dag("pdm_gprd")
    assert "POLICY INVALID" not in (recovered.description or "")
    assert {"discover_pending", "gate_window", "record_outcome"} <= set(recovered.task_ids)
