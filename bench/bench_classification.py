"""Classification throughput: the whole CLI (start-up included) against the raw tree-sitter parse floor.

Generates a corpus of realistic post-deploy migrations (the shapes GitLab's db/post_migrate holds: batched
background migrations, async and concurrent indexes, constraints, cleanups, inline data fixes, heredoc SQL,
guards, private helpers, inner models), then prints migrations/s for:
  (a) tree-sitter parse only, in-process (the floor),
  (b) `python -m include.classification DIR --format jsonl > /dev/null`, one process, start-up included,
  (c) the same with --jobs 2,
with the ratio whole/floor and each command's peak memory (resource usage of the child).

    .venv/bin/python bench/bench_classification.py            # 5,000 migrations
    BENCH_MIGRATIONS=20000 .venv/bin/python bench/bench_classification.py

Then, when the development set's file cache exists, the accuracy report of
`python -m include.classification.evaluate --check` (exit 1 below the bar of issue 15).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNT = int(os.environ.get("BENCH_MIGRATIONS", "5000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))

TABLES = [
    "ci_builds",
    "p_ci_pipelines",
    "issues",
    "merge_requests",
    "namespaces",
    "projects",
    "user_details",
    "work_item_dates_sources",
    "packages_packages",
    "vulnerability_reads",
    "deploy_tokens",
    "snippets",
    "todos",
    "web_hook_logs_daily",
    "zoekt_repositories",
]
SCHEMAS = ["gitlab_main", "gitlab_main_cell", "gitlab_ci", "gitlab_sec", "gitlab_main_org"]

# (up body, down body): {t} is a table, {c} a column. Constants used here are defined in every file.
SHAPES = [
    (
        "    queue_batched_background_migration(\n      MIGRATION,\n      :{t},\n      :id,\n"
        "      job_interval: DELAY_INTERVAL,\n      batch_size: BATCH_SIZE,\n      sub_batch_size: SUB_BATCH_SIZE\n    )",
        "    delete_batched_background_migration(MIGRATION, :{t}, :id, [])",
    ),
    (
        "    ensure_batched_background_migration_is_finished(\n      job_class_name: MIGRATION,\n      table_name: :{t},\n"
        "      column_name: :id,\n      job_arguments: [],\n      finalize: true\n    )",
        "    # no-op",
    ),
    (
        "    add_concurrent_index :{t}, [:{c}, :id], name: INDEX_NAME, where: '{c} IS NOT NULL'",
        "    remove_concurrent_index_by_name :{t}, INDEX_NAME",
    ),
    (
        "    prepare_async_index :{t}, :{c}, name: INDEX_NAME",
        "    unprepare_async_index :{t}, :{c}, name: INDEX_NAME",
    ),
    (
        "    remove_concurrent_index_by_name :{t}, INDEX_NAME",
        "    add_concurrent_index :{t}, :{c}, name: INDEX_NAME",
    ),
    (
        "    with_lock_retries do\n      remove_column :{t}, :{c}, if_exists: true\n    end",
        "    with_lock_retries do\n      add_column :{t}, :{c}, :text, if_not_exists: true\n    end\n\n"
        "    add_text_limit :{t}, :{c}, 255",
    ),
    (
        "    add_concurrent_foreign_key :{t}, :projects, column: :{c}, on_delete: :cascade, validate: false",
        "    with_lock_retries do\n      remove_foreign_key_if_exists :{t}, column: :{c}\n    end",
    ),
    ("    validate_foreign_key :{t}, :{c}, name: CONSTRAINT_NAME", "    # no-op"),
    (
        "    add_check_constraint :{t}, 'char_length({c}) <= 255', CONSTRAINT_NAME, validate: false",
        "    remove_check_constraint :{t}, CONSTRAINT_NAME",
    ),
    ("    validate_not_null_constraint :{t}, :{c}, constraint_name: CONSTRAINT_NAME", "    # no-op"),
    (
        "    execute <<~SQL\n      UPDATE {t}\n      SET {c} = 0\n      WHERE {c} IS NULL\n        AND created_at < NOW() - INTERVAL '90 days'\n    SQL",
        "    # no-op",
    ),
    (
        "    return unless Gitlab.com?\n\n    update_column_in_batches(:{t}, :{c}, 0) do |table, query|\n"
        "      query.where(table[:{c}].eq(nil))\n    end",
        "    # no-op",
    ),
    (
        "    return if Gitlab.com?\n\n    define_batchable_model(:{t}).where({c}: nil).each_batch(of: BATCH_SIZE) do |batch|\n"
        "      batch.delete_all\n    end",
        "    # no-op",
    ),
    (
        "    each_batch(:{t}, scope: ->(relation) {{ relation.where({c}: nil) }}, of: BATCH_SIZE) do |batch|\n"
        "      batch.update_all({c}: 0)\n    end",
        "    # no-op",
    ),
    ("    # no-op: the work moved to a batched background migration", "    # no-op"),
    ("    swap\n", "    swap\n"),
    (
        "    cleanup_conversion_of_integer_to_bigint(:{t}, [:{c}])",
        "    restore_conversion_of_integer_to_bigint(:{t}, [:{c}])",
    ),
    ("    backfill_conversion_of_integer_to_bigint(:{t}, [:{c}], batch_size: 10_000)", "    # no-op"),
    (
        "    drop_table :{t}_archived, if_exists: true",
        "    create_table :{t}_archived do |t|\n      t.bigint :project_id, null: false\n      t.timestamps_with_timezone\n    end",
    ),
    ("    sidekiq_remove_jobs(job_klasses: DEPRECATED_JOB_CLASSES)", "    # no-op"),
    ("    Rails.cache.delete('{t}:{c}:count')", "    # no-op"),
    ("    truncate_tables!('{t}_legacy')", "    # no-op"),
]
PRIVATE_SWAP = """
  private

  def swap
    with_lock_retries(raise_on_exhaustion: true) do
      swap_columns(TABLE_NAME, :id, :id_convert_to_bigint)
      reset_all_trigger_functions(TABLE_NAME)
      swap_indexes(TABLE_NAME, INDEX_NAME, 'index_tmp_bigint')
    end
  end
"""
MODEL = """
  class Record < MigrationRecord
    self.table_name = '{t}'
  end
"""


def corpus(directory: Path, count: int = COUNT) -> list[Path]:
    """Write `count` migrations under db/post_migrate and ee/db/post_migrate; deterministic."""
    rng = random.Random(7)
    paths = []
    for i in range(count):
        name = f"bench_migration_number_{i}"
        table = rng.choice(TABLES)
        column = rng.choice(["state", "project_id", "author_id", "status", "archived"])
        chosen = [rng.choice(SHAPES) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        up = "\n\n".join(body.format(t=table, c=column) for body, _ in chosen)
        down = "\n\n".join(body.format(t=table, c=column) for _, body in chosen)
        header = "# frozen_string_literal: true\n\n"
        if rng.random() < 0.4:
            header += (
                "# See https://docs.gitlab.com/ee/development/migration_style_guide.html\n"
                "# for more information on how to write migrations for GitLab.\n\n"
            )
        declarations = f"  milestone '18.{rng.randint(0, 9)}'\n"
        if rng.random() < 0.7:
            declarations += "  disable_ddl_transaction!\n"
        if rng.random() < 0.5:
            declarations += f"  restrict_gitlab_migration gitlab_schema: :{rng.choice(SCHEMAS)}\n"
        constants = (
            "\n  MIGRATION = 'BackfillSomething'\n  DELAY_INTERVAL = 2.minutes\n  BATCH_SIZE = 1_000\n"
            "  SUB_BATCH_SIZE = 100\n  TABLE_NAME = :"
            + table
            + "\n  INDEX_NAME = 'index_"
            + table
            + "_on_"
            + column
            + "'\n"
            "  CONSTRAINT_NAME = 'check_" + column + "'\n  DEPRECATED_JOB_CLASSES = %w[LegacyWorker].freeze\n"
        )
        model = MODEL.format(t=table) if rng.random() < 0.15 else ""
        private = PRIVATE_SWAP if any(body.startswith("    swap") for body, _ in chosen) else ""
        source = (
            f"{header}class BenchMigrationNumber{i} < Gitlab::Database::Migration[2.{rng.choice((1, 2, 3))}]\n"
            f"{declarations}{constants}{model}\n  def up\n{up}\n  end\n\n  def down\n{down}\n  end\n{private}end\n"
        )
        folder = directory / ("ee/db/post_migrate" if i % 5 == 0 else "db/post_migrate")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{20260101000000 + i}_{name}.rb"
        path.write_text(source)
        paths.append(path)
    return paths


def parse_floor(paths: list[Path]) -> tuple[float, float]:
    """Wall-clock and CPU seconds to read and parse every file with tree-sitter-ruby, nothing else (best of REPEAT)."""
    import tree_sitter_ruby
    from tree_sitter import Language, Parser

    parser = Parser(Language(tree_sitter_ruby.language()))
    best, best_cpu = float("inf"), float("inf")
    for _ in range(REPEAT):
        started, started_cpu = time.perf_counter(), time.process_time()
        for path in paths:
            with open(path, "rb") as handle:
                parser.parse(handle.read())
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - started_cpu)
    return best, best_cpu


def bytecode_cache(directory: Path, sample: list[Path]) -> dict[str, str]:
    """Environment in which the child starts as an installed tool does after its first run.

    Every run after the first finds its bytecode (the standard library's and the package's) and the parsed
    catalogue (kept beside the bytecode) already written. Where the shell sets PYTHONDONTWRITEBYTECODE (some
    CI and sandbox shells do) nothing would ever be written and every start would recompile from source,
    a cost no real run pays after its first. So the child writes its caches under a temporary
    PYTHONPYCACHEPREFIX (the checkout is not touched), and unmeasured runs over `sample` (one process, then
    --jobs 2) fill it.
    """
    cache = {"PYTHONPYCACHEPREFIX": str(directory / "pycache")}
    env = _child_env(cache)
    argv = [sys.executable, "-m", "include.classification", *map(str, sample), "--format", "jsonl"]
    for extra in ([], ["--jobs", "2"]):
        subprocess.run([*argv, *extra], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return cache


def _child_env(cache: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", **cache)
    if cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def command(directory: Path, *extra: str, cache: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Best wall-clock and CPU seconds of the whole CLI, and the peak resident memory (MiB) of the child."""
    env = _child_env(cache or {})
    argv = [sys.executable, "-m", "include.classification", str(directory), "--format", "jsonl", *extra]
    best, best_cpu, peak = float("inf"), float("inf"), 0.0
    for _ in range(REPEAT):
        started = time.perf_counter()
        with open(os.devnull, "wb") as sink:
            child = subprocess.Popen(argv, stdout=sink, env=env, cwd=ROOT)
            _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {child.returncode}")
        best = min(best, elapsed)
        # With --jobs the workers are the child's children: their CPU is not in this usage, so report
        # CPU for the single-process command only.
        best_cpu = min(best_cpu, usage.ru_utime + usage.ru_stime)
        peak = max(peak, usage.ru_maxrss / 1024)  # Linux: KiB; with --jobs, the parent's own peak
    return best, best_cpu, peak


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        paths = corpus(directory)
        size = sum(p.stat().st_size for p in paths) / len(paths)
        floor, floor_cpu = parse_floor(paths)
        cache = bytecode_cache(Path(tmp), paths[:8])
        single, single_cpu, single_peak = command(directory, cache=cache)
        jobs2, _, jobs2_peak = command(directory, "--jobs", "2", cache=cache)
    n = len(paths)
    print(f"corpus: {n} generated post-deploy migrations, {size:.0f} bytes on average; best of {REPEAT} runs")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores, load average {load} (other work on the machine slows every figure)"
    )
    print(
        "start-up: as after a first run (bytecode and parsed catalogue cached by unmeasured runs, "
        "in a temporary PYTHONPYCACHEPREFIX)"
    )
    print(f"(a) tree-sitter parse only (floor): {n / floor:8.0f} migrations/s  ({floor:.2f} s)")
    print(
        f"(b) whole command, 1 process:       {n / single:8.0f} migrations/s  ({single:.2f} s, "
        f"{single / floor:.2f}x the floor; target <= 2.5x)  peak {single_peak:.0f} MiB"
    )
    print(
        f"    CPU time, same command: {single_cpu:.2f} s against {floor_cpu:.2f} s ({single_cpu / floor_cpu:.2f}x)"
    )
    print(
        f"(c) whole command, --jobs 2:        {n / jobs2:8.0f} migrations/s  ({jobs2:.2f} s, "
        f"{jobs2 / floor:.2f}x the floor; speed-up {single / jobs2:.2f}x on {os.cpu_count()} cores)  "
        f"peak {jobs2_peak:.0f} MiB (parent)"
    )
    development_set()


def development_set() -> None:
    """Accuracy on the labelled development set of real migrations, when its file cache is on this machine.

    `make bench` runs this file: with the cache present (PDM_DEVSET_CACHE or the default folder), it prints
    the report of `python -m include.classification.evaluate --check` and fails when the bar is not met.
    """
    from include.classification.evaluate import default_cache

    cache = default_cache()
    if not cache.is_dir():
        print(f"development set: no file cache at {cache} (set PDM_DEVSET_CACHE): accuracy not measured")
        return
    print(f"development set ({cache}):")
    argv = [sys.executable, "-m", "include.classification.evaluate", "--cache", str(cache), "--check"]
    done = subprocess.run(argv, env=_child_env({}), cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"development set below the bar (exit {done.returncode})")


if __name__ == "__main__":
    main()
