"""Every fixture migration is classified as its `# expect:` header says (class, database, size, operations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.classification import ClassifierConfig, classify_path
from tests.classification.expectations import FIXTURES, fixture_files, read_expectation

CASES = [
    pytest.param(path, target, id=f"{target}:{path.relative_to(FIXTURES)}")
    for path in fixture_files()
    for target in read_expectation(path).fields
]


def test_there_is_a_fixture_per_shape():
    assert len(fixture_files()) >= 60
    assert fixture_files("ee"), "ee/db/post_migrate fixtures are part of the suite"


@pytest.mark.parametrize(("path", "target"), CASES)
def test_fixture_is_classified_as_expected(path: Path, target: str):
    expected = read_expectation(path)
    result = classify_path(path, config=ClassifierConfig(target=target))
    fields = expected.fields[target]
    why = f"{path.name} on {target}: reasons={result.reasons} conflicts={result.conflicts}"
    assert result.migration_class.value == fields["class"], why
    if "database" in fields:
        assert result.database == fields["database"], why
    if "table_size" in fields:
        assert (result.table_size or "-") == fields["table_size"], why
    if "annotated" in fields:
        assert result.annotated is (fields["annotated"] == "true"), why
    if "conflicts" in fields:
        assert len(result.conflicts) == int(fields["conflicts"]), why
    if target != "gitlab_com":
        return
    for text in expected.reasons:
        assert any(text in reason for reason in result.reasons), f"{text!r} not in {result.reasons}"
    found = {(op.helper, op.table, op.cls.value) for op in result.operations}
    for operation in expected.operations:
        assert operation in found, f"{operation} not in {sorted(found, key=str)}"


@pytest.mark.parametrize("path", fixture_files("db") + fixture_files("ee"), ids=lambda p: p.name)
def test_version_name_and_milestone_come_from_the_file(path: Path):
    result = classify_path(path)
    version, _, name = path.stem.partition("_")
    assert (result.version, result.name) == (version, name)
    assert result.path == str(path)
