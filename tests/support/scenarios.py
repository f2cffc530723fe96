"""Builds sandbox GitLab worlds for end-to-end tests: a deployed package ahead of the last PDM run."""

from __future__ import annotations

from typing import Any

APP = "gitlab-org/gitlab"
RELEASE_TOOLS = "gitlab-org/release/tools"
OLD_SHA = "1" * 40
NEW_SHA = "2" * 40
PACKAGE = "17.6.202611240620-2222222222a.3333333333b"

BACKGROUND = """# frozen_string_literal: true

class QueueBackfillIssueSearchData < Gitlab::Database::Migration[2.2]
  milestone '17.6'
  restrict_gitlab_migration gitlab_schema: :gitlab_main

  MIGRATION = 'BackfillIssueSearchData'

  def up
    queue_batched_background_migration(MIGRATION, :issues, :id, job_interval: 2.minutes, batch_size: 5_000)
  end

  def down
    delete_batched_background_migration(MIGRATION, :issues, :id, [])
  end
end
"""

CLEANUP = """# frozen_string_literal: true

class RemoveLegacyTraceColumnFromCiBuilds < Gitlab::Database::Migration[2.2]
  milestone '17.6'
  disable_ddl_transaction!

  def up
    remove_column :ci_builds_metadata, :legacy_trace
  end

  def down
    add_column :ci_builds_metadata, :legacy_trace, :text
  end
end
"""

OLD = """class AlreadyRan < Gitlab::Database::Migration[2.2]
  milestone '17.5'

  def up
    queue_batched_background_migration('Old', :users, :id)
  end
end
"""


def world(
    pending: dict[str, str] | None = None,
    *,
    pipeline_result: str = "success",
    running_seconds: int = 2,
    extra_deployments: list[dict[str, Any]] | None = None,
    deployed_ago: str = "-5h",
) -> dict[str, Any]:
    """gprd and gstg run PACKAGE (NEW_SHA); db/gprd last ran at OLD_SHA; `pending` files were added since.
    The gprd deployment was run by CI (`deployable` with finished_at), the others recorded through the API
    (`deployable: null`, finished at updated_at): both shapes GitLab answers go through every test.

    db/gstg already ran NEW_SHA, so nothing waits on staging.
    """
    base_files = {"db/post_migrate/20261001000000_already_ran.rb": OLD}
    deployments = [
        {  # run by a CI job: GitLab gives the finish time only as deployable.finished_at
            "environment": "gprd",
            "sha": NEW_SHA,
            "ref": PACKAGE,
            "status": "success",
            "created_at": "-6h",
            "finished_at": deployed_ago,
            "created_by": "ci",
        },
        {
            "environment": "gstg",
            "sha": NEW_SHA,
            "ref": PACKAGE,
            "status": "success",
            "created_at": "-8h",
            "finished_at": "-7h",
        },
        {
            "environment": "db/gprd",
            "sha": OLD_SHA,
            "ref": "master",
            "status": "success",
            "created_at": "-2d",
            "finished_at": "-2d",
        },
        {
            "environment": "db/gstg",
            "sha": NEW_SHA,
            "ref": PACKAGE,
            "status": "success",
            "created_at": "-6h",
            "finished_at": "-6h",
        },
        *(extra_deployments or []),
    ]
    return {
        "projects": [
            {
                "id": 278964,
                "path_with_namespace": APP,
                "default_branch": "master",
                "commits": [
                    {"sha": OLD_SHA, "message": "base", "files": base_files},
                    {
                        "sha": NEW_SHA,
                        "message": "new package",
                        "files_from": OLD_SHA,
                        "add": dict(pending or {}),
                    },
                ],
                "deployments": deployments,
                "issues": [],
            },
            {
                "id": 2,
                "path_with_namespace": "gitlab-com/gl-infra/production",
                "default_branch": "master",
                "issues": [],
            },
            {
                "id": 13083,
                "path_with_namespace": RELEASE_TOOLS,
                "default_branch": "master",
                "pipelines": [],
                "pipeline_behaviour": {
                    "pending_seconds": 1,
                    "running_seconds": running_seconds,
                    "result": pipeline_result,
                    "record_db_deployment": {
                        "project": APP,
                        "environment": "db/{PDM_ENVIRONMENT}",
                        "sha": "{PDM_SHA}",
                        "ref": "{PDM_PACKAGE}",
                    },
                },
            },
        ],
        "admin_pending_migrations": {"main": [], "ci": []},
    }
