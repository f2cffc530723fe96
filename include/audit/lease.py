"""One holder per environment: a lease in the audit database, taken before a PDM pipeline is created.

Every run kind (scheduled, manual, backfill) and every worker goes through the same row, so two runs that
wake at the same window opening cannot both create a pipeline. The lease expires (`expires_at`) so that a
crashed holder does not block the environment forever; the holder renews it when it resumes, and releases
it when the run records its outcome. Times are UTC ISO strings, compared in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from include.audit.schema import LEASE_TABLE
from include.audit.store import AuditStore


@dataclass(frozen=True)
class Lease:
    """Who holds an environment now, and until when; `granted` says whether the asker holds it."""

    environment: str
    granted: bool
    holder: str
    run_id: str | None
    expires_at: datetime

    def describe(self) -> str:
        return f"{self.environment} is held by decision {self.holder} (run {self.run_id}) until {self.expires_at.isoformat()}"


def acquire_lease(
    store: AuditStore,
    environment: str,
    holder: str,
    ttl: timedelta,
    run_id: str | None = None,
    now: datetime | None = None,
) -> Lease:
    """Take (or renew, when `holder` already has it) the environment's lease; refused while another live
    holder has it. One transaction, serialised per environment, so two askers never both get it."""
    now = now or datetime.now(UTC)
    expires = now + ttl
    with store._transaction() as cur:
        if store.target.dialect == "postgres":
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"pdm_lease:{environment}",))
        cur.execute(
            store._sql(f"SELECT holder, run_id, expires_at FROM {LEASE_TABLE} WHERE environment = %s"),  # noqa: S608 - constant identifier
            (environment,),
        )
        row = cur.fetchone()
        if row is None:
            cur.execute(
                store._sql(
                    f"INSERT INTO {LEASE_TABLE} (environment, holder, run_id, acquired_at, expires_at) "  # noqa: S608
                    "VALUES (%s, %s, %s, %s, %s)"
                ),
                (environment, holder, run_id, now.isoformat(), expires.isoformat()),
            )
            return Lease(environment, True, holder, run_id, expires)
        current_holder, current_run, current_expiry = row[0], row[1], _time(row[2])
        if current_holder != holder and current_expiry > now:
            return Lease(environment, False, current_holder, current_run, current_expiry)
        cur.execute(
            store._sql(
                f"UPDATE {LEASE_TABLE} SET holder = %s, run_id = %s, acquired_at = %s, expires_at = %s "  # noqa: S608
                "WHERE environment = %s"
            ),
            (holder, run_id, now.isoformat(), expires.isoformat(), environment),
        )
        return Lease(environment, True, holder, run_id, expires)


def release_lease(store: AuditStore, environment: str, holder: str) -> bool:
    """Give the lease back if `holder` has it; True when something was released."""
    with store._transaction() as cur:
        cur.execute(
            store._sql(f"DELETE FROM {LEASE_TABLE} WHERE environment = %s AND holder = %s"),  # noqa: S608
            (environment, holder),
        )
        return (cur.rowcount or 0) > 0


def current_lease(store: AuditStore, environment: str) -> Lease | None:
    """The lease row of an environment, expired or not (None when nobody took it)."""
    with store._transaction() as cur:
        cur.execute(
            store._sql(f"SELECT holder, run_id, expires_at FROM {LEASE_TABLE} WHERE environment = %s"),  # noqa: S608
            (environment,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return Lease(environment, False, row[0], row[1], _time(row[2]))


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
