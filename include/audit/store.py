"""The append-only audit store: every decision of every run, hash-chained per environment (product.md §8).

One code path for PostgreSQL (psycopg2, production and tests) and SQLite (the one-command local run):
plain DB-API with parameterised SQL. The database refuses UPDATE and DELETE (triggers), and each row
carries a hash chained to the previous row of its stream, so tampering is detectable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlparse

from include.audit.schema import POSTGRES_STEPS, SQLITE_STEPS, VERSION_TABLE, WRITER_GRANTS

GENESIS_HASH = "0" * 64

COLUMNS = (
    "stream",
    "dag_id",
    "run_id",
    "run_after",
    "kind",
    "decision_id",
    "actor",
    "recorded_at",
    "payload",
    "prev_hash",
    "row_hash",
)


class AuditStoreError(RuntimeError):
    """The audit database could not be reached or refused a write; the message names the target."""


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened in one run: a snapshot, a gate outcome, a decision, a pipeline, an error."""

    stream: str
    dag_id: str
    run_id: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    run_after: str | None = None
    decision_id: str | None = None
    actor: str | None = None
    recorded_at: str | None = None


@dataclass(frozen=True)
class StoredEvent:
    """An audit row as read back, with its place in the hash chain."""

    id: int
    stream: str
    dag_id: str
    run_id: str
    run_after: str | None
    kind: str
    decision_id: str | None
    actor: str | None
    recorded_at: str
    payload: dict[str, Any]
    prev_hash: str
    row_hash: str
    row_mac: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("id", *COLUMNS)}


def row_digest(prev_hash: str, values: dict[str, Any]) -> str:
    """The chained hash of a row: sha256 over the previous hash and the row's canonical JSON."""
    canonical = json.dumps(
        {k: values[k] for k in COLUMNS if k not in ("prev_hash", "row_hash")},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def row_mac(key: bytes, stream: str, row_hash: str) -> str:
    """The keyed MAC of a row: HMAC-SHA256 over its stream and chained hash (which covers its content and,
    through the chain, every earlier row), under a key kept outside the database: whoever can write the
    database but not read the key cannot rewrite and re-chain rows unseen."""
    return hmac.new(key, f"{stream}\n{row_hash}".encode(), hashlib.sha256).hexdigest()


def _json_dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class AuditTarget:
    """How to reach the audit database: a dialect and a connect function (no secret is kept in text)."""

    dialect: str  # "postgres" | "sqlite"
    connect: Callable[[], Any]
    description: str  # e.g. "postgres://127.0.0.1:5432/test" without credentials

    @classmethod
    def from_uri(cls, uri: str) -> AuditTarget:
        """`postgresql://user:pass@host:port/db` or `sqlite:////absolute/path.db` (or `sqlite:///:memory:`)."""
        parsed = urlparse(uri)
        scheme = parsed.scheme.lower()
        if scheme in ("postgres", "postgresql", "postgresql+psycopg2"):
            return cls.postgres(
                host=parsed.hostname or "127.0.0.1",
                port=parsed.port or 5432,
                user=unquote(parsed.username) if parsed.username else None,
                password=unquote(parsed.password) if parsed.password else None,
                dbname=(parsed.path or "/").lstrip("/") or "postgres",
            )
        if scheme == "sqlite":
            # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
            path = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else ""
            return cls.sqlite(path or ":memory:")
        raise AuditStoreError(
            f"audit connection: unsupported scheme {parsed.scheme!r} (postgresql or sqlite)"
        )

    @classmethod
    def postgres(
        cls,
        *,
        host: str,
        port: int = 5432,
        user: str | None = None,
        password: str | None = None,
        dbname: str = "postgres",
        connect_timeout: int = 5,
    ) -> AuditTarget:
        def connect() -> Any:
            import psycopg2  # imported here: the local run on SQLite does not need it loaded

            kwargs = {"host": host, "port": port, "dbname": dbname, "connect_timeout": connect_timeout}
            if user:
                kwargs["user"] = user
            if password:
                kwargs["password"] = password
            return psycopg2.connect(**kwargs)

        return cls("postgres", connect, f"postgres://{host}:{port}/{dbname}")

    @classmethod
    def sqlite(cls, path: str) -> AuditTarget:
        def connect() -> Any:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn

        return cls("sqlite", connect, f"sqlite:{path}")


class AuditStore:
    """Append-only event log of PDM decisions, keyed by (dag_id, run_id) with run_after.

    With `mac_key` every new row also carries a keyed MAC (see `row_mac`), and `verify` checks it.
    Writes never change the schema: `migrate` runs apart, as the owner role (`python -m include.audit migrate`).
    """

    def __init__(self, target: AuditTarget, mac_key: bytes | None = None) -> None:
        self.target = target
        self.mac_key = mac_key

    # -- connection -------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        try:
            conn = self.target.connect()
        except Exception as exc:  # any driver error: the store is unreachable
            raise AuditStoreError(
                f"audit store {self.target.description} unreachable: {_first_line(exc)}"
            ) from exc
        try:
            cursor = conn.cursor()
            if self.target.dialect == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")  # one writer at a time keeps the chain linear
            yield cursor
            conn.commit()
        except AuditStoreError:
            _rollback(conn)
            raise
        except Exception as exc:
            _rollback(conn)
            raise AuditStoreError(f"audit store {self.target.description}: {_first_line(exc)}") from exc
        finally:
            conn.close()

    def _sql(self, statement: str) -> str:
        return statement.replace("%s", "?") if self.target.dialect == "sqlite" else statement

    # -- schema -----------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply the schema steps not applied yet; idempotent. Returns the schema version."""
        steps = POSTGRES_STEPS if self.target.dialect == "postgres" else SQLITE_STEPS
        with self._transaction() as cur:
            if self.target.dialect == "postgres":
                cur.execute("SELECT pg_advisory_xact_lock(727272)")  # concurrent starters migrate once
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL, applied_at TEXT NOT NULL)"  # noqa: S608 - identifiers are constants; values are parameters
            )
            cur.execute(f"SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}")  # noqa: S608 - identifiers are constants; values are parameters
            current = int(cur.fetchone()[0])
            for version, statements in enumerate(steps, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    cur.execute(statement)
                cur.execute(
                    self._sql(f"INSERT INTO {VERSION_TABLE} (version, applied_at) VALUES (%s, %s)"),  # noqa: S608 - identifiers are constants; values are parameters
                    (version, _now_iso()),
                )
                current = version
        return current

    def schema_version(self) -> int:
        """The applied schema version (0 when never migrated); read-only, any role may ask."""
        with self._transaction() as cur:
            try:
                cur.execute(f"SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}")  # noqa: S608 - constant
            except Exception:  # noqa: BLE001 - no version table: never migrated
                return 0
            return int(cur.fetchone()[0])

    def require_schema(self) -> int:
        """Refuse to write to a database whose schema is behind this code, saying how to migrate it."""
        wanted = len(POSTGRES_STEPS if self.target.dialect == "postgres" else SQLITE_STEPS)
        current = self.schema_version()
        if current < wanted:
            raise AuditStoreError(
                f"audit store {self.target.description}: schema at version {current}, this code needs "
                f"{wanted}: run `python -m include.audit migrate` as the owner role (writes never migrate)"
            )
        return current

    def grant_writer(self, role: str) -> None:
        """PostgreSQL: let `role` insert and read audit rows, nothing else (defence beside the triggers).

        Run as the owner role after `migrate`. The writer owns nothing, so it cannot drop or disable the
        append-only triggers, alter the tables, or create objects."""
        if self.target.dialect != "postgres":
            raise AuditStoreError("grants exist on PostgreSQL only")
        if not role.replace("_", "").isalnum():
            raise AuditStoreError(f"role name {role!r}: letters, digits and underscores only")
        quoted = f'"{role}"'
        with self._transaction() as cur:
            cur.execute(
                f"REVOKE ALL ON pdm_audit_event, {VERSION_TABLE}, pdm_traffic_profile, "  # noqa: S608
                f"pdm_environment_lease FROM {quoted}"
            )
            for grant in WRITER_GRANTS:
                cur.execute(grant.format(role=quoted))

    # -- writes -----------------------------------------------------------------------------------
    def record(self, event: AuditEvent) -> StoredEvent:
        """Append one event to its stream's hash chain and return it as stored."""
        values: dict[str, Any] = {
            "stream": event.stream,
            "dag_id": event.dag_id,
            "run_id": event.run_id,
            "run_after": event.run_after,
            "kind": event.kind,
            "decision_id": event.decision_id,
            "actor": event.actor,
            "recorded_at": event.recorded_at or _now_iso(),
            "payload": _json_dumps(event.payload),
        }
        with self._transaction() as cur:
            if self.target.dialect == "postgres":
                # Serialise writers of one stream so the chain stays linear.
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"pdm_audit:{event.stream}",))
            cur.execute(
                self._sql("SELECT row_hash FROM pdm_audit_event WHERE stream = %s ORDER BY id DESC LIMIT 1"),
                (event.stream,),
            )
            row = cur.fetchone()
            values["prev_hash"] = row[0] if row else GENESIS_HASH
            values["row_hash"] = row_digest(values["prev_hash"], values)
            values["row_mac"] = (
                row_mac(self.mac_key, event.stream, values["row_hash"]) if self.mac_key else None
            )
            columns = (*COLUMNS, "row_mac")
            placeholders = ", ".join(["%s"] * len(columns))
            insert = f"INSERT INTO pdm_audit_event ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608 - identifiers are constants; values are parameters
            if self.target.dialect == "postgres":
                cur.execute(insert + " RETURNING id", tuple(values[c] for c in columns))
                new_id = cur.fetchone()[0]
            else:
                cur.execute(self._sql(insert), tuple(values[c] for c in columns))
                new_id = cur.lastrowid
        return _stored(new_id, values)

    # -- reads ------------------------------------------------------------------------------------
    def events(
        self,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        stream: str | None = None,
        kind: str | None = None,
        decision_id: str | None = None,
        since: str | None = None,
    ) -> list[StoredEvent]:
        """Events matching every given filter, oldest first."""
        clauses, params = [], []
        for column, value in (
            ("dag_id", dag_id),
            ("run_id", run_id),
            ("stream", stream),
            ("kind", kind),
            ("decision_id", decision_id),
        ):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if since is not None:
            clauses.append("recorded_at >= %s")
            params.append(since)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    f"SELECT id, {', '.join(COLUMNS)}, row_mac FROM pdm_audit_event{where} ORDER BY id"  # noqa: S608
                ),
                tuple(params),
            )
            rows = cur.fetchall()
        return [_stored(row[0], dict(zip((*COLUMNS, "row_mac"), row[1:], strict=True))) for row in rows]

    # -- traffic profiles and PDM durations ------------------------------------------------------------
    def record_traffic_profile(self, environment: str, computed_at: str, payload: dict[str, Any]) -> int:
        """Append a learned traffic profile (see include/policy/learned.py); returns its id (its version)."""
        insert = self._sql(
            "INSERT INTO pdm_traffic_profile (environment, computed_at, recorded_at, payload) VALUES (%s, %s, %s, %s)"
        )
        values = (environment, computed_at, _now_iso(), _json_dumps(payload))
        with self._transaction() as cur:
            if self.target.dialect == "postgres":
                cur.execute(insert + " RETURNING id", values)
                return int(cur.fetchone()[0])
            cur.execute(insert, values)
            return int(cur.lastrowid)

    def latest_traffic_profile(self, environment: str) -> dict[str, Any] | None:
        """The newest stored profile of an environment (by computed_at, then id), or None."""
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT payload FROM pdm_traffic_profile WHERE environment = %s "
                    "ORDER BY computed_at DESC, id DESC LIMIT 1"
                ),
                (environment,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        payload: dict[str, Any] = json.loads(row[0]) if isinstance(row[0], str) else row[0]
        return payload

    def pdm_run_durations(
        self, environment: str, run_class: str | None = None, since: str | None = None
    ) -> list[tuple[str, float]]:
        """(run class, seconds) of past PDM pipelines on `environment` that succeeded, oldest first.

        A run's class comes from its `snapshot` event, its duration from the pipeline in its `outcome`
        event (GitLab's `duration`, else finished_at - started_at). `since` bounds recorded_at (ISO).
        """
        classes = {
            (e.dag_id, e.run_id): e.payload.get("run_class")
            for e in self.events(stream=environment, kind="snapshot", since=since)
        }
        found: list[tuple[str, float]] = []
        for event in self.events(stream=environment, kind="outcome", since=since):
            cls = classes.get((event.dag_id, event.run_id))
            pipeline = event.payload.get("pipeline") or {}
            if event.payload.get("outcome") != "pipeline_succeeded" or not cls:
                continue
            if run_class is not None and cls != run_class:
                continue
            seconds = _pipeline_seconds(pipeline)
            if seconds is not None:
                found.append((cls, seconds))
        return found

    def pdm_batches(self, environment: str, since: str | None = None) -> list[tuple[dict[str, int], float]]:
        """(class → count of the migrations it executed, seconds) of past PDM runs on `environment` that
        succeeded, oldest first: the per-batch facts the batch-duration prediction learns from.

        The counts are the snapshot's `batch_classes` (what the run was to execute); a snapshot recorded
        before that field existed counts its `migrations` (all pending, which all_pending runs execute).
        """
        batches: dict[tuple[str, str], dict[str, int]] = {}
        for event in self.events(stream=environment, kind="snapshot", since=since):
            counts = event.payload.get("batch_classes")
            if not isinstance(counts, dict):
                counts = {}
                for migration in event.payload.get("migrations") or []:
                    name = migration.get("class") or "unknown"
                    counts[name] = counts.get(name, 0) + 1
            batches[(event.dag_id, event.run_id)] = {str(k): int(v) for k, v in counts.items()}
        found: list[tuple[dict[str, int], float]] = []
        for event in self.events(stream=environment, kind="outcome", since=since):
            counts = batches.get((event.dag_id, event.run_id))
            if event.payload.get("outcome") != "pipeline_succeeded" or not counts:
                continue
            seconds = _pipeline_seconds(event.payload.get("pipeline") or {})
            if seconds is not None:
                found.append((counts, seconds))
        return found

    def pipeline_for_decision(self, decision_id: str) -> dict[str, Any] | None:
        """The pipeline already created for a decision, if the store knows one (exactly-once trigger)."""
        found = self.events(decision_id=decision_id, kind="pipeline_created")
        return found[-1].payload if found else None

    def verify(
        self, heads: dict[str, dict[str, Any]] | None = None, require_mac: bool = False
    ) -> ChainReport:
        """Walk every stream's chain; report the first row whose hash, link or MAC does not match.

        With the MAC key, every row after the first MAC'd row of a stream must carry a valid MAC (a rewritten
        and re-chained log cannot); `require_mac` demands one on every row. `heads` are chain heads
        published outside the database earlier (`heads()`: {stream: {"id", "row_hash"}}): each must still be
        in its chain, so deleting the newest rows (truncation) is detected.
        """
        checked = 0
        last: dict[str, str] = {}
        maced: set[str] = set()
        by_id: dict[int, StoredEvent] = {}
        for event in self.events():
            values = event.to_dict()
            values["payload"] = _json_dumps(event.payload)
            expected_prev = last.get(event.stream, GENESIS_HASH)
            if event.prev_hash != expected_prev:
                return ChainReport(False, checked, event.id, f"row {event.id}: link to previous row broken")
            if row_digest(event.prev_hash, values) != event.row_hash:
                return ChainReport(
                    False, checked, event.id, f"row {event.id}: content does not match its hash"
                )
            if self.mac_key:
                if event.row_mac is None and (require_mac or event.stream in maced):
                    return ChainReport(False, checked, event.id, f"row {event.id}: keyed MAC missing")
                if event.row_mac is not None:
                    if not hmac.compare_digest(
                        event.row_mac, row_mac(self.mac_key, event.stream, event.row_hash)
                    ):
                        return ChainReport(
                            False, checked, event.id, f"row {event.id}: keyed MAC does not match (rewritten?)"
                        )
                    maced.add(event.stream)
            elif require_mac:
                return ChainReport(False, checked, None, "a keyed MAC is required but no key was given")
            last[event.stream] = event.row_hash
            by_id[event.id] = event
            checked += 1
        for stream, head in (heads or {}).items():
            found = by_id.get(int(head["id"]))
            if found is None or found.stream != stream or found.row_hash != head["row_hash"]:
                return ChainReport(
                    False,
                    checked,
                    int(head["id"]),
                    f"published head of {stream} (row {head['id']}) is missing or differs: rows were deleted "
                    "or rewritten after it was published",
                )
        anchored = f", {len(heads)} published head(s) present" if heads else ""
        keyed = ", keyed MACs valid" if self.mac_key else ""
        return ChainReport(True, checked, None, f"{checked} rows verified, chain intact{keyed}{anchored}")

    def heads(self) -> dict[str, dict[str, Any]]:
        """The newest row of every stream: publish these outside the database (a log, a bucket, a ticket) so
        that `verify(heads=...)` can later prove no row up to them was deleted."""
        found: dict[str, dict[str, Any]] = {}
        for event in self.events():
            found[event.stream] = {
                "id": event.id,
                "row_hash": event.row_hash,
                "recorded_at": event.recorded_at,
            }
        return found


@dataclass(frozen=True)
class ChainReport:
    """Result of walking the hash chain."""

    ok: bool
    rows_checked: int
    first_broken_id: int | None
    message: str


def _stored(new_id: int, values: dict[str, Any]) -> StoredEvent:
    payload = values["payload"]
    return StoredEvent(
        id=int(new_id),
        stream=values["stream"],
        dag_id=values["dag_id"],
        run_id=values["run_id"],
        run_after=values["run_after"],
        kind=values["kind"],
        decision_id=values["decision_id"],
        actor=values["actor"],
        recorded_at=values["recorded_at"],
        payload=json.loads(payload) if isinstance(payload, str) else payload,
        prev_hash=values["prev_hash"],
        row_hash=values["row_hash"],
        row_mac=values.get("row_mac"),
    )


def _pipeline_seconds(pipeline: dict[str, Any]) -> float | None:
    if isinstance(pipeline.get("duration"), (int, float)):
        return float(pipeline["duration"])
    try:
        started = datetime.fromisoformat(pipeline["started_at"])
        finished = datetime.fromisoformat(pipeline["finished_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, (finished - started).total_seconds())


def _rollback(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001 - the connection may already be gone; the original error matters
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()
