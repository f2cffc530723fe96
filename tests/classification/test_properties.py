"""Properties: adding operations never makes a migration lighter; no input makes the engine raise."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.classification import MigrationClass, classify_source

PATH = "db/post_migrate/20260121000000_property_probe.rb"
HEADER = (
    "class PropertyProbe < Gitlab::Database::Migration[2.3]\n"
    "  TABLE = :issues\n"
    "  INDEX = 'index_probe'\n"
    "  class Thing < MigrationRecord\n    self.table_name = 'things'\n  end\n\n"
    "  def up\n"
)
FOOTER = "  end\n\n  def down; end\n\n  def helper_that_drops\n    drop_table :legacy_things\n  end\nend\n"

# Statements of every family; none of them returns early, so every one is reachable in any order.
STATEMENTS = [
    "    queue_batched_background_migration('Backfill', :things, :id)",
    "    prepare_async_index :things, :state, name: INDEX",
    "    Rails.cache.delete('a-key')",
    "    say 'hello'",
    "    # a comment",
    "    ensure_batched_background_migration_is_finished(job_class_name: 'X', table_name: :things, column_name: :id, job_arguments: [])",
    "    update_column_in_batches(TABLE, :state, 1)",
    "    Thing.where(state: nil).each_batch { |batch| batch.update_all(state: 1) }",
    "    execute('UPDATE things SET state = 1')",
    "    execute <<~SQL\n      DELETE FROM things WHERE id < 5\n    SQL",
    "    add_concurrent_index :things, :state, name: INDEX",
    "    add_check_constraint :things, 'state > 0', 'check_state', validate: false",
    "    with_lock_retries { add_column :things, :note, :text }",
    "    remove_column :things, :note",
    "    remove_concurrent_index_by_name :things, INDEX",
    "    helper_that_drops",
    "    if Feature.enabled?(:flag)\n      drop_table :other_things\n    end",
    "    Projects::SomeService.new.execute",
    "    send(:drop_table, :x)",
    "    return if Gitlab.dev_or_test_env?",
    "    [1, 2].each { |i| truncate_tables!('things') if i > 1 }",
]


def classify(statements: list[str]) -> MigrationClass:
    return classify_source(HEADER + "\n".join(statements) + "\n" + FOOTER, PATH).migration_class


ALONE = {statement: classify([statement]) for statement in STATEMENTS}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=8))
def test_concatenating_operations_never_yields_a_lighter_class(statements):
    combined = classify(statements)
    for statement in statements:
        assert combined >= ALONE[statement], (statements, statement)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_a_result_never_an_exception(data):
    result = classify_source(data, PATH)
    assert result.migration_class is MigrationClass.UNKNOWN or data.strip()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=5), st.integers(min_value=0, max_value=400))
def test_truncated_migrations_never_raise(statements, cut):
    text = HEADER + "\n".join(statements) + "\n" + FOOTER
    result = classify_source(text[: len(text) - cut], PATH)
    assert result.migration_class in MigrationClass
