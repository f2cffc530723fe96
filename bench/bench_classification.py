"""Classification throughput: the whole CLI (start-up included) against the raw tree-sitter parse floor.

Generates a corpus of realistic post-deploy migrations, then prints migrations/s for the parse-only floor,
the single-process command, and --jobs 2, with the ratio to the floor and peak memory.
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COUNT = int(os.environ.get("BENCH_MIGRATIONS", "5000"))
TABLES = [
    "ci_builds",
    "issues",
    "merge_requests",
    "namespaces",
    "user_details",
    "work_item_dates_sources",
    "packages",
]
BODIES = [
    "    queue_batched_background_migration(MIGRATION, :{t}, :id, job_interval: DELAY, batch_size: 1_000)",
    "    add_concurrent_index :{t}, [:project_id, :created_at], name: INDEX_NAME",
    "    remove_concurrent_index_by_name :{t}, INDEX_NAME",
    "    with_lock_retries do\n      remove_column :{t}, :legacy_state\n    end",
    "    ensure_batched_background_migration_is_finished(job_class_name: 'X', table_name: :{t}, column_name: :id, job_arguments: [])",
    "    execute <<~SQL\n      UPDATE {t} SET state = 0 WHERE state IS NULL\n    SQL",
    "    return unless Gitlab.com?\n\n    update_column_in_batches(:{t}, :state, 0) do |table, query|\n      query.where(table[:state].eq(nil))\n    end",
    "    add_check_constraint :{t}, 'char_length(note) <= 255', CONSTRAINT_NAME, validate: false",
    "    prepare_async_index :{t}, :state, name: INDEX_NAME",
    "    define_batchable_model(:{t}).each_batch(of: 500) do |batch|\n      batch.where(archived: nil).update_all(archived: false)\n    end",
]


def corpus(directory: Path) -> list[Path]:
    rng = random.Random(7)
    paths = []
    for i in range(COUNT):
        name = f"bench_migration_number_{i}"
        body = "\n".join(rng.choice(BODIES).format(t=rng.choice(TABLES)) for _ in range(rng.randint(1, 3)))
        source = (
            "# frozen_string_literal: true\n\n"
            f"class BenchMigrationNumber{i} < Gitlab::Database::Migration[2.2]\n"
            "  milestone '17.6'\n  disable_ddl_transaction!\n\n"
            "  MIGRATION = 'Backfill'\n  DELAY = 2.minutes\n  INDEX_NAME = 'index_things'\n  CONSTRAINT_NAME = 'check_note'\n\n"
            f"  def up\n{body}\n  end\n\n  def down\n    # no-op\n  end\nend\n"
        )
        folder = directory / ("ee/db/post_migrate" if i % 5 == 0 else "db/post_migrate")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{20260101000000 + i}_{name}.rb"
        path.write_text(source)
        paths.append(path)
    return paths


def parse_floor(paths: list[Path]) -> float:
    import tree_sitter_ruby
    from tree_sitter import Language, Parser

    parser = Parser(Language(tree_sitter_ruby.language()))
    started = time.perf_counter()
    for path in paths:
        parser.parse(path.read_bytes())
    return time.perf_counter() - started


def command(directory: Path, *extra: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "include.classification", str(directory), "--format", "jsonl", *extra],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        paths = corpus(directory)
        floor = parse_floor(paths)
        single = command(directory)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        jobs2 = command(directory, "--jobs", "2")
    print(f"corpus: {len(paths)} generated post-deploy migrations")
    print(f"tree-sitter parse only (floor): {len(paths) / floor:8.0f} migrations/s  ({floor:.2f} s)")
    print(
        f"whole command, 1 process:       {len(paths) / single:8.0f} migrations/s  ({single:.2f} s, {single / floor:.2f}x the floor)"
    )
    print(
        f"whole command, --jobs 2:        {len(paths) / jobs2:8.0f} migrations/s  ({jobs2:.2f} s, speed-up {single / jobs2:.2f}x)"
    )
    print(f"peak memory of the command:     {peak_mb:8.0f} MiB")


if __name__ == "__main__":
    main()
