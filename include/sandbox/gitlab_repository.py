"""The sandbox's repository model: GitLab-style diffs between file sets, tree listings and diff limits."""

from __future__ import annotations

import difflib
import hashlib
from typing import Any


def changed_files(old: dict[str, str], new: dict[str, str]) -> list[dict[str, Any]]:
    """GitLab-style diffs between two file sets; a path that vanished while its content reappeared
    under a new path is reported once, as a rename (as git's rename detection does for identical files)."""
    added = [p for p in new if p not in old]
    removed = [p for p in old if p not in new]
    renames: dict[str, str] = {}
    for path in added:
        source = next((r for r in removed if old[r] == new[path] and r not in renames.values()), None)
        if source is not None:
            renames[path] = source
    diffs = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after or path in renames.values():
            continue
        source = renames.get(path)
        old_path = source or path
        old_text = old.get(old_path) if source else before
        diffs.append(
            {
                "old_path": old_path,
                "new_path": path,
                "a_mode": "0" if before is None and source is None else "100644",
                "b_mode": "0" if after is None else "100644",
                "new_file": before is None and source is None,
                "renamed_file": source is not None,
                "deleted_file": after is None,
                "generated_file": False,
                "collapsed": False,
                "too_large": False,
                "diff": _unified_diff(old_text or "", after or ""),
            }
        )
    return diffs


def _unified_diff(before: str, after: str) -> str:
    """The hunk text GitLab puts in `diff`: no ---/+++ header lines, hunks only."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3)
    return "".join(f"{line}\n" for line in list(lines)[2:])


def tree_entries(files: dict[str, str], path: str) -> list[dict[str, Any]] | None:
    """The entries directly under `path`, as GitLab sorts them: directories, then files, each by name.
    None when nothing exists under `path` (GitLab: 404 Tree Not Found)."""
    prefix = path.strip("/") + "/" if path.strip("/") else ""
    trees: set[str] = set()
    blobs: dict[str, str] = {}
    for file_path, content in files.items():
        if not file_path.startswith(prefix):
            continue
        rest = file_path[len(prefix) :]
        if "/" in rest:
            trees.add(rest.split("/", 1)[0])
        else:
            blobs[rest] = content
    if prefix and not trees and not blobs:
        return None

    def object_id(*parts: str) -> str:
        return hashlib.sha1("\0".join(parts).encode(), usedforsecurity=False).hexdigest()

    entries = [
        {
            "id": object_id("tree", prefix + name),
            "name": name,
            "type": "tree",
            "path": prefix + name,
            "mode": "040000",
        }
        for name in sorted(trees)
    ]
    entries += [
        {
            "id": object_id("blob", blobs[name]),
            "name": name,
            "type": "blob",
            "path": prefix + name,
            "mode": "100644",
        }
        for name in sorted(blobs)
    ]
    return entries


def truncate(
    diffs: list[dict[str, Any]], max_files: int, max_lines: int
) -> tuple[list[dict[str, Any]], bool]:
    """GitLab's diff limits (Gitlab::Git::DiffCollection): stop before the file that reaches max_files,
    max_lines or max_files × 5 KB; the second value (compare_timeout) says whether anything was cut."""
    max_bytes = max_files * 5 * 1024
    kept: list[dict[str, Any]] = []
    lines = size = 0
    for diff in diffs:
        if len(kept) >= max_files:
            return kept, True
        lines += len(diff["diff"].splitlines())
        size += len(diff["diff"].encode())
        if lines >= max_lines or size >= max_bytes:
            return kept, True
        kept.append(diff)
    return kept, False
