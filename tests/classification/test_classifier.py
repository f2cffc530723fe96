"""The classifier on project-written migrations: every helper family, tricky shapes, fail-safe cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.classification import ClassifierConfig, MigrationClass, classify_source
from include.classification.engine import load_catalogue

C = MigrationClass
CATALOGUE = load_catalogue(ClassifierConfig().catalogue_path)


def migration(body: str, name: str = "do_things", header: str = "", down: str = "") -> tuple[str, str]:
    class_name = "".join(p.capitalize() for p in name.split("_"))
    source = f"""# frozen_string_literal: true

class {class_name} < Gitlab::Database::Migration[2.2]
  milestone '17.6'
{header}
  def up
{body}
  end

  def down
{down or "    # no-op"}
  end
end
"""
    return source, f"db/post_migrate/20261120000000_{name}.rb"


def classify(body: str, **kwargs):
    config = kwargs.pop("config", None)
    source, path = migration(body, **kwargs)
    return classify_source(source, path, config=config)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("    queue_batched_background_migration('Backfill', :merge_request_reviewers, :id)", C.BACKGROUND),
        ("    prepare_async_index :merge_request_reviewers, :state, name: 'idx'", C.BACKGROUND),
        ("    prepare_async_foreign_key_validation :merge_request_reviewers, name: 'fk'", C.BACKGROUND),
        ("    ::Ci::RefreshWorker.perform_async(1)", C.BACKGROUND),
        ("    backfill_conversion_of_integer_to_bigint :ci_build_needs, :id", C.BACKGROUND),
        (
            "    ensure_batched_background_migration_is_finished(job_class_name: 'X', table_name: :reviewers, column_name: :id, job_arguments: [])",
            C.DATA,
        ),
        (
            "    finalize_batched_background_migration(job_class_name: 'X', table_name: :reviewers, column_name: :id, job_arguments: [])",
            C.DATA,
        ),
        ("    update_column_in_batches(:reviewers, :state, 0)", C.DATA),
        ("    add_concurrent_index :merge_request_reviewers, :state, name: 'idx'", C.SCHEMA_HEAVY),
        ("    add_concurrent_foreign_key :reviewers, :users, column: :user_id", C.SCHEMA_HEAVY),
        ("    validate_foreign_key :reviewers, :user_id", C.SCHEMA_HEAVY),
        ("    add_check_constraint :reviewers, 'state > 0', 'check_state', validate: false", C.SCHEMA_HEAVY),
        ("    add_text_limit :reviewers, :note, 255", C.SCHEMA_HEAVY),
        ("    add_column :reviewers, :note, :text", C.SCHEMA_HEAVY),
        ("    remove_column :reviewers, :note", C.CLEANUP),
        ("    drop_table :old_reviewers", C.CLEANUP),
        ("    remove_concurrent_index_by_name :reviewers, 'idx'", C.CLEANUP),
        ("    cleanup_concurrent_column_rename :reviewers, :old, :new", C.CLEANUP),
        ("    truncate_tables!('old_reviewers')", C.CLEANUP),
        ("    execute('UPDATE reviewers SET state = 0 WHERE state IS NULL')", C.DATA),
        ("    execute('CREATE INDEX CONCURRENTLY idx ON reviewers (state)')", C.SCHEMA_HEAVY),
        ("    execute('DROP INDEX CONCURRENTLY IF EXISTS idx')", C.CLEANUP),
        ("    execute('SELECT 1')", C.NOOP),
        ('    connection.execute("DELETE FROM reviewers WHERE id = #{ID}")', C.DATA),
        ("    execute <<~SQL\n      ALTER TABLE reviewers DROP COLUMN note;\n    SQL", C.CLEANUP),
        ("    # nothing to do on .com", C.NOOP),
        ("", C.NOOP),
        ("    Rails.cache.delete('some-key')", C.NOOP),
        ("    ApplicationSetting.update_all(check_namespace_plan: true)", C.DATA),
        ("    Projects::RefreshService.new.execute", C.UNKNOWN),
        ("    send(:dynamic_method)", C.UNKNOWN),
        ("    Gitlab::BackgroundMigration.steal('CopyColumn')", C.DATA),
        ("    Gitlab::BackgroundMigration.steal('CopyColumn') { |job| job.delete }", C.BACKGROUND),
    ],
)
def test_helper_families(body, expected):
    result = classify(body)
    assert result.migration_class is expected, result.reasons


def test_most_restrictive_wins_and_blocks_are_walked():
    result = classify(
        """    with_lock_retries do
      add_column :reviewers, :note, :text
    end
    queue_batched_background_migration('X', :reviewers, :id)
    [1, 2].each do |i|
      remove_column :reviewers, :legacy if i == 2
    end"""
    )
    assert result.migration_class is C.CLEANUP
    assert [op.helper for op in result.operations] == [
        "add_column",
        "queue_batched_background_migration",
        "remove_column",
    ]


def test_private_helpers_and_constants_are_followed():
    source = """class FollowHelpers < Gitlab::Database::Migration[2.2]
  TABLE = :ci_builds
  INDEX = 'index_ci_builds_on_state'

  def up
    build_index
  end

  private

  def build_index
    add_concurrent_index TABLE, :state, name: INDEX
  end
end
"""
    result = classify_source(source, "db/post_migrate/20261120000000_follow_helpers.rb")
    assert result.migration_class is C.SCHEMA_HEAVY
    assert result.operations[0].table == "ci_builds" and result.table_size == "over_limit"


def test_large_table_escalates_data_work():
    result = classify("    update_column_in_batches(:ci_builds, :state, 0)")
    assert result.migration_class is C.SCHEMA_HEAVY
    assert any("over-limit" in r for r in result.reasons)
    assert classify("    update_column_in_batches(:tiny_settings, :state, 0)").migration_class is C.DATA


def test_down_does_not_count():
    assert (
        classify(
            "    queue_batched_background_migration('X', :t, :id)", down="    drop_table :t"
        ).migration_class
        is C.BACKGROUND
    )


def test_dev_only_guards_are_noop_on_gitlab_com_but_not_self_managed():
    body = "    return unless Gitlab.dev_or_test_env?\n\n    drop_table :old_reviewers"
    assert classify(body).migration_class is C.NOOP
    body = "    return unless Gitlab.com?\n\n    drop_table :old_reviewers"
    assert classify(body).migration_class is C.CLEANUP
    assert classify(body, config=ClassifierConfig(target="self_managed")).migration_class is C.NOOP
    conditional = "    if Gitlab.com?\n      remove_column :reviewers, :legacy\n    end"
    assert classify(conditional, config=ClassifierConfig(target="self_managed")).migration_class is C.NOOP
    unknown_condition = "    if some_flag?\n      remove_column :reviewers, :legacy\n    end"
    assert (
        classify(unknown_condition).migration_class is C.UNKNOWN
    )  # some_flag? is unknown; both branches count


def test_temporary_index_created_and_dropped_is_cleanup():
    body = """    add_concurrent_index :reviewers, :state, name: 'tmp_idx'
    update_column_in_batches(:reviewers, :state, 0)
    remove_concurrent_index_by_name :reviewers, 'tmp_idx'"""
    assert classify(body).migration_class is C.CLEANUP


def test_database_and_milestone_and_flags():
    result = classify(
        "    queue_batched_background_migration('X', :t, :id)",
        header="  restrict_gitlab_migration gitlab_schema: :gitlab_ci\n  disable_ddl_transaction!",
    )
    assert (result.database, result.milestone, result.ddl_transaction_disabled) == ("ci", "17.6", True)
    assert classify("    add_column :t, :c, :text").database == "all"


def test_annotations_and_conflicts():
    source, path = migration("    queue_batched_background_migration('X', :t, :id)")
    stricter = classify_source('# pdm: class=schema_heavy reason="heavy Sidekiq load"\n' + source, path)
    assert stricter.migration_class is C.SCHEMA_HEAVY and stricter.annotated and not stricter.conflicts
    source, path = migration("    remove_column :t, :c")
    lighter = classify_source('# pdm: class=background reason="tiny table"\n' + source, path)
    assert lighter.migration_class is C.CLEANUP and not lighter.annotated
    assert "stricter class cleanup is used" in lighter.conflicts[0]


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        (b"", "empty file"),
        (
            b"class Broken < Gitlab::Database::Migration[2.2]\n  def up\n    add_column(:t\n  end\nend\n",
            "syntax error",
        ),
        (b"\x00\x01binary", "binary"),
        (b"<<<<<<< HEAD\nclass X\n=======\nclass Y\n>>>>>>> branch\n", "merge-conflict"),
        (
            b"class Other < Gitlab::Database::Migration[2.2]\n  def up\n  end\nend\n",
            "does not match the file name",
        ),
        (
            b"class DoThings < Gitlab::Database::Migration[2.2]\n  def down\n  end\nend\n",
            "no `up` or `change`",
        ),
        (b"x = 1\n" * 100_000, "over the"),
    ],
)
def test_bad_files_are_unknown_with_a_reason(source, fragment):
    result = classify_source(source, "db/post_migrate/20261120000000_do_things.rb")
    assert result.migration_class is C.UNKNOWN
    assert fragment in " ".join(result.reasons)


def test_ee_paths_and_result_fields():
    source, _ = migration("    add_column :t, :c, :text")
    result = classify_source(source, "ee/db/post_migrate/20261120000000_do_things.rb")
    assert set(result.to_dict()) == {
        "path",
        "version",
        "name",
        "class",
        "database",
        "milestone",
        "operations",
        "reasons",
        "annotated",
        "conflicts",
        "table_size",
    }
    assert result.version == "20261120000000" and result.operations[0].line == 7


@pytest.mark.parametrize("helper", sorted(CATALOGUE.helpers))
def test_every_catalogue_helper_is_classified_as_catalogued(helper):
    entry = CATALOGUE.helpers[helper]
    call = (
        f"    {helper} :small_table, :col"
        if entry["table_arg"] is not None
        else f"    Thing.where(a: 1).{helper}(:x)"
    )
    if helper in ("say", "puts"):
        call = f"    {helper} 'hello'"
    result = classify(call)
    assert entry["class"] in {op.cls for op in result.operations}, (helper, result.reasons)


OPERATIONS = {
    "    queue_batched_background_migration('X', :t, :id)": C.BACKGROUND,
    "    update_column_in_batches(:t, :c, 0)": C.DATA,
    "    add_concurrent_index :t, :c, name: 'i'": C.SCHEMA_HEAVY,
    "    remove_column :t, :c": C.CLEANUP,
    "    say 'hi'": C.NOOP,
    "    Unknown::Service.new.execute": C.UNKNOWN,
}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(sorted(OPERATIONS)), min_size=1, max_size=6))
def test_concatenating_operations_never_lightens_the_class(lines):
    result = classify("\n".join(lines))
    assert result.migration_class >= max(OPERATIONS[line] for line in lines)


def test_cli_formats_and_fail_on(tmp_path):
    for name, body in (
        ("queue_things", "    queue_batched_background_migration('X', :t, :id)"),
        ("drop_things", "    drop_table :t"),
    ):
        source, path = migration(body, name=name)
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source)

    def run(*a):
        return subprocess.run(
            [sys.executable, "-m", "include.classification", *a], capture_output=True, text=True
        )

    jsonl = run(str(tmp_path), "--format", "jsonl")
    assert jsonl.returncode == 0
    assert sorted(json.loads(line)["class"] for line in jsonl.stdout.splitlines()) == [
        "background",
        "cleanup",
    ]
    assert "2 migrations" in run(str(tmp_path)).stdout
    assert run(str(tmp_path), "--format", "csv").stdout.startswith("path,")
    assert run(str(tmp_path), "--fail-on", "schema_heavy").returncode == 1
    assert (
        run(str(tmp_path / "db/post_migrate/20261120000000_queue_things.rb"), "--fail-on", "data").returncode
        == 0
    )
    usage = run("--fail-on", "severe", str(tmp_path))
    assert usage.returncode == 2 and "unknown migration class" in usage.stderr
    assert run(str(tmp_path), "--jobs", "2", "--format", "jsonl").stdout.count("\n") == 2


def test_cli_git_range(tmp_path):
    repo = tmp_path / "gitlab"
    (repo / "db/post_migrate").mkdir(parents=True)
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (repo / "README").write_text("x")
    git("add", ".")
    git("commit", "-qm", "base")
    source, path = migration("    add_concurrent_index :t, :c, name: 'i'", name="add_index_things")
    (repo / path).write_text(source)
    git("add", ".")
    git("commit", "-qm", "pdm")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "include.classification",
            "--git-range",
            "HEAD~1..HEAD",
            "--repo",
            str(repo),
            "--format",
            "jsonl",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["class"] == "schema_heavy"
    assert Path(json.loads(result.stdout)["path"]).name.endswith("add_index_things.rb")
