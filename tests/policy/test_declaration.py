"""The DAG file's policy declaration: the facts it declares from, validated in full once per content (issue 18).

The declaration is what `dags/pdm_environments.py` reads at every parse. These tests hold it to the full
loader: same facts, same error for an invalid file, never a stale verdict after the text changes, and a
damaged cache file ignored. One test checks, in a fresh interpreter, that a warm parse does not import the
loader or the holidays package (what made parsing cost 6× the stock-parts floor).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.classification.classes import MigrationClass
from include.policy import PolicyError, load_policy
from include.policy.declaration import declaration_of, load_declaration
from include.policy.holiday_codes import calendar_problem

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "policy.yaml"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("PDM_CACHE_DIR", str(directory))
    return directory


def _copy(tmp_path: Path, text: str | None = None) -> Path:
    target = tmp_path / "policy.yaml"
    target.write_text(text if text is not None else SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    return target


def test_the_declaration_holds_the_facts_of_the_full_policy(tmp_path, cache_dir):
    path = _copy(tmp_path)
    policy = load_policy(path)
    declared = load_declaration(path)
    assert declared == declaration_of(policy)
    assert [env.name for env in declared.environments] == list(policy.environments)
    gprd = declared.environment("gprd")
    assert gprd.db_environment == policy.environments["gprd"].db_environment
    assert gprd.max_wait == policy.for_environment("gprd").gates.max_wait
    assert declared.approval_timeout == policy.approval.timeout
    automatic = [
        c.value for c in MigrationClass if policy.class_rule(c).automatic and policy.class_rule(c).windows
    ]
    assert [cls for cls, _ in gprd.class_windows] == automatic
    assert len(list((cache_dir / "policy-declarations").glob("*.json"))) == 1


def test_a_second_load_reads_the_cache_file(tmp_path, cache_dir):
    path = _copy(tmp_path)
    first = load_declaration(path)
    (cached,) = (cache_dir / "policy-declarations").glob("*.json")
    data = json.loads(cached.read_text(encoding="utf-8"))
    data["execution_mode"] = "marker-from-the-cache"
    cached.write_text(json.dumps(data), encoding="utf-8")
    assert load_declaration(path).execution_mode == "marker-from-the-cache"
    assert first.execution_mode != "marker-from-the-cache"


def test_an_invalid_policy_raises_the_loaders_error_and_is_never_cached(tmp_path, cache_dir):
    path = _copy(
        tmp_path, SHIPPED.read_text(encoding="utf-8").replace("execution_mode:", "execution_mod:", 1)
    )
    with pytest.raises(PolicyError) as from_loader:
        load_policy(path)
    with pytest.raises(PolicyError) as from_declaration:
        load_declaration(path)
    assert str(from_declaration.value) == str(from_loader.value)
    assert not list(cache_dir.glob("policy-declarations/*.json"))


def test_a_changed_text_is_validated_again(tmp_path):
    path = _copy(tmp_path)
    load_declaration(path)
    path.write_text(path.read_text(encoding="utf-8") + "\nunknown_top_level_key: 1\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="unknown_top_level_key"):
        load_declaration(path)


def test_a_damaged_cache_file_is_ignored(tmp_path, cache_dir):
    path = _copy(tmp_path)
    expected = load_declaration(path)
    (cached,) = (cache_dir / "policy-declarations").glob("*.json")
    for damage in ("{not json", json.dumps({"format": 999}), json.dumps([1, 2])):
        cached.write_text(damage, encoding="utf-8")
        assert load_declaration(path) == expected


def test_an_unreadable_file_says_so(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_declaration(tmp_path / "missing.yaml")


def test_holiday_verdicts_are_the_packages_and_kept_on_disk(cache_dir):
    assert calendar_problem("US") is None
    assert calendar_problem("US-CA") is None
    assert "no public holiday calendar for 'XX'" in (calendar_problem("XX") or "")
    (stored,) = cache_dir.glob("holiday-codes-*.json")
    verdicts = json.loads(stored.read_text(encoding="utf-8"))
    assert verdicts["US-CA"] is None and verdicts["XX"].startswith("no public holiday calendar")


def test_a_warm_parse_imports_neither_the_loader_nor_the_holidays_package(tmp_path, cache_dir):
    path = _copy(tmp_path)
    load_declaration(path)  # the parse before: validates and writes the file
    probe = (
        "import sys\n"
        "from include.policy.declaration import load_declaration\n"
        f"load_declaration({str(path)!r})\n"
        "print(sorted(m for m in sys.modules if m.startswith(('include.policy.loader', 'holidays'))))\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
