"""Deployments and auto-deploy packages as GitLab reports them, in the product's own types."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from include.isotime import parse_iso_instant

ACTIVE_DEPLOYMENT_STATUSES = ("created", "running", "blocked")
FINISHED_DEPLOYMENT_STATUSES = ("success", "failed", "canceled", "skipped")

# major.minor.YYYYMMDDHHMM-<rails sha>.<omnibus sha>; omnibus tags use "+" instead of "-".
_PACKAGE = re.compile(
    r"^(?P<major>\d+)\.(?P<minor>\d+)\.(?P<stamp>\d{12})[-+](?P<rails>[0-9a-f]{7,40})\.(?P<omnibus>[0-9a-f]{7,40})$"
)


@dataclass(frozen=True)
class PackageVersion:
    """An auto-deploy package version string, parsed."""

    text: str
    major: int
    minor: int
    built_at: str  # YYYYMMDDHHMM as in the name
    rails_sha: str
    omnibus_sha: str

    @classmethod
    def parse(cls, text: str) -> PackageVersion | None:
        """The parsed package, or None when the ref is not an auto-deploy package name."""
        match = _PACKAGE.match(text.strip())
        if not match:
            return None
        return cls(
            text=text.strip(),
            major=int(match["major"]),
            minor=int(match["minor"]),
            built_at=match["stamp"],
            rails_sha=match["rails"],
            omnibus_sha=match["omnibus"],
        )


@dataclass(frozen=True)
class Deployment:
    """One GitLab deployment of the application (gstg, gprd) or of a PDM run (db/gstg, db/gprd)."""

    id: int
    environment: str
    sha: str
    ref: str
    status: str
    created_at: datetime | None
    finished_at: datetime | None

    @property
    def package(self) -> PackageVersion | None:
        return PackageVersion.parse(self.ref)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("created_at", "finished_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["package"] = self.ref if self.package else None
        return data

    @classmethod
    def from_gitlab(cls, data: dict[str, Any]) -> Deployment:
        """Build from GitLab's deployment JSON (the `environment` object or a plain name).

        GitLab's REST deployment has no `finished_at` (API::Entities::Deployment); see finished_time.
        """
        environment = data.get("environment")
        name = str(environment.get("name") or "") if isinstance(environment, dict) else str(environment or "")
        status = str(data.get("status") or "")
        return cls(
            id=int(data["id"]),
            environment=name,
            sha=str(data.get("sha") or ""),
            ref=str(data.get("ref") or ""),
            status=status,
            created_at=parse_time(data.get("created_at")),
            finished_at=finished_time(data, status),
        )


def finished_time(data: dict[str, Any], status: str) -> datetime | None:
    """When a deployment finished, from what GitLab's REST answer has.

    A deployment run by a CI job carries the job (`deployable`) and its `finished_at`: the job's end is when
    GitLab moved the deployment to its final status. A deployment recorded through the API (release tooling;
    `deployable` is null) changes only at its status transitions, so the `updated_at` of a finished one is
    the time of its last transition — when it finished. Unfinished deployments have no finish time.
    """
    if status not in FINISHED_DEPLOYMENT_STATUSES:
        return None
    deployable = data.get("deployable")
    if isinstance(deployable, dict) and deployable.get("finished_at"):
        return parse_time(deployable["finished_at"])
    return parse_time(data.get("updated_at"))


def parse_time(value: Any) -> datetime | None:
    """GitLab's ISO-8601 timestamps (with `Z`) as aware datetimes; None for missing values."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return parse_iso_instant(str(value))
