"""Command line: classify post-deploy migrations in files, folders or a git range of a GitLab checkout.

    python -m include.classification PATH... [--format table|json|jsonl|csv] [--fail-on CLASS] [--jobs N]
                                             [--target gitlab_com|self_managed] [--tables FILE] [--catalogue FILE]
    python -m include.classification --git-range A..B --repo DIR [...]

Exit status: 0; 1 when --fail-on finds a migration at least that strict; 2 on usage errors.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from include.classification.classes import MigrationClass
from include.classification.config import (
    DEFAULT_CATALOGUE,
    DEFAULT_TABLES,
    TARGETS,
    CatalogueError,
    ClassifierConfig,
)
from include.classification.engine import classify_path, classify_source
from include.classification.report import FORMATS, write_report
from include.classification.result import json_line

_CONFIG: ClassifierConfig | None = None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m include.classification",
        description="Classify GitLab post-deploy migrations by what they do at PDM time "
        "(noop < background < data < schema_heavy < cleanup < unknown).",
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="migration files or folders (*.rb, recursively)"
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="report format (default: table)")
    parser.add_argument(
        "--fail-on",
        metavar="CLASS",
        type=_migration_class,
        help="exit 1 when a migration is at least this class (e.g. schema_heavy, for a merge-request job)",
    )
    parser.add_argument("--jobs", type=_positive, default=1, metavar="N", help="classify in N processes")
    parser.add_argument(
        "--target", choices=TARGETS, default="gitlab_com", help="installation the guards are judged for"
    )
    parser.add_argument(
        "--tables", default=DEFAULT_TABLES, metavar="FILE", help="large/over-limit table list (YAML)"
    )
    parser.add_argument(
        "--catalogue", default=DEFAULT_CATALOGUE, metavar="FILE", help="helper catalogue (YAML)"
    )
    parser.add_argument(
        "--git-range", metavar="A..B", help="classify the post-deploy migrations added between two commits"
    )
    parser.add_argument(
        "--repo", default=".", metavar="DIR", help="git checkout for --git-range (default: .)"
    )
    return parser


def _migration_class(value: str) -> MigrationClass:
    try:
        return MigrationClass.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def migration_files(paths: list[str]) -> list[str]:
    """Files as given, folders expanded to their *.rb files (sorted); raises FileNotFoundError naming the path."""
    found: list[str] = []
    for raw in paths:
        if os.path.isdir(raw):
            found.extend(sorted(_ruby_files(raw)))
        elif os.path.isfile(raw):
            found.append(raw)
        else:
            raise FileNotFoundError(f"{raw}: no such file or directory")
    return found


def _ruby_files(folder: str) -> list[str]:
    """*.rb files under a folder; scandir's cached entry types spare a stat per file."""
    found, pending = [], [folder]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    pending.append(entry.path)
                elif entry.name.endswith(".rb") and entry.is_file():
                    found.append(entry.path)
    return found


def _worker_init(config: ClassifierConfig) -> None:
    global _CONFIG
    _CONFIG = config


def _classify_chunk(paths: list[str]) -> list[tuple[str, str]]:
    """(class, JSON line) per file: serialising in the worker keeps the parent from becoming the bottleneck."""
    return list(_classify_each(paths))


def _classify_each(paths: Iterable[str]) -> Iterator[tuple[str, str]]:
    config = _CONFIG or ClassifierConfig()
    for path in paths:
        result = classify_path(path, config=config)
        yield result.migration_class.value, json_line(result)


def classify_files(files: list[str], config: ClassifierConfig, jobs: int) -> Iterator[tuple[str, str]]:
    """(class, JSON line) per file, in the order given, as they are ready (a run need not hold them all)."""
    names = [str(f) for f in files]
    # Syntax trees hold no reference cycles: reference counting frees them, and the cycle collector would
    # only rescan the catalogue for nothing, thousands of times in a large run.
    gc.freeze()
    if jobs <= 1 or len(names) < 2 * jobs:
        _worker_init(config)
        yield from _classify_each(names)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Contiguous chunks, a few per worker: little pickling, and a slow file cannot hold up one worker for long.
    pieces = jobs * 4
    size = -(-len(names) // pieces)
    chunks = [names[i : i + size] for i in range(0, len(names), size)]
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    )
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init, initargs=(config,)) as pool:
        for chunk in pool.map(_classify_chunk, chunks):
            yield from chunk


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.git_range and args.paths:
        parser.error("give PATH... or --git-range A..B, not both")
    if not args.git_range and not args.paths:
        parser.error("give PATH... (files or folders) or --git-range A..B")
    try:
        config = ClassifierConfig(args.target, str(args.catalogue), str(args.tables))
        config.catalogue()
        config.tables()
    except (CatalogueError, ValueError) as exc:
        parser.error(str(exc))
    items: Iterable[tuple[str, str]]
    if args.git_range:
        # Imported here: it brings in subprocess, which a run over files never needs.
        from include.classification.gitrange import GitRangeError, added_post_deploy_migrations

        try:
            sources = added_post_deploy_migrations(args.repo, args.git_range)
        except GitRangeError as exc:
            parser.error(str(exc))
        items = [
            (result.migration_class.value, json_line(result))
            for result in (classify_source(source, path, config=config) for path, source in sources)
        ]
    else:
        try:
            files = migration_files(args.paths)
        except FileNotFoundError as exc:
            parser.error(str(exc))
        items = classify_files(files, config, args.jobs)
    out = sys.stdout
    classes: set[str] = set()
    if args.format == "jsonl":
        # Streamed: holding thousands of results only to print them costs memory and time.
        write = out.write
        for cls, line in items:
            classes.add(cls)
            write(line)
            write("\n")
    else:
        results: list[dict[str, Any]] = []
        for cls, line in items:
            classes.add(cls)
            results.append(json.loads(line))
        write_report(results, out, args.format)
    out.flush()
    if args.fail_on is not None and any(MigrationClass(cls) >= args.fail_on for cls in classes):
        return 1
    return 0


if __name__ == "__main__":
    try:
        status = main()
    except BrokenPipeError:  # `| head` closed the pipe: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 0
    sys.exit(status)
