"""Accuracy of the classifier on the labelled development set of real GitLab post-deploy migrations.

    python -m include.classification.evaluate [--labels FILE] [--cache DIR] [--format table|json] [--check]

The labels (`include/classification/devset/labels.csv`: repo, path, commit, sha256, year, reader_1, reader_2,
label, note; `label` is the adjudicated class) name each file by repository, commit and path; the texts are
not in the repository. They are read from a cache folder (`--cache`, else $PDM_DEVSET_CACHE, else
~/.cache/pdm-orchestrator/devset) at `<cache>/<commit>/<path>`. A file missing from the cache, or whose
sha256 differs from the row, is reported and left out. Each file is classified for GitLab.com.

Reported: files found and missing, exact accuracy, every prediction lighter than its label (by the class
order) and the dangerous ones among them (a heavy label predicted light), the confusion matrix, the
`unknown` rate among files whose label is not `unknown`, and each miss with the engine's one-line reason.
Exit status: 0; 1 with --check when the bar (issue 15) is not met; 2 on usage errors (unreadable labels).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from include.classification.classes import MigrationClass
from include.classification.config import TARGETS, CatalogueError, ClassifierConfig
from include.classification.engine import classify_source

C = MigrationClass
DEFAULT_LABELS = Path(__file__).resolve().parent / "devset" / "labels.csv"
COLUMNS = ("repo", "path", "commit", "sha256", "year", "reader_1", "reader_2", "label", "note")
# The bar of issue 15: at least 97% exact, nothing lighter than its label, at most 1% `unknown`.
BAR_ACCURACY = 0.97
BAR_LIGHTER = 0
BAR_UNKNOWN_RATE = 0.01
# A label this strict predicted as one of the light classes is a dangerous under-classification.
HEAVY = frozenset({C.SCHEMA_HEAVY, C.CLEANUP, C.UNKNOWN})
LIGHT = frozenset({C.NOOP, C.BACKGROUND, C.DATA})


class LabelsError(ValueError):
    """The labels file cannot be used; the message names the file, and the line when it is one row."""


def default_cache() -> Path:
    """Where the development set's file texts are kept, unless --cache says otherwise."""
    configured = os.environ.get("PDM_DEVSET_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path("~/.cache/pdm-orchestrator/devset").expanduser()


@dataclass(frozen=True)
class LabelledFile:
    """One row of labels.csv."""

    line: int
    repo: str
    path: str
    commit: str
    sha256: str
    label: MigrationClass


@dataclass
class Outcome:
    """One classified file: its label, the prediction and the engine's first reason."""

    row: LabelledFile
    predicted: MigrationClass
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": self.row.repo,
            "path": self.row.path,
            "commit": self.row.commit,
            "label": self.row.label.value,
            "predicted": self.predicted.value,
            "reason": self.reason,
        }


@dataclass
class Evaluation:
    """Everything the command reports."""

    labels: str
    cache: str
    rows: int = 0
    missing: list[dict[str, str]] = field(default_factory=list)
    mismatched: list[dict[str, str]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def exact(self) -> int:
        return sum(1 for o in self.outcomes if o.predicted is o.row.label)

    @property
    def accuracy(self) -> float | None:
        return self.exact / len(self.outcomes) if self.outcomes else None

    @property
    def lighter(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.predicted < o.row.label]

    @property
    def dangerous(self) -> list[Outcome]:
        return [o for o in self.lighter if o.row.label in HEAVY and o.predicted in LIGHT]

    @property
    def known_labels(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.row.label is not C.UNKNOWN]

    @property
    def unknown_rate(self) -> float | None:
        known = self.known_labels
        if not known:
            return None
        return sum(1 for o in known if o.predicted is C.UNKNOWN) / len(known)

    @property
    def misses(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.predicted is not o.row.label]

    def confusion(self) -> dict[str, dict[str, int]]:
        """label -> predicted -> count, every class present in both directions."""
        matrix = {label.value: {predicted.value: 0 for predicted in C} for label in C}
        for outcome in self.outcomes:
            matrix[outcome.row.label.value][outcome.predicted.value] += 1
        return matrix

    def meets_bar(self) -> bool:
        accuracy, unknown_rate = self.accuracy, self.unknown_rate
        return (
            accuracy is not None
            and accuracy >= BAR_ACCURACY
            and len(self.lighter) <= BAR_LIGHTER
            and (unknown_rate or 0.0) <= BAR_UNKNOWN_RATE
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "cache": self.cache,
            "rows": self.rows,
            "found": len(self.outcomes),
            "missing": self.missing,
            "sha256_mismatch": self.mismatched,
            "exact": self.exact,
            "accuracy": self.accuracy,
            "lighter": [o.to_dict() for o in self.lighter],
            "dangerous": [o.to_dict() for o in self.dangerous],
            "known_labels": len(self.known_labels),
            "unknown_rate": self.unknown_rate,
            "confusion": self.confusion(),
            "misses": [o.to_dict() for o in self.misses],
            "bar": {"accuracy": BAR_ACCURACY, "lighter": BAR_LIGHTER, "unknown_rate": BAR_UNKNOWN_RATE},
            "meets_bar": self.meets_bar(),
        }


def read_labels(path: str | Path) -> list[LabelledFile]:
    """The rows of a labels file; raises LabelsError naming the file (and line) for anything malformed."""
    name = str(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            missing = [column for column in COLUMNS if column not in header]
            if missing:
                raise LabelsError(
                    f"{name}: missing column(s) {', '.join(missing)} (expected {','.join(COLUMNS)})"
                )
            rows = []
            for record in reader:
                line = reader.line_num
                values = {key: (record.get(key) or "").strip() for key in COLUMNS}
                for required in ("path", "commit", "sha256", "label"):
                    if not values[required]:
                        raise LabelsError(f"{name}: line {line}: empty {required}")
                try:
                    label = MigrationClass.parse(values["label"])
                except ValueError as exc:
                    raise LabelsError(f"{name}: line {line}: label: {exc}") from None
                if Path(values["path"]).is_absolute() or ".." in Path(values["path"]).parts:
                    raise LabelsError(f"{name}: line {line}: path must be relative to the repository")
                rows.append(
                    LabelledFile(
                        line,
                        values["repo"],
                        values["path"],
                        values["commit"],
                        values["sha256"].lower(),
                        label,
                    )
                )
            return rows
    except OSError as exc:
        raise LabelsError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    except csv.Error as exc:
        raise LabelsError(f"{name}: not valid CSV ({exc})") from exc


def evaluate(
    labels: str | Path = DEFAULT_LABELS, cache: str | Path | None = None, *, target: str = "gitlab_com"
) -> Evaluation:
    """Classify every labelled file found in the cache and compare with its label."""
    cache_dir = Path(cache) if cache is not None else default_cache()
    rows = read_labels(labels)
    config = ClassifierConfig(target=target)
    config.catalogue()  # a broken catalogue is one error now, not an `unknown` for every file
    evaluation = Evaluation(labels=str(labels), cache=str(cache_dir), rows=len(rows))
    for row in rows:
        where = {"repo": row.repo, "path": row.path, "commit": row.commit}
        try:
            data = (cache_dir / row.commit / row.path).read_bytes()
        except OSError:
            evaluation.missing.append(where)
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != row.sha256:
            evaluation.mismatched.append({**where, "expected": row.sha256, "found": digest})
            continue
        result = classify_source(data, row.path, config=config)
        reason = result.reasons[0] if result.reasons else ""
        evaluation.outcomes.append(Outcome(row, result.migration_class, reason))
    return evaluation


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def render_table(evaluation: Evaluation, out: TextIO) -> None:
    """The human report: summary, lighter and dangerous lists, confusion matrix, misses."""
    found = len(evaluation.outcomes)
    write = out.write
    write(f"labels: {evaluation.labels} ({evaluation.rows} rows)\ncache:  {evaluation.cache}\n")
    write(
        f"files found: {found}, missing: {len(evaluation.missing)}, "
        f"sha256 mismatch (skipped): {len(evaluation.mismatched)}\n"
    )
    for item in evaluation.missing[:20]:
        write(f"  missing  {item['commit']}/{item['path']}\n")
    if len(evaluation.missing) > 20:
        write(f"  ... {len(evaluation.missing) - 20} more missing\n")
    for item in evaluation.mismatched:
        write(f"  sha256 differs  {item['commit']}/{item['path']} (found {item['found'][:12]}…)\n")
    write(
        f"exact: {evaluation.exact}/{found} = {_percent(evaluation.accuracy)} (bar >= {BAR_ACCURACY:.0%})\n"
    )
    write(f"lighter than the label: {len(evaluation.lighter)} (bar {BAR_LIGHTER})\n")
    for outcome in evaluation.lighter:
        write(
            f"  lighter  {outcome.row.path}: label {outcome.row.label.value}, predicted {outcome.predicted.value}\n"
        )
    write(f"dangerous under-classifications (heavy label, light prediction): {len(evaluation.dangerous)}\n")
    for outcome in evaluation.dangerous:
        write(
            f"  DANGER   {outcome.row.path}: label {outcome.row.label.value}, predicted {outcome.predicted.value}\n"
        )
    known = len(evaluation.known_labels)
    write(
        f"unknown among files whose label is not unknown: {_percent(evaluation.unknown_rate)} "
        f"of {known} (bar <= {BAR_UNKNOWN_RATE:.0%})\n"
    )
    write("confusion matrix (rows: label, columns: predicted)\n")
    names = [c.value for c in C]
    width = max(len(n) for n in names) + 1
    write(" " * width + " ".join(f"{n:>{width}}" for n in names) + "\n")
    for label, predicted in evaluation.confusion().items():
        write(f"{label:<{width}}" + " ".join(f"{predicted[n]:>{width}}" for n in names) + "\n")
    write(f"misses: {len(evaluation.misses)}\n")
    for outcome in evaluation.misses:
        write(
            f"  {outcome.row.path} ({outcome.row.commit[:10]}): label {outcome.row.label.value}, "
            f"predicted {outcome.predicted.value}: {outcome.reason}\n"
        )
    write(f"bar met: {'yes' if evaluation.meets_bar() else 'no'}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m include.classification.evaluate",
        description="Accuracy of the classifier on the labelled development set of real post-deploy migrations.",
    )
    parser.add_argument("--labels", default=str(DEFAULT_LABELS), metavar="FILE", help="labels CSV")
    parser.add_argument(
        "--cache",
        default=None,
        metavar="DIR",
        help="file texts at DIR/<commit>/<path> (default: $PDM_DEVSET_CACHE or ~/.cache/pdm-orchestrator/devset)",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="report format")
    parser.add_argument("--target", choices=TARGETS, default="gitlab_com", help="installation judged for")
    parser.add_argument("--check", action="store_true", help="exit 1 when the bar of issue 15 is not met")
    return parser


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        evaluation = evaluate(args.labels, args.cache, target=args.target)
    except (LabelsError, CatalogueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        json.dump(evaluation.to_dict(), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        render_table(evaluation, out)
    return 1 if args.check and not evaluation.meets_bar() else 0


if __name__ == "__main__":
    sys.exit(main())
