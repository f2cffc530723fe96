"""The catalogue is the whole vocabulary: every entry is exercised, and a malformed file is a precise error."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.classification import CatalogueError, ClassifierConfig, MigrationClass, classify_source
from include.classification.config import load_catalogue, load_tables

CATALOGUE = load_catalogue(ClassifierConfig().catalogue_path)
C = MigrationClass


def migration(body: str, *, before: str = "", name: str = "catalogue_probe") -> tuple[str, str]:
    class_name = "".join(part.capitalize() for part in name.split("_"))
    source = (
        "# frozen_string_literal: true\n\n"
        f"class {class_name} < Gitlab::Database::Migration[2.3]\n"
        "  milestone '18.8'\n"
        f"{before}\n"
        "  def up\n"
        f"{body}\n"
        "  end\n\n"
        "  def down; end\n"
        "end\n"
    )
    return source, f"db/post_migrate/20260120000000_{name}.rb"


def classify(body: str, **kwargs):
    source, path = migration(body, **kwargs)
    return classify_source(source, path)


def helper_call(name: str, table_spec: tuple) -> str:
    """A minimal call of a catalogue helper that names `cov_table` where the entry says the table is."""
    first = table_spec[0] if table_spec else None
    if isinstance(first, int):
        positional = [":other_thing"] * first + [":cov_table", ":some_column"]
        return f"    {name}({', '.join(positional)}, name: 'cov_index')"
    if isinstance(first, str):
        return f"    {name}(job_class_name: 'X', {first}: :cov_table, column_name: :id, job_arguments: [])"
    return f"    {name}('CovArgument', :cov_argument)"


@pytest.mark.parametrize("name", sorted(CATALOGUE.helpers))
def test_every_helper_has_its_catalogue_class_and_table(name):
    rule = CATALOGUE.helpers[name]
    result = classify(helper_call(name, rule.table))
    assert result.migration_class is rule.cls, result.reasons
    # A helper that locks a second table (a foreign key's referenced one) reports it as a second operation.
    locked = [f"{name} (referenced table)"] if rule.locks and rule.table == (0,) else []
    assert [op.helper for op in result.operations] == [name, *locked]
    if rule.table:
        assert result.operations[0].table == "cov_table"
    assert result.operations[0].rationale == rule.rationale


@pytest.mark.parametrize("name", sorted(CATALOGUE.receiver_methods))
def test_every_receiver_method_is_classified_on_a_model(name):
    rule = CATALOGUE.receiver_methods[name]
    model = "  class CovModel < MigrationRecord\n    self.table_name = 'cov_table'\n  end\n"
    result = classify(f"    CovModel.where(state: 1).{name}(state: 2)", before=model)
    assert result.migration_class is rule.cls, result.reasons
    expected_table = None if rule.cls is C.BACKGROUND else "cov_table"
    assert [(op.table, op.cls) for op in result.operations] == [(expected_table, rule.cls)]


@pytest.mark.parametrize("key", sorted(CATALOGUE.qualified))
def test_every_qualified_call_is_classified(key):
    rule = CATALOGUE.qualified[key]
    receiver, _, method = key.rpartition(".")
    result = classify(f"    {receiver}.{method}(:cov_argument)")
    assert result.migration_class is rule.cls, result.reasons


HELPER_CLASS_METHODS = [
    (constant, method)
    for constant, spec in sorted(CATALOGUE.helper_classes.items())
    for method in sorted(spec.methods)
]


@pytest.mark.parametrize(("constant", "method"), HELPER_CLASS_METHODS)
def test_every_helper_class_method_is_classified_with_the_constructor_table(constant, method):
    spec = CATALOGUE.helper_classes[constant]
    rule = spec.methods[method]
    constructor = sorted(spec.constructors)[0]
    first = spec.table[0] if spec.table else None
    argument = ":cov_table" if isinstance(first, int) or first is None else f"{first}: :cov_table"
    chained = classify(f"    ::{constant}.{constructor}({argument}, connection: connection).{method}(:a, :b)")
    held = classify(f"    helper = {constant}.{constructor}({argument})\n    helper.{method}(:a, :b)")
    for result in (chained, held):
        assert result.migration_class is rule.cls, result.reasons
        assert [(op.helper, op.cls) for op in result.operations] == [(f"{constant}.{method}", rule.cls)]
        if spec.table:
            assert result.operations[0].table == "cov_table"


@pytest.mark.parametrize("constant", sorted(CATALOGUE.helper_classes))
def test_an_unlisted_method_of_a_helper_class_is_unknown_and_named(constant):
    spec = CATALOGUE.helper_classes[constant]
    result = classify(f"    {constant}.{sorted(spec.constructors)[0]}(:cov_table).rewrite_everything")
    assert result.migration_class is C.UNKNOWN
    assert f"{constant}.rewrite_everything" in result.reasons[0]
    assert "add it to helper_classes" in result.reasons[0]


@pytest.mark.parametrize("name", sorted(m for m in CATALOGUE.neutral_methods if not m.endswith("=")))
def test_neutral_methods_add_no_class(name):
    result = classify(f"    value = [1]\n    value.{name}(1)")
    assert result.migration_class is C.NOOP, result.reasons
    assert result.operations == []


@pytest.mark.parametrize("receiver", sorted(CATALOGUE.neutral_receivers))
def test_neutral_receivers_add_no_class(receiver):
    result = classify(f"    {receiver}.anything_at_all(1)")
    assert result.migration_class is C.NOOP, result.reasons


@pytest.mark.parametrize("name", sorted(CATALOGUE.dynamic_methods))
def test_dynamic_calls_are_unknown(name):
    result = classify(f'    {name}("remove_#{{kind}}", :cov_table, :cov_column)')
    assert result.migration_class is C.UNKNOWN
    assert "dynamic call" in result.reasons[0]


@pytest.mark.parametrize("name", ["send", "public_send", "__send__"])
def test_send_with_a_literal_name_is_that_call(name):
    result = classify(f"    {name}(:remove_column, :cov_table, :cov_column)")
    assert result.migration_class is C.CLEANUP, result.reasons
    assert [(op.helper, op.table) for op in result.operations] == [("remove_column", "cov_table")]


@pytest.mark.parametrize("name", sorted(CATALOGUE.sql_methods))
@pytest.mark.parametrize("receiver", ["", "connection.", "ApplicationRecord.connection."])
def test_sql_methods_have_their_sql_read(name, receiver):
    statement = '("DELETE FROM cov_table WHERE id < 10")'  # Ruby source under test, not a query we run
    result = classify(f"    {receiver}{name}{statement}")
    assert result.migration_class is C.DATA, result.reasons
    assert result.operations[0].table == "cov_table"


@pytest.mark.parametrize("target", ["gitlab_com", "self_managed"])
def test_every_predicate_guards_as_declared(target):
    predicates = CATALOGUE.predicates[target]
    config = ClassifierConfig(target=target)
    for check, value in predicates.items():
        source, path = migration(f"    return unless {check}\n\n    drop_table :cov_table")
        result = classify_source(source, path, config=config)
        expected = C.NOOP if value is False else C.CLEANUP
        assert result.migration_class is expected, (check, value, result.reasons)


@pytest.mark.parametrize(("schema", "database"), sorted(CATALOGUE.schemas.items()))
def test_every_gitlab_schema_maps_to_its_database(schema, database):
    result = classify("    # nothing", before=f"  restrict_gitlab_migration gitlab_schema: :{schema}\n")
    assert result.database == database


def test_an_unlisted_schema_keeps_its_own_name_and_ddl_only_runs_everywhere():
    assert (
        classify("", before="  restrict_gitlab_migration gitlab_schema: :gitlab_future\n").database
        == "future"
    )
    assert classify("    add_column :cov_table, :x, :text").database == "all"


def test_the_shipped_table_list_has_realistic_large_tables():
    tables = load_tables(ClassifierConfig().tables_path)
    assert tables.size_of("ci_builds") == "over_limit"
    assert tables.size_of("gitlab_partitions_dynamic.ci_builds") == "over_limit"
    assert tables.size_of("projects") == "large"
    assert tables.size_of("work_item_colors") is None
    assert len(tables.sizes) >= 60


# -- a malformed catalogue or table list is an error naming the file and the key ---------------------------


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "helpers:\n  add_index: {class: heavy, rationale: x}\n",
            "my.yaml: helpers.add_index: unknown migration class 'heavy'",
        ),
        ("helpers:\n  add_index: {class: data}\n", "my.yaml: helpers.add_index: missing rationale"),
        (
            "helpers:\n  add_index: {class: data, rationale: x, tabel: 0}\n",
            "my.yaml: helpers.add_index: unknown key 'tabel'",
        ),
        ("helpers:\n  add_index: {rationale: x}\n", "my.yaml: helpers.add_index: missing class"),
        (
            "helpers:\n  add_index: {class: data, rationale: x, table: 1.5}\n",
            "my.yaml: helpers.add_index: table",
        ),
        ("helpers: [add_index]\n", "my.yaml: helpers: expected a mapping"),
        ("neutral_methods: {each: 1}\n", "my.yaml: neutral_methods: expected a list"),
        ("predicates:\n  mars: {}\n", "my.yaml: predicates.mars: unknown target"),
        ("predicates:\n  gitlab_com: {Gitlab.com?: maybe}\n", "my.yaml: predicates.gitlab_com.Gitlab.com?"),
        ("helperz: {}\n", "my.yaml: unknown section 'helperz'"),
        ("helper_classes:\n  X: {methods: {}}\n", "my.yaml: helper_classes.X: methods"),
        ("helpers:\n  a: {class: data, rationale: x, when: {argument: 2}}\n", "my.yaml: helpers.a: when"),
        (
            "helpers:\n  a: {class: data, rationale: x, when: {argument: 2, values: {true: {class: z, rationale: y}}}}\n",
            "my.yaml: helpers.a: when.values.true: unknown migration class",
        ),
        (
            "helper_classes:\n  X: {constructors: [new], methods: {run: {class: slow, rationale: x}}}\n",
            "my.yaml: helper_classes.X.methods.run: unknown migration class",
        ),
        ("helper_classes:\n  X: {builders: [new], methods: {}}\n", "my.yaml: helper_classes.X: unknown key"),
        ("helpers: {a: [\n", "my.yaml: not valid YAML"),
        ("index_names:\n  built: {}\n", "my.yaml: index_names: expected a mapping with creates and drops"),
        (
            "index_names:\n  drops: {remove_index: [1.5]}\n",
            "my.yaml: index_names.drops.remove_index: expected",
        ),
        ("model_superclasses: Model\n", "my.yaml: model_superclasses: expected a list"),
        ("helpers: {}\n", "my.yaml: missing section 'model_superclasses'"),
        ("- just\n- a list\n", "expected a mapping at the top level"),
    ],
)
def test_a_bad_catalogue_names_the_file_and_key(tmp_path, text, message):
    with pytest.raises(CatalogueError) as error:
        load_catalogue(write(tmp_path, "my.yaml", text))
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("huge: [issues]\n", "t.yaml: unknown size 'huge'"),
        ("large: issues\n", "t.yaml: large: expected a list"),
        ("over_limit: [issues, '']\n", "t.yaml: over_limit[1]: expected a table name"),
    ],
)
def test_a_bad_table_list_names_the_file_and_entry(tmp_path, text, message):
    with pytest.raises(CatalogueError) as error:
        load_tables(write(tmp_path, "t.yaml", text))
    assert message in str(error.value)


def test_a_missing_file_is_a_catalogue_error(tmp_path):
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(str(tmp_path / "absent.yaml"))


def test_an_extended_catalogue_changes_the_class_without_code(tmp_path):
    shipped = Path(ClassifierConfig().catalogue_path).read_text()
    extended = shipped.replace(
        "helpers:\n",
        'helpers:\n  rebalance_partitions_somehow: {class: schema_heavy, table: 0, rationale: "moves rows"}\n',
        1,
    )
    config = ClassifierConfig(catalogue_path=write(tmp_path, "extended.yaml", extended))
    source, path = migration("    rebalance_partitions_somehow(:p_ci_finished_builds)")
    assert classify_source(source, path).migration_class is C.UNKNOWN
    assert classify_source(source, path, config=config).migration_class is C.SCHEMA_HEAVY


def test_a_custom_table_list_escalates_its_tables(tmp_path):
    config = ClassifierConfig(tables_path=write(tmp_path, "tables.yaml", "over_limit: [cov_table]\n"))
    source, path = migration("    execute('UPDATE cov_table SET a = 1')")
    assert classify_source(source, path).migration_class is C.DATA
    escalated = classify_source(source, path, config=config)
    assert escalated.migration_class is C.SCHEMA_HEAVY
    assert escalated.table_size == "over_limit"
    assert any("counts as schema_heavy" in reason for reason in escalated.reasons)


def test_an_unknown_target_is_refused():
    with pytest.raises(ValueError, match="ClassifierConfig.target: 'moon'"):
        ClassifierConfig(target="moon")


@pytest.mark.parametrize("receiver", sorted(CATALOGUE.guard_receivers))
def test_an_unvalued_check_on_a_guard_receiver_is_a_guard_whose_both_paths_count(receiver):
    result = classify(
        f"    return if {receiver}.some_unlisted_check?\n\n    remove_column :cov_table, :cov_column"
    )
    assert result.migration_class is C.CLEANUP, result.reasons
    assert [op.helper for op in result.operations] == ["remove_column"]


@pytest.mark.parametrize("receiver", sorted(CATALOGUE.setting_readers))
def test_a_setting_reader_reads_but_an_action_or_bang_on_it_stays_unknown(receiver):
    assert classify(f"    value = {receiver}.cov_setting_enabled").migration_class is C.NOOP
    for call in (f"{receiver}.expire_everything", f"{receiver}.cov_setting!", f"{receiver}.cov_setting(1)"):
        assert classify(f"    {call}").migration_class is C.UNKNOWN, call


def test_a_rescued_exception_variable_is_a_local_not_a_helper():
    result = classify(
        "    execute 'SELECT 1'\n  rescue StandardError => error\n    Rails.logger.warn(error.message)"
    )
    assert result.migration_class is C.NOOP, result.reasons


ARGUMENT_CASES = [
    (name, literal, cls)
    for name, rule in sorted(CATALOGUE.helpers.items())
    if rule.when is not None
    for literal, (cls, _rationale) in sorted(rule.when[1].items())
]


@pytest.mark.parametrize(("name", "literal", "cls"), ARGUMENT_CASES)
def test_argument_semantics_choose_the_class_and_an_unreadable_argument_keeps_the_strict_default(
    name, literal, cls
):
    rule = CATALOGUE.helpers[name]
    index = rule.when[0]
    assert isinstance(index, int)
    positional = [":cov_table", ":cov_column", ":cov_other", ":cov_more"][:index] + [literal]
    assert classify(f"    {name}({', '.join(positional)})").migration_class is cls
    unreadable = [":cov_table", ":cov_column", ":cov_other", ":cov_more"][:index] + ["value_from_elsewhere"]
    result = classify(f"    value_from_elsewhere = ENV['X']\n    {name}({', '.join(unreadable)})")
    assert result.migration_class is rule.cls
    assert rule.cls >= max(case for case, _ in rule.when[1].values())


@pytest.mark.parametrize(("constant", "table"), sorted(CATALOGUE.model_tables.items()))
def test_a_catalogued_model_writes_its_own_table(constant, table):
    result = classify(f"    {constant}.where(id: 1).delete_all")
    assert [op.table for op in result.operations] == [table]


@pytest.mark.parametrize("table", sorted(CATALOGUE.bookkeeping_tables))
def test_writes_to_background_bookkeeping_tables_are_background(table):
    statement = " ".join(["DELETE", "FROM", table, "WHERE", "id", "=", "1"])  # Ruby source, not a query
    result = classify(f'    execute("{statement}")')
    assert result.migration_class is C.BACKGROUND, result.reasons
