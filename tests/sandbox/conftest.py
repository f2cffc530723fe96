"""A small sandbox world and python-gitlab clients for the sandbox GitLab's own tests."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import gitlab
import pytest

from include.sandbox.gitlab_server import SandboxGitLab

TOKEN = "sandbox-admin-token-5e1f"
READ_ONLY = "sandbox-reader-token-77aa"
USER = "sandbox-user-token-31bc"
TRIGGER = "glptt-sandbox-trigger-0042"

APP = "gitlab-org/gitlab"
RELEASE_TOOLS = "gitlab-org/release/tools"
PRODUCTION = "gitlab-com/gl-infra/production"

BASE = "a" * 40  # the last PDM ran here
DEPLOYED = "b" * 40  # gprd runs this package
MASTER = "c" * 40  # newest commit, not deployed anywhere

OLD_MIGRATION = """class QueueOldBackfill < Gitlab::Database::Migration[2.2]
  def up
    queue_batched_background_migration('OldBackfill', :users, :id)
  end
end
"""
INDEX_MIGRATION = """class AddIndexOnBuildsToken < Gitlab::Database::Migration[2.2]
  disable_ddl_transaction!

  def up
    add_concurrent_index :ci_builds, :token_encrypted, name: 'index_ci_builds_on_token_encrypted'
  end
end
"""
HELPER = "module Gitlab\n  module Sandbox\n    VERSION = 1\n  end\nend\n"

SCENARIO: dict[str, Any] = {
    "projects": [
        {
            "id": 278964,
            "path_with_namespace": APP,
            "default_branch": "master",
            "commits": [
                {
                    "sha": BASE,
                    "message": "base",
                    "created_at": "-3d",
                    "files": {
                        "db/post_migrate/20261101000000_queue_old_backfill.rb": OLD_MIGRATION,
                        "lib/gitlab/sandbox.rb": HELPER,
                        "db/post_migrate/20261102000000_to_be_deleted.rb": "class ToBeDeleted\nend\n",
                    },
                },
                {
                    "sha": DEPLOYED,
                    "message": "Add the token index\n\nLong description.",
                    "created_at": "-1d",
                    "files_from": BASE,
                    "add": {
                        "ee/db/post_migrate/20261120000000_add_index_on_builds_token.rb": INDEX_MIGRATION
                    },
                    "delete": ["db/post_migrate/20261102000000_to_be_deleted.rb"],
                    "rename": {"lib/gitlab/sandbox.rb": "lib/gitlab/sandbox/version.rb"},
                },
                {
                    "sha": MASTER,
                    "files_from": DEPLOYED,
                    "add": {
                        "db/post_migrate/20261101000000_queue_old_backfill.rb": OLD_MIGRATION + "# edited\n"
                    },
                },
            ],
            "deployments": [
                {
                    "environment": "db/gprd",
                    "sha": BASE,
                    "ref": "17.6.1",
                    "status": "success",
                    "created_at": "-2d",
                },
                {
                    "environment": "gprd",
                    "sha": DEPLOYED,
                    "ref": "17.7.202611200620-bbbbbbbbbbb.2f0f30f3743",
                    "status": "success",
                    "created_at": "-4h",
                    "finished_at": "-3h",
                },
                {
                    "environment": "gstg",
                    "sha": DEPLOYED,
                    "ref": "17.7.x",
                    "status": "failed",
                    "created_at": "-6h",
                },
                {
                    "environment": "gstg",
                    "sha": MASTER,
                    "ref": "17.7.y",
                    "status": "running",
                    "created_at": "-10m",
                },
            ],
        },
        {
            "id": 7444821,
            "path_with_namespace": PRODUCTION,
            "issues": [
                {
                    "iid": 1,
                    "title": "Web apdex drop",
                    "labels": ["incident", "severity::2"],
                    "created_at": "-1h",
                },
                {"iid": 2, "title": "Patroni upgrade", "labels": ["change", "C2", "change::in-progress"]},
                {"iid": 3, "title": "Old incident", "labels": ["incident", "severity::1"], "state": "closed"},
                {"iid": 4, "title": "Untriaged report", "labels": [], "created_at": "-2d"},
            ],
        },
        {
            "id": 13083,
            "path_with_namespace": RELEASE_TOOLS,
            "trigger_tokens": [TRIGGER],
            "pipelines": [
                {
                    "id": 900,
                    "ref": "master",
                    "status": "running",
                    "source": "api",
                    "variables": {"DEPLOY_ENVIRONMENT": "gprd"},
                    "created_at": "-10m",
                }
            ],
            "pipeline_behaviour": {
                "pending_seconds": 1,
                "running_seconds": 3,
                "result": "success",
                "record_db_deployment": {
                    "project": APP,
                    "environment": "db/{PDM_ENVIRONMENT}",
                    "sha": "{PDM_SHA}",
                    "ref": "{PDM_PACKAGE}",
                },
            },
        },
    ],
    "admin_pending_migrations": {"main": [20261120000000], "ci": []},
    "read_only_tokens": [READ_ONLY],
    "user_tokens": [USER],
}


def scenario() -> dict[str, Any]:
    return copy.deepcopy(SCENARIO)


@pytest.fixture
def sandbox() -> Iterator[SandboxGitLab]:
    with SandboxGitLab(scenario(), token=TOKEN) as server:
        yield server


def client(sandbox: SandboxGitLab, token: str = TOKEN, **options: Any) -> gitlab.Gitlab:
    """python-gitlab as the product configures it: transient errors retried."""
    options.setdefault("retry_transient_errors", True)
    options.setdefault("timeout", 10)
    return gitlab.Gitlab(sandbox.url, private_token=token, **options)


@pytest.fixture
def gl(sandbox: SandboxGitLab) -> gitlab.Gitlab:
    return client(sandbox)
