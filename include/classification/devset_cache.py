"""Fill and inspect the cache of the development set's file texts (the texts are never in the repository).

    python -m include.classification.devset_cache missing [--labels FILE] [--cache DIR]
    python -m include.classification.devset_cache store [--labels FILE] [--cache DIR] < answers.json

`missing` lists the labelled rows whose text is absent from the cache or differs from the row's sha256, one
`repo path commit` line each, so a reader knows what is left to fetch. `store` takes one or more answers of
the code index's file reader (JSON objects carrying repo, path, commit, offset, text, total_chars), pastes
a file's pages together in offset order and writes the whole text to `<cache>/<commit>/<path>`. A file
with a row in the labels is checked against the row's sha256 and left out when it differs; a file without
a row is stored and its sha256 printed, for the new row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from include.classification.evaluate import DEFAULT_LABELS, LabelsError, default_cache, read_labels

PARTIAL = ".partial"


def _answers(stream: str) -> list[dict[str, Any]]:
    """The JSON objects of a stream holding one or more answers back to back."""
    decoder = json.JSONDecoder()
    answers, index = [], 0
    while index < len(stream):
        while index < len(stream) and stream[index].isspace():
            index += 1
        if index >= len(stream):
            break
        answer, index = decoder.raw_decode(stream, index)
        answers.append(answer)
    return answers


def _target(cache: Path, commit: str, path: str) -> Path:
    relative = Path(path)
    if relative.is_absolute() or ".." in relative.parts or len(commit) != 40:
        raise ValueError(f"refusing path {path!r} at commit {commit!r}")
    return cache / commit / relative


def store(stream: str, cache: Path, expected: dict[tuple[str, str], str]) -> list[str]:
    """Write each complete file of the answers; return one report line per page."""
    report = []
    for answer in _answers(stream):
        commit, path, text = answer["commit"], answer["path"], answer["text"]
        offset, total = int(answer.get("offset", 0)), int(answer["total_chars"])
        target = _target(cache, commit, path)
        partial = _target(cache / PARTIAL, commit, path)
        sofar = partial.read_text(encoding="utf-8") if offset and partial.exists() else ""
        if len(sofar) != offset:
            report.append(f"GAP {path}: page at offset {offset}, have {len(sofar)} characters")
            continue
        whole = sofar + text
        if len(whole) < total:
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(whole, encoding="utf-8")
            report.append(f"PART {path}: {len(whole)}/{total}, next offset {len(whole)}")
            continue
        data = whole.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        want = expected.get((commit, path))
        if want is not None and want != digest:
            report.append(f"MISMATCH {path}: sha256 {digest}, the row says {want}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        partial.unlink(missing_ok=True)
        report.append(f"{'OK' if want else 'NEW'} {path} {commit} sha256={digest}")
    return report


def missing(cache: Path, labels: Path) -> list[str]:
    """`repo path commit` of every row whose cached text is absent or differs."""
    lines = []
    for row in read_labels(labels):
        try:
            digest = hashlib.sha256(_target(cache, row.commit, row.path).read_bytes()).hexdigest()
        except OSError:
            digest = ""
        if digest != row.sha256:
            lines.append(f"{row.repo} {row.path} {row.commit}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.classification.devset_cache")
    parser.add_argument("command", choices=("missing", "store"))
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    cache = args.cache if args.cache is not None else default_cache()
    try:
        if args.command == "missing":
            lines = missing(cache, args.labels)
            print("\n".join(lines + [f"{len(lines)} missing"]))
            return 0
        expected = {(row.commit, row.path): row.sha256 for row in read_labels(args.labels)}
        lines = store(sys.stdin.read(), cache, expected)
    except (LabelsError, ValueError, KeyError) as exc:
        print(f"devset_cache: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 1 if any(line.startswith(("MISMATCH", "GAP")) for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
