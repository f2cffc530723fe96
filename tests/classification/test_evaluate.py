"""`python -m include.classification.evaluate`: accuracy, lighter/dangerous lists, confusion and the bar,
on a small cache the tests write themselves (the real development set lives outside the repository)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from include.classification.evaluate import COLUMNS, DEFAULT_LABELS, LabelsError, evaluate, main, read_labels
from tests.classification.expectations import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "1" * 40


def migration(class_name: str, body: str) -> bytes:
    return (
        f"# frozen_string_literal: true\n\nclass {class_name} < Gitlab::Database::Migration[2.2]\n"
        f"  milestone '18.9'\n\n  def up\n{body}\n  end\n\n  def down; end\nend\n"
    ).encode()


# path -> (source, label): one exact, one lighter and dangerous, one unknown, one harmlessly stricter.
FILES = {
    "db/post_migrate/20200101000000_add_marks_index.rb": (
        migration("AddMarksIndex", "    add_concurrent_index :marks, :state"),
        "schema_heavy",
    ),
    "db/post_migrate/20200101000100_fix_marks_state.rb": (
        migration("FixMarksState", "    execute 'UPDATE marks SET state = 0 WHERE state IS NULL'"),
        "cleanup",
    ),
    "db/post_migrate/20200101000200_run_mark_service.rb": (
        migration("RunMarkService", "    Marks::RepairService.new.execute"),
        "data",
    ),
    "ee/db/post_migrate/20200101000300_drop_old_marks.rb": (
        migration("DropOldMarks", "    drop_table :old_marks"),
        "schema_heavy",
    ),
}


def write_set(tmp_path: Path, extra_rows: list[list[str]] | None = None) -> tuple[Path, Path]:
    cache = tmp_path / "cache"
    labels = tmp_path / "labels.csv"
    rows = []
    for path, (source, label) in FILES.items():
        target = cache / COMMIT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source)
        digest = hashlib.sha256(source).hexdigest()
        rows.append(["gitlabhq/gitlabhq", path, COMMIT, digest, "2020", label, label, label, "synthetic"])
    with labels.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows + (extra_rows or []))
    return labels, cache


def test_the_shipped_labels_file_has_the_agreed_columns_and_parses():
    with DEFAULT_LABELS.open(encoding="utf-8") as handle:
        assert tuple(next(csv.reader(handle))) == COLUMNS
    assert read_labels(DEFAULT_LABELS)


def test_accuracy_lighter_dangerous_unknown_rate_and_confusion(tmp_path):
    missing = ["gitlabhq/gitlabhq", "db/post_migrate/20200101000400_gone.rb", COMMIT, "0" * 64, "2020"]
    changed = [
        "gitlabhq/gitlabhq",
        "db/post_migrate/20200101000000_add_marks_index.rb",
        COMMIT,
        "f" * 64,
        "2020",
    ]
    labels, cache = write_set(tmp_path, [missing + ["noop"] * 3 + [""], changed + ["noop"] * 3 + [""]])
    result = evaluate(labels, cache).to_dict()
    assert (result["rows"], result["found"]) == (6, 4)
    assert [m["path"] for m in result["missing"]] == ["db/post_migrate/20200101000400_gone.rb"]
    assert result["sha256_mismatch"][0]["expected"] == "f" * 64
    assert result["exact"] == 1 and result["accuracy"] == 0.25
    assert [(x["label"], x["predicted"]) for x in result["lighter"]] == [("cleanup", "data")]
    assert result["dangerous"] == result["lighter"]
    assert result["unknown_rate"] == 0.25  # the service call, among 4 files not labelled unknown
    assert result["confusion"]["schema_heavy"] == {
        "noop": 0,
        "background": 0,
        "data": 0,
        "schema_heavy": 1,
        "cleanup": 1,
        "unknown": 0,
    }
    misses = {m["path"]: m for m in result["misses"]}
    assert len(misses) == 3
    assert "Marks::RepairService" in misses["db/post_migrate/20200101000200_run_mark_service.rb"]["reason"]
    assert result["meets_bar"] is False


def test_check_fails_below_the_bar_and_the_table_lists_each_miss(tmp_path):
    labels, cache = write_set(tmp_path)
    out = io.StringIO()
    assert main(["--labels", str(labels), "--cache", str(cache), "--check"], out) == 1
    text = out.getvalue()
    assert "files found: 4, missing: 0" in text
    assert "exact: 1/4 = 25.0%" in text
    assert "DANGER   db/post_migrate/20200101000100_fix_marks_state.rb: label cleanup, predicted data" in text
    assert "predicted unknown: unknown: Marks::RepairService" in text
    assert text.rstrip().endswith("bar met: no")
    assert main(["--labels", str(labels), "--cache", str(cache)], io.StringIO()) == 0  # no --check


def test_the_cache_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    labels, cache = write_set(tmp_path)
    monkeypatch.setenv("PDM_DEVSET_CACHE", str(cache))
    out = io.StringIO()
    assert main(["--labels", str(labels), "--format", "json"], out) == 0
    assert json.loads(out.getvalue())["found"] == 4


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ["r", "db/x.rb", COMMIT, "a" * 64, "2020", "", "", "heavy", ""],
            "line 2: label: unknown migration class",
        ),
        (["r", "db/x.rb", COMMIT, "", "2020", "", "", "data", ""], "line 2: empty sha256"),
        (["r", "../x.rb", COMMIT, "a" * 64, "2020", "", "", "data", ""], "line 2: path must be relative"),
    ],
)
def test_a_bad_row_is_a_usage_error_naming_the_line(tmp_path, capsys, row, message):
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        csv.writer(handle).writerows([COLUMNS, row])
    with pytest.raises(LabelsError, match=message):
        read_labels(labels)
    assert main(["--labels", str(labels), "--cache", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_column_is_named(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("repo,path,commit,label\n")
    with pytest.raises(LabelsError, match="missing column.*sha256"):
        read_labels(labels)


EXAMPLE_ROWS = """repo,path,commit,sha256,year,reader_1,reader_2,label,note
pdm-orchestrator/fixtures,db/post_migrate/20260120150000_allow_null_on_legacy_reviewer_column.rb,0000000000000000000000000000000000000000,516a8ce1a3636cfd34d9b9974151cc93354618faae25f8ef4a54c621d1fb8b20,2026,cleanup,cleanup,cleanup,a project fixture
pdm-orchestrator/fixtures,db/post_migrate/20260120130000_reset_limits_with_anonymous_models.rb,0000000000000000000000000000000000000000,59638301a845c8f8d7c5075f29e057c17e73d686a4ebedfb4563139f01ba85ed,2026,data,data,data,a project fixture
pdm-orchestrator/fixtures,db/post_migrate/20260120110100_queue_or_update_depending_on_installation.rb,0000000000000000000000000000000000000000,a95330bb71eff0ce4a15b34f25af2deb6d798e5317e4714acb83a8c44c4598c4,2026,background,background,background,a project fixture
"""


def test_the_command_meets_the_bar_on_example_rows_naming_fixtures(tmp_path):
    """The real command, as `make bench` runs it, over a cache holding the fixtures the rows name.

    The shipped labels name real GitLab files whose text is not in the repository; these example rows
    name project fixtures so the whole command runs on a clean checkout.
    """
    labels = tmp_path / "labels.csv"
    labels.write_text(EXAMPLE_ROWS, encoding="utf-8")
    cache = tmp_path / "cache"
    for row in read_labels(labels):
        target = cache / row.commit / row.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURES / row.path, target)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PDM_DEVSET_CACHE": str(cache)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "include.classification.evaluate",
            "--labels",
            str(labels),
            "--check",
            "--format",
            "json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["accuracy"] == 1.0 and report["meets_bar"] is True
