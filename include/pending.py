"""Which post-deploy migrations are pending: files added between the last PDM and the deployed SHA."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

POST_DEPLOY_DIRS = ("db/post_migrate/", "ee/db/post_migrate/")
_VERSION = re.compile(r"^(\d{14})_([a-z0-9_]+)\.rb$")


@dataclass(frozen=True)
class PendingFile:
    """A post-deploy migration file present at the deployed SHA and absent at the last PDM's SHA."""

    path: str
    version: str

    @property
    def database_dir(self) -> str:
        return "ee" if self.path.startswith("ee/") else "core"


def is_post_deploy_migration(path: str) -> bool:
    """True for `db/post_migrate/*.rb` and `ee/db/post_migrate/*.rb` (not nested helpers or specs)."""
    for prefix in POST_DEPLOY_DIRS:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            return "/" not in rest and rest.endswith(".rb")
    return False


def migration_version(path: str) -> str:
    """The 14-digit timestamp prefix of a migration file name, or "" when it has none."""
    match = _VERSION.match(path.rsplit("/", 1)[-1])
    return match.group(1) if match else ""


def pending_from_compare(diffs: list[dict[str, Any]]) -> list[PendingFile]:
    """Post-deploy migrations the compare adds, sorted in version order.

    A renamed file counts under its new path (Rails runs it by its version, which may have changed);
    a deleted file is not pending. A file without a version is kept with version "" so that
    classification reports it as unknown rather than the run silently skipping it.
    """
    found: dict[str, PendingFile] = {}
    for diff in diffs:
        if diff.get("deleted_file"):
            continue
        path = diff.get("new_path") or ""
        if not is_post_deploy_migration(path):
            continue
        if not (diff.get("new_file") or diff.get("renamed_file")):
            continue  # modified in place: it existed at the last PDM, so it already ran
        found[path] = PendingFile(path=path, version=migration_version(path))
    return sorted(found.values(), key=lambda f: (f.version or "99999999999999", f.path))


def cross_check(git_versions: list[str], admin_versions: dict[str, list[str]]) -> dict[str, Any]:
    """Compare the git-range view with what the instance reports pending, per database.

    The stricter view wins: a version the instance reports but the git range lacks is added as pending
    (it cannot be classified without its file, so it is unknown); a version only the git range has stays
    pending too (it may have been run by hand; a human should look). Either disagreement is reported.
    """
    admin_all = {v for versions in admin_versions.values() for v in versions}
    git = set(git_versions)
    only_admin = sorted(admin_all - git)
    only_git = sorted(git - admin_all)
    return {
        "databases": sorted(admin_versions),
        "only_in_admin_api": only_admin,
        "only_in_git_range": only_git,
        "agree": not only_admin and not only_git,
    }


def diffs_from_trees(old_paths: set[str], new_paths: set[str]) -> list[dict[str, Any]]:
    """Compare-like diffs of the post-deploy directories from their full listings at two SHAs.

    Used when GitLab's compare is cut at its diff limits (`compare_timeout`): a file listed at the new SHA and
    not at the old one is added (a rename shows as added under its new path, which is what discovery needs);
    a file only at the old SHA is deleted. Files present at both are left out: they ran with the old SHA.
    """
    diffs = [
        {"old_path": path, "new_path": path, "new_file": True, "renamed_file": False, "deleted_file": False}
        for path in sorted(new_paths - old_paths)
    ]
    diffs += [
        {"old_path": path, "new_path": path, "new_file": False, "renamed_file": False, "deleted_file": True}
        for path in sorted(old_paths - new_paths)
    ]
    return diffs


def admin_check_summary(
    git_versions: list[str], admin_versions: dict[str, list[str]], unavailable: dict[str, str]
) -> dict[str, Any]:
    """cross_check, plus the databases whose admin answer could not be had (404: endpoint absent or database
    not configured). Without any admin answer there is nothing to compare: `agree` is None, never True."""
    if not admin_versions:
        return {
            "databases": [],
            "only_in_admin_api": [],
            "only_in_git_range": [],
            "agree": None,
            "unavailable": dict(unavailable),
        }
    checked = cross_check(git_versions, admin_versions)
    if unavailable:
        checked["unavailable"] = dict(unavailable)
    return checked
