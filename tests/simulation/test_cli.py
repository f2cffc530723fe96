"""The command line: formats, and clear errors (exit 2) naming the file and the key or row."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from include.simulation.__main__ import main
from include.simulation.inputs import DEFAULT_WORLD
from tests.conftest import PROJECT_ROOT

SHORT = ["--weeks", "2", "--seed", "1"]


def _run(capsys, *argv):
    code = main([*SHORT, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_has_one_row_per_policy(capsys):
    code, out, err = _run(capsys)
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows] == [
        "policy",
        "manual-daily",
        "manual-apac-emea",
        "orchestrator",
        "orchestrator-selected",
        "oracle",
    ]
    assert "seed 1" in out


def test_csv_is_machine_readable(capsys):
    code, out, _ = _run(capsys, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["policy"] for r in rows] == [
        "manual-daily",
        "manual-apac-emea",
        "orchestrator",
        "orchestrator-selected",
        "oracle",
    ]
    assert {"heavy_peak_min", "deploy_blocked_min", "age_cleanup_p95_h", "manual_actions"} <= set(rows[0])
    float(rows[2]["peak_load"])


def test_html_has_the_table_and_timelines(capsys, tmp_path):
    target = tmp_path / "report.html"
    code, out, _ = _run(capsys, "--format", "html", "--output", str(target))
    assert code == 0 and out == ""
    page = target.read_text()
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 2 and "<table>" in page and "orchestrator" in page


def test_module_entry_point_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "include.simulation", "--weeks", "1", "--format", "csv"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("policy,")


def _world(tmp_path, old: str, new: str):
    text = DEFAULT_WORLD.read_text().replace(old, new)
    # Relative paths in the world file point into defaults/: keep them valid from tmp_path.
    text = text.replace("profile: traffic_week.csv", f"profile: {DEFAULT_WORLD.parent / 'traffic_week.csv'}")
    text = text.replace(
        "policy: ../../../config/policy.yaml", f"policy: {PROJECT_ROOT / 'config' / 'policy.yaml'}"
    )
    path = tmp_path / "world.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--weeks", "0"], "--weeks: expected 1..520, got 0"),
        (["--start", "2026-01-06"], "--start: 2026-01-06 is not a Monday"),
        (["--policy", "/nonexistent.yaml"], "--policy: /nonexistent.yaml does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(capsys, argv, message):
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err


def test_bad_world_key_is_named(capsys, tmp_path):
    path = _world(tmp_path, "noise: 0.05", "noise: loud")
    code, _, err = _run(capsys, "--world", str(path))
    assert code == 2
    assert f"{path}: traffic.noise: expected a number, got 'loud'" in err


def test_unknown_world_key_is_named(capsys, tmp_path):
    path = _world(tmp_path, "  package_lag: 60", "  package_lagg: 60")
    code, _, err = _run(capsys, "--world", str(path))
    assert code == 2 and "deployments.package_lagg: unknown key" in err


def test_bad_migration_row_names_file_and_line(capsys, tmp_path):
    path = tmp_path / "migrations.csv"
    path.write_text("merged_at,class\n2026-01-05T10:00:00Z,data\n2026-01-05T11:00:00Z,heavy\n")
    code, _, err = _run(capsys, "--migrations", str(path))
    assert code == 2
    assert f"{path}: line 3: unknown migration class 'heavy'" in err


def test_bad_incident_row_names_file_line_and_column(capsys, tmp_path):
    path = tmp_path / "incidents.csv"
    path.write_text("opened_at,severity,duration_min\nyesterday,2,60\n")
    code, _, err = _run(capsys, "--incidents", str(path))
    assert code == 2
    assert f"{path}: line 2: opened_at: expected an ISO-8601 instant, got 'yesterday'" in err


def test_traffic_csv_with_a_hole_is_refused(capsys, tmp_path):
    path = tmp_path / "traffic.csv"
    path.write_text("day,time,rate\nmon,00:00,100\n")
    code, _, err = _run(capsys, "--traffic", str(path))
    assert code == 2 and "2015 of 2016 5-minute steps missing, first mon 00:05" in err


def test_bad_policy_file_is_named(capsys, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nwindows: {}\n")
    code, _, err = _run(capsys, "--policy", str(path))
    assert code == 2 and str(path) in err


def test_arrivals_from_files_start_on_their_monday(capsys, tmp_path):
    migrations = tmp_path / "migrations.csv"
    migrations.write_text(
        "merged_at,class,duration_min\n2026-03-04T10:00:00Z,data,5\n2026-03-05T10:00:00Z,cleanup,3\n"
    )
    deployments = tmp_path / "deployments.csv"
    deployments.write_text("start,duration_min\n2026-03-04T12:00:00Z,60\n2026-03-06T12:00:00Z,60\n")
    code, out, err = _run(
        capsys, "--migrations", str(migrations), "--deployments", str(deployments), "--format", "csv"
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sum(int(r["runs"]) for r in rows if r["policy"].startswith("manual")) >= 2


def test_migrations_from_a_directory_are_classified(capsys, tmp_path):
    folder = tmp_path / "post_migrate"
    folder.mkdir()
    (folder / "20260106100000_add_index_on_issues.rb").write_text(
        "class AddIndexOnIssues < Gitlab::Database::Migration[2.2]\n"
        "  disable_ddl_transaction!\n"
        "  def up\n    add_concurrent_index :issues, :title\n  end\n"
        "  def down\n    remove_concurrent_index :issues, :title\n  end\nend\n"
    )
    (folder / "20260107100000_queue_backfill.rb").write_text(
        "class QueueBackfill < Gitlab::Database::Migration[2.2]\n"
        "  def up\n    queue_batched_background_migration('Backfill', :users, :id)\n  end\n"
        "  def down; end\nend\n"
    )
    from include.simulation.inputs import read_migrations_directory

    records = read_migrations_directory(folder)
    assert [(r.version, r.cls.value) for r in records] == [
        ("20260106100000", "schema_heavy"),
        ("20260107100000", "background"),
    ]
    code, out, err = _run(capsys, "--migrations", str(folder), "--format", "csv")
    assert code == 0, err


def test_shipped_world_files_load_and_the_what_if_changes_only_unknowns():
    from dataclasses import asdict

    from include.classification.classes import MigrationClass
    from include.simulation.inputs import load_world_settings

    default = asdict(load_world_settings(DEFAULT_WORLD))
    annotated = asdict(load_world_settings(DEFAULT_WORLD.parent / "world-annotated.yaml"))
    assert annotated["class_mix"][MigrationClass.UNKNOWN] == 0
    for key in ("source", "class_mix"):
        default.pop(key), annotated.pop(key)
    assert default == annotated
