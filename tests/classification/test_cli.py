"""The command line, run as a real subprocess: formats, --fail-on exit codes, usage errors, --git-range, --jobs."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from include.classification.result import RESULT_KEYS
from tests.classification.expectations import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
POST_MIGRATE = FIXTURES / "db" / "post_migrate"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}")
    return subprocess.run(
        [sys.executable, "-m", "include.classification", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=120,
    )


def fixture(name_part: str) -> str:
    (match,) = [p for p in POST_MIGRATE.glob("*.rb") if name_part in p.name]
    return str(match)


def test_jsonl_prints_one_object_per_migration_with_exactly_the_fields():
    done = run(str(POST_MIGRATE), "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(list(POST_MIGRATE.glob("*.rb")))
    for line in lines:
        assert tuple(json.loads(line)) == RESULT_KEYS


def test_json_is_a_list_and_csv_has_one_row_per_migration():
    files = [fixture("drop_ci_legacy_trace_sections"), fixture("queue_backfill_work_item_parent_links")]
    as_json = json.loads(run(*files, "--format", "json").stdout)
    assert [r["class"] for r in as_json] == ["cleanup", "background"]
    rows = list(csv.DictReader(io.StringIO(run(*files, "--format", "csv").stdout)))
    assert [r["class"] for r in rows] == ["cleanup", "background"]
    assert list(rows[0]) == list(RESULT_KEYS)
    assert json.loads(rows[0]["operations"])[0]["helper"] == "drop_table"


def test_table_has_aligned_rows_and_a_per_class_summary():
    done = run(str(FIXTURES / "db"), str(FIXTURES / "ee"))
    assert done.returncode == 0
    out = done.stdout
    assert out.splitlines()[0].split()[:4] == ["VERSION", "CLASS", "DATABASE", "TABLE"]
    assert "migrations" in out and "  cleanup " in out and "  background " in out
    assert "Annotation conflicts:" in out
    assert "(* class decided by a `# pdm:` annotation)" in out


@pytest.mark.parametrize(
    ("fail_on", "status"),
    [("schema_heavy", 1), ("cleanup", 0), ("unknown", 0), ("background", 1), ("noop", 1)],
)
def test_fail_on_exit_codes(fail_on, status):
    done = run(
        fixture("add_index_on_deployments_environment_status"), "--fail-on", fail_on, "--format", "jsonl"
    )
    assert done.returncode == status, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give PATH"),
        (["--fail-on", "heavy", "x.rb"], "unknown migration class 'heavy'"),
        (["--format", "xml", "x.rb"], "invalid choice: 'xml'"),
        (["--jobs", "0", "x.rb"], "must be at least 1"),
        (["--target", "mars", "x.rb"], "invalid choice: 'mars'"),
        (["does/not/exist.rb"], "does/not/exist.rb: no such file or directory"),
        (["--catalogue", "nowhere.yaml", "x.rb"], "nowhere.yaml: cannot read"),
        (["--git-range", "main", "--repo", "."], "expected A..B"),
        (["--git-range", "a..b", "x.rb"], "not both"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(args, message):
    done = run(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_a_bad_catalogue_file_is_a_usage_error_naming_the_key(tmp_path):
    bad = tmp_path / "catalogue.yaml"
    bad.write_text("helpers:\n  add_index: {class: weekendish, rationale: x}\n")
    done = run("--catalogue", str(bad), str(POST_MIGRATE))
    assert done.returncode == 2
    assert "catalogue.yaml: helpers.add_index: unknown migration class 'weekendish'" in done.stderr


def test_target_and_tables_options(tmp_path):
    path = fixture("remove_orphaned_runner_tags_self_managed")
    assert json.loads(run(path, "--format", "jsonl").stdout)["class"] == "noop"
    assert json.loads(run(path, "--format", "jsonl", "--target", "self_managed").stdout)["class"] == "data"
    tables = tmp_path / "tables.yaml"
    tables.write_text("over_limit: [ci_runner_taggings]\n")
    escalated = json.loads(
        run(path, "--format", "jsonl", "--target", "self_managed", "--tables", str(tables)).stdout
    )
    assert (escalated["class"], escalated["table_size"]) == ("schema_heavy", "over_limit")


def test_jobs_gives_the_same_results_in_the_same_order():
    one = run(str(FIXTURES), "--format", "jsonl")
    two = run(str(FIXTURES), "--format", "jsonl", "--jobs", "2")
    assert one.returncode == two.returncode == 0
    assert one.stdout == two.stdout


# -- --git-range on a tiny repository ------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
    )
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "gitlab"
    (repo / "db" / "post_migrate").mkdir(parents=True)
    (repo / "ee" / "db" / "post_migrate").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "master")
    shutil.copy(fixture("drop_ci_legacy_trace_sections"), repo / "db" / "post_migrate")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "old")
    git(repo, "tag", "deployed")
    shutil.copy(fixture("queue_backfill_work_item_parent_links"), repo / "db" / "post_migrate")
    shutil.copy(
        FIXTURES / "ee/db/post_migrate/20260115130000_add_index_to_security_findings_uuid.rb",
        repo / "ee" / "db" / "post_migrate",
    )
    (repo / "db" / "post_migrate" / "README.md").write_text("not a migration")
    (repo / "db" / "migrate").mkdir()
    shutil.copy(fixture("remove_unused_index_on_todos"), repo / "db" / "migrate")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "new")
    return repo


def test_git_range_classifies_post_deploy_migrations_added_in_the_range(repo: Path):
    done = run("--git-range", "deployed..HEAD", "--repo", str(repo), "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["path"], r["class"]) for r in results] == [
        ("db/post_migrate/20260105101500_queue_backfill_work_item_parent_links.rb", "background"),
        ("ee/db/post_migrate/20260115130000_add_index_to_security_findings_uuid.rb", "schema_heavy"),
    ]
    failing = run("--git-range", "deployed..HEAD", "--repo", str(repo), "--fail-on", "schema_heavy")
    assert failing.returncode == 1


def test_git_range_errors_are_usage_errors(repo: Path, tmp_path: Path):
    unknown_ref = run("--git-range", "deployed..nope", "--repo", str(repo))
    assert unknown_ref.returncode == 2 and "'nope' is not a commit" in unknown_ref.stderr
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    done = run("--git-range", "a..b", "--repo", str(not_a_repo))
    assert done.returncode == 2 and "not a git checkout" in done.stderr
