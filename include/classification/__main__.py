"""Command line: classify post-deploy migrations.

    python -m include.classification PATH... [--format table|json|jsonl|csv] [--fail-on CLASS] [--jobs N]
    python -m include.classification --git-range A..B --repo DIR

Exit 0; 1 when --fail-on finds a migration at least that strict; 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from include.classification.classes import MigrationClass
from include.classification.engine import ClassifierConfig, classify_path, classify_source
from include.pending import is_post_deploy_migration


def _files(paths: list[str], parser: argparse.ArgumentParser) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.rb") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            parser.error(f"{raw}: no such file or directory")
    return found


def _git_range(spec: str, repo: str, parser: argparse.ArgumentParser, config: ClassifierConfig) -> list[dict]:
    if ".." not in spec:
        parser.error(f"--git-range {spec!r}: expected A..B")
    start, end = spec.split("..", 1)
    diff = subprocess.run(
        [
            "git",
            "-C",
            repo,
            "diff",
            "--name-status",
            "-M",
            f"{start}",
            f"{end}",
            "--",
            "db/post_migrate",
            "ee/db/post_migrate",
        ],
        capture_output=True,
        text=True,
    )
    if diff.returncode != 0:
        parser.error(f"--git-range {spec}: git diff failed in {repo}: {diff.stderr.strip()}")
    results = []
    for line in diff.stdout.splitlines():
        parts = line.split("\t")
        status, path = parts[0], parts[-1]
        if status.startswith(("A", "R", "C")) and is_post_deploy_migration(path):
            show = subprocess.run(["git", "-C", repo, "show", f"{end}:{path}"], capture_output=True)
            results.append(classify_source(show.stdout, path, config=config).to_dict())
    return sorted(results, key=lambda r: (r["version"], r["path"]))


def _classify_one(args: tuple[str, str, str, str]) -> dict:
    path, target, catalogue, tables = args
    return classify_path(path, config=ClassifierConfig(target, catalogue, tables)).to_dict()


def render_table(results: list[dict]) -> str:
    rows = [("VERSION", "CLASS", "DATABASE", "TABLE SIZE", "PATH", "WHY")]
    for r in results:
        rows.append(
            (
                r["version"] or "-",
                r["class"],
                r["database"],
                r["table_size"] or "-",
                r["path"],
                (r["reasons"] or [""])[0],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 5 else cell for i, cell in enumerate(row)) for row in rows
    ]
    counts = Counter(r["class"] for r in results)
    summary = ", ".join(f"{cls.value}: {counts[cls.value]}" for cls in MigrationClass if counts[cls.value])
    lines += ["", f"{len(results)} migrations — {summary or 'none'}"]
    conflicts = [f"{r['path']}: {c}" for r in results for c in r["conflicts"]]
    if conflicts:
        lines += ["", "Annotation conflicts:", *conflicts]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.classification", description="Classify GitLab post-deploy migrations."
    )
    parser.add_argument("paths", nargs="*", help="migration files or directories (recursively *.rb)")
    parser.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table")
    parser.add_argument("--fail-on", metavar="CLASS", help="exit 1 if any migration is at least this class")
    parser.add_argument("--jobs", type=int, default=1, help="classify in N processes")
    parser.add_argument("--target", choices=("gitlab_com", "self_managed"), default="gitlab_com")
    parser.add_argument("--tables", help="large-table list (YAML)", default=ClassifierConfig.tables_path)
    parser.add_argument(
        "--catalogue", help="helper catalogue (YAML)", default=ClassifierConfig.catalogue_path
    )
    parser.add_argument(
        "--git-range", metavar="A..B", help="classify post-deploy migrations added between two commits"
    )
    parser.add_argument("--repo", default=".", help="the git checkout for --git-range")
    args = parser.parse_args(argv)
    fail_on = None
    if args.fail_on:
        try:
            fail_on = MigrationClass.parse(args.fail_on)
        except ValueError as exc:
            parser.error(f"--fail-on: {exc}")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    for option, value in (("--tables", args.tables), ("--catalogue", args.catalogue)):
        if not Path(value).is_file():
            parser.error(f"{option} {value}: no such file")
    config = ClassifierConfig(args.target, args.catalogue, args.tables)
    if args.git_range:
        results = _git_range(args.git_range, args.repo, parser, config)
    else:
        if not args.paths:
            parser.error("give PATH... or --git-range A..B")
        files = _files(args.paths, parser)
        if args.jobs > 1 and len(files) > 1:
            from concurrent.futures import ProcessPoolExecutor

            work = [(str(f), args.target, args.catalogue, args.tables) for f in files]
            with ProcessPoolExecutor(args.jobs) as pool:
                results = list(pool.map(_classify_one, work, chunksize=max(1, len(work) // (args.jobs * 8))))
        else:
            results = [classify_path(f, config=config).to_dict() for f in files]
    out = sys.stdout
    if args.format == "jsonl":
        out.write("".join(json.dumps(r) + "\n" for r in results))
    elif args.format == "json":
        json.dump(results, out, indent=2)
        out.write("\n")
    elif args.format == "csv":
        import pandas as pd

        frame = pd.DataFrame(results)
        for column in ("operations", "reasons", "conflicts"):
            if column in frame:
                frame[column] = frame[column].map(json.dumps)
        frame.to_csv(out, index=False)
    else:
        out.write(render_table(results) + "\n")
    if fail_on is not None and any(MigrationClass.parse(r["class"]) >= fail_on for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
