"""Post-deploy migrations added between two commits of a local GitLab checkout (via the `git` command)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

POST_DEPLOY_DIRS = ("db/post_migrate/", "ee/db/post_migrate/")
_MIGRATION_FILE = re.compile(r"^\d+_[a-z0-9_]+\.rb$")


class GitRangeError(ValueError):
    """The range or the checkout cannot be read; the message says which and why."""


def is_post_deploy_migration(path: str) -> bool:
    """`db/post_migrate/<version>_<name>.rb` or the same under `ee/` (not helpers in sub-folders)."""
    for prefix in POST_DEPLOY_DIRS:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            return "/" not in rest and bool(_MIGRATION_FILE.match(rest))
    return False


def _git(repo: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, timeout=120, check=False)
    except FileNotFoundError as exc:
        raise GitRangeError("the `git` command is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitRangeError(f"git {' '.join(args[:2])} in {repo} took over 120 s") from exc


def added_post_deploy_migrations(repo: str | Path, spec: str) -> list[tuple[str, bytes]]:
    """(path, source at B) of every post-deploy migration added (or renamed into place) in A..B, by version."""
    repo = str(repo)
    if spec.count("..") != 1 or "..." in spec:
        raise GitRangeError(f"--git-range {spec!r}: expected A..B (two commits, tags or branches)")
    start, end = spec.split("..")
    if not start or not end:
        raise GitRangeError(f"--git-range {spec!r}: both ends are needed (A..B)")
    if not Path(repo).is_dir():
        raise GitRangeError(f"--repo {repo}: no such directory")
    probe = _git(repo, "rev-parse", "--git-dir")
    if probe.returncode != 0:
        raise GitRangeError(f"--repo {repo}: not a git checkout")
    for ref in (start, end):
        check = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if check.returncode != 0:
            raise GitRangeError(f"--git-range {spec}: {ref!r} is not a commit in {repo}")
    diff = _git(repo, "diff", "--name-status", "-M", "-z", start, end, "--", *POST_DEPLOY_DIRS)
    if diff.returncode != 0:
        raise GitRangeError(
            f"git diff {spec} failed in {repo}: {diff.stderr.decode(errors='replace').strip()}"
        )
    fields = diff.stdout.decode("utf-8", "replace").split("\0")
    added: list[str] = []
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i]
        if status[:1] in ("R", "C"):
            path = fields[i + 2]
            i += 3
        else:
            path = fields[i + 1]
            i += 2
        if status[:1] in ("A", "R", "C") and is_post_deploy_migration(path):
            added.append(path)
    sources = []
    for path in added:
        shown = _git(repo, "show", f"{end}:{path}")
        if shown.returncode != 0:
            raise GitRangeError(
                f"git show {end}:{path} failed: {shown.stderr.decode(errors='replace').strip()}"
            )
        sources.append((path, shown.stdout))
    return sorted(sources, key=lambda item: (Path(item[0]).name, item[0]))
