"""The public interface: result shape, fail-safe handling of bad files, and the finer points of product §3."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from include.classification import (
    ClassificationResult,
    ClassifierConfig,
    MigrationClass,
    Operation,
    classify_path,
    classify_source,
    most_restrictive,
)
from include.classification.result import RESULT_KEYS
from tests.classification.expectations import FIXTURES, fixture_files, read_expectation

C = MigrationClass
PATH = "db/post_migrate/20260120000000_probe_migration.rb"


def source(body: str, before: str = "") -> str:
    return (
        f"class ProbeMigration < Gitlab::Database::Migration[2.3]\n{before}\n  def up\n{body}\n  end\nend\n"
    )


def test_result_dict_has_exactly_the_documented_keys_and_round_trips():
    path = FIXTURES / "db/post_migrate/20260112100300_mixed_operations_strictest_wins.rb"
    result = classify_path(path)
    data = result.to_dict()
    assert tuple(data) == RESULT_KEYS
    assert set(data["operations"][0]) == {"helper", "table", "line", "class", "rationale"}
    assert json.loads(json.dumps(data)) == data
    again = ClassificationResult.from_dict(json.loads(json.dumps(data)))
    assert again.to_dict() == data
    assert again.migration_class is C.CLEANUP
    assert isinstance(again.operations[0], Operation)


def test_from_dict_names_what_is_missing():
    with pytest.raises(KeyError, match="missing path, class"):
        ClassificationResult.from_dict({"version": "1"})
    with pytest.raises(ValueError, match="unknown migration class 'heavy'"):
        ClassificationResult.from_dict({"path": "x.rb", "class": "heavy"})


def test_declarations_are_read():
    text = source(
        "    add_column :ci_runner_taggings, :x, :text",
        "  milestone '17.5'\n  disable_ddl_transaction!\n  enable_lock_retries!\n"
        "  restrict_gitlab_migration gitlab_schema: :gitlab_ci\n",
    )
    result = classify_source(text, PATH)
    assert (result.milestone, result.database) == ("17.5", "ci")
    assert result.ddl_transaction is False and result.lock_retries is True
    assert (result.version, result.name) == ("20260120000000", "probe_migration")


def test_operations_carry_line_numbers_and_most_restrictive_wins():
    result = classify_source(source("    prepare_async_index :a, :b\n\n    remove_column :a, :b"), PATH)
    assert [(op.helper, op.line, op.cls) for op in result.operations] == [
        ("prepare_async_index", 4, C.BACKGROUND),
        ("remove_column", 6, C.CLEANUP),
    ]
    assert result.migration_class is C.CLEANUP
    assert result.reasons[0].startswith("cleanup: remove_column on a (line 6)")


def test_no_up_method_is_noop_because_rails_runs_nothing():
    text = (
        "class ProbeMigration < Gitlab::Database::Migration[2.3]\n  def down\n    drop_table :x\n  end\nend\n"
    )
    result = classify_source(text, PATH)
    assert result.migration_class is C.NOOP
    assert "no `up` or `change`" in " ".join(result.reasons)


def test_private_helpers_that_call_each_other_do_not_loop():
    text = source(
        "    first",
        "  def first\n    second\n    remove_column :a, :b\n  end\n\n  def second\n    first\n    add_column :a, :c, :text\n  end\n",
    )
    result = classify_source(text, PATH)
    assert result.migration_class is C.CLEANUP
    assert sorted(op.helper for op in result.operations) == ["add_column", "remove_column"]


def test_a_helper_called_with_different_arguments_is_followed_each_time():
    text = source(
        "    drop(:legacy_a)\n    drop(:legacy_b)",
        "  def drop(table)\n    drop_table table\n  end\n",
    )
    result = classify_source(text, PATH)
    assert [op.table for op in result.operations] == ["legacy_a", "legacy_b"]


def test_helper_arguments_resolve_to_the_callers_values():
    text = source(
        "    cleanup(TABLE)",
        '  TABLE = :ci_builds\n\n  def cleanup(table)\n    execute("DELETE FROM #{table} WHERE id < 10")\n  end\n',
    )
    result = classify_source(text, PATH)
    assert result.operations[0].table == "ci_builds"
    assert result.migration_class is C.SCHEMA_HEAVY  # data on an over-limit table
    assert result.table_size == "over_limit"


def test_constants_chain_and_freeze():
    text = source("    remove_column TABLE, :x", "  BASE = 'ci_pipelines'.freeze\n  TABLE = BASE\n")
    assert classify_source(text, PATH).operations[0].table == "ci_pipelines"


def test_sql_in_a_constant_heredoc_and_a_local_variable():
    text = source(
        "    sql = <<~SQL\n      DELETE FROM todos WHERE state = 'done'\n    SQL\n    execute(sql)\n    execute(CLEANUP_SQL)",
        "  CLEANUP_SQL = <<~SQL.squish\n    DROP INDEX IF EXISTS idx_todos_legacy\n  SQL\n",
    )
    result = classify_source(text, PATH)
    assert [(op.helper, op.cls) for op in result.operations] == [
        ("execute (DELETE)", C.SCHEMA_HEAVY),
        ("execute (DROP INDEX)", C.CLEANUP),
    ]


def test_heredoc_with_interpolation_of_unknown_values_keeps_its_kind():
    text = source("    execute <<~SQL\n      UPDATE #{quote_table_name(table)} SET a = 1\n    SQL")
    result = classify_source(text, PATH)
    assert result.migration_class is C.DATA
    assert result.operations[0].table is None


def test_two_heredocs_in_one_statement_are_matched_in_order():
    text = source("    execute(<<~ONE, <<~TWO)\n      DROP TABLE a\n    ONE\n      SELECT 1\n    TWO")
    assert classify_source(text, PATH).migration_class is C.CLEANUP


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"   \n\n", "empty file"),
        (b"class ProbeMigration < Gitlab::Database::Migration[2.3]\x00\x01", "binary file"),
        (
            b"# \xff\xfe not utf-8\nclass ProbeMigration < Gitlab::Database::Migration[2.3]; end\n",
            "not UTF-8",
        ),
        (
            b"class ProbeMigration < Gitlab::Database::Migration[2.3]\n  def up\n    foo(\n  end\nend\n",
            "syntax error",
        ),
        (b"<<<<<<< HEAD\nclass ProbeMigration\n=======\n>>>>>>> x\n", "merge-conflict marker at line 1"),
        (b"# only a comment\n", "no migration class"),
        (b"class OtherName < Gitlab::Database::Migration[2.3]\nend\n", "does not match the file name"),
    ],
)
def test_files_rails_could_not_load_are_unknown_with_the_reason(data, reason):
    result = classify_source(data, PATH)
    assert result.migration_class is C.UNKNOWN
    assert reason in result.reasons[0]
    assert result.database == "unknown"


def test_acronym_inflections_do_not_count_as_a_name_mismatch():
    text = "class AddIndexToCiJobArtifactsForEE < Gitlab::Database::Migration[2.3]\n  def up; end\nend\n"
    result = classify_source(
        text, "ee/db/post_migrate/20260120000000_add_index_to_ci_job_artifacts_for_ee.rb"
    )
    assert result.migration_class is C.NOOP


def test_huge_files_are_not_parsed(tmp_path):
    path = tmp_path / "20260120000000_probe_migration.rb"
    path.write_text(source("    # " + "x" * 100 + "\n" * 10) + "#" * 300_000)
    result = classify_path(path)
    assert result.migration_class is C.UNKNOWN
    assert "byte limit" in result.reasons[0]
    small = classify_path(path, config=ClassifierConfig(max_bytes=10_000_000))
    assert small.migration_class is C.NOOP


def test_unreadable_path_is_unknown(tmp_path):
    result = classify_path(tmp_path / "20260120000000_missing.rb")
    assert result.migration_class is C.UNKNOWN
    assert "cannot read the file" in result.reasons[0]


def test_broken_fixtures_are_unknown():
    for path in fixture_files("broken"):
        result = classify_path(path)
        expected = read_expectation(path)
        assert result.migration_class is C.UNKNOWN, path
        assert any(text in r for text in expected.reasons for r in result.reasons), (path, result.reasons)


def test_deep_nesting_is_a_result_not_an_exception():
    body = "    " + "[" * 3000 + "]" * 3000
    result = classify_source(source(body), PATH)
    assert isinstance(result, ClassificationResult)


def test_the_parser_is_created_lazily_not_at_import():
    code = (
        "import include.classification as c, include.classification.tree as e\n"
        "assert e._PARSER is None\n"
        "c.classify_source('class X < Gitlab::Database::Migration[2.3]; end', '20260101000000_x.rb')\n"
        "assert e._PARSER is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_most_restrictive_order():
    assert most_restrictive([]) is C.NOOP
    assert most_restrictive([C.DATA, C.BACKGROUND]) is C.DATA
    assert most_restrictive([C.CLEANUP, C.UNKNOWN, C.SCHEMA_HEAVY]) is C.UNKNOWN


def test_str_and_bytes_sources_agree():
    text = source("    remove_column :a, :b")
    assert classify_source(text, PATH).to_dict() == classify_source(text.encode(), PATH).to_dict()


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("    build = Thing.first\n    say build.runner", C.NOOP),
        ("    build = Thing.first\n    say build.updated_at", C.NOOP),
        ("    build = Thing.first\n    say build.start_date", C.NOOP),
        ("    build = Thing.first\n    say build.archived?", C.NOOP),
        ("    build = Thing.first\n    build.expire_cache", C.UNKNOWN),
        ("    build = Thing.first\n    build.refresh!", C.UNKNOWN),
        ("    build = Thing.first\n    build.project.repository.run", C.UNKNOWN),
    ],
)
def test_reading_a_record_is_harmless_acting_on_it_is_not(statement, expected):
    model = "  class Thing < MigrationRecord\n    self.table_name = 'things'\n  end\n"
    assert classify_source(source(statement, model), PATH).migration_class is expected
