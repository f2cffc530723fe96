"""A bad policy never half-loads: the environment DAG file becomes an import error that names the policy file,
the key path and the problem, which is what the Airflow UI shows on its import-errors banner."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = PROJECT_ROOT / "dags" / "pdm_environments.py"


def _broken_policy(tmp_path: Path, mutate) -> Path:
    policy = yaml.safe_load((PROJECT_ROOT / "config" / "policy.yaml").read_text())
    mutate(policy)
    path = tmp_path / "broken-policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


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
def test_a_bad_policy_is_an_import_error_naming_file_and_key(
    airflow_db, tmp_path, monkeypatch, mutate, expected
):
    from airflow.dag_processing.dagbag import DagBag

    policy = _broken_policy(tmp_path, mutate)
    monkeypatch.setenv("PDM_POLICY_FILE", str(policy))
    bag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False)
    assert not bag.dag_ids, "no DAG may be built from a policy that failed validation"
    (message,) = bag.import_errors.values()
    assert str(policy) in message and expected in message
