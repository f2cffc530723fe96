"""`make chaos`: a seeded fault campaign against the real parts, proving that nothing runs that was not
decided, and never twice (issue 14). See docs/operations.md, "Fault campaign".

Each round deploys a new package (one new post-deploy migration), starts one to three runs of pdm_gprd
(manual, backfill; the first round also has the scheduled run) and injects a seeded mix of faults: SIGKILL of
the trigger task at a step boundary (before the request, during it, after GitLab created the pipeline, while
recording it), GitLab faults (5xx, 429 with Retry-After, dropped connections, malformed answers, a create that
times out after GitLab committed it), the audit database cut and restored, invalid traffic metrics, a package
deployed while a run waits, and a trigger task cleared after its run ended. At the end the counts are computed
from the sandbox's pipelines and the audit store (not from what the product believes):

    chaos: N faults injected over R runs; double pipelines 0; pipelines without a decision on record 0; runs of unclassified or changed migrations 0; runs without an outcome record 0

Usage: python -m tests.chaos.campaign [--seed 1] [--rounds 12] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2

from include.isotime import parse_iso_instant
from tests.chaos.rig import Rig
from tests.support.scenarios import APP, BACKGROUND, NEW_SHA, RELEASE_TOOLS

# The sensor a high or invalid traffic holds: each gate is its own sensor (issue 16). The campaign waited for the
# former single `wait_for_gates` task, which no longer exists: 90 s lost per such round, and the "package deployed
# while a run waits" fault never injected.
TRAFFIC_SENSOR = "gate_low_traffic"

DAG = "pdm_gprd"
KILL_POINTS = ("before_request", "during_request", "after_create", "while_recording")
GITLAB_FAULTS = (
    ("5xx on deployments", r"/deployments$", "status", "GET", {"status": 502}),
    ("5xx on compare", r"/repository/compare$", "status", "GET", {"status": 503}),
    ("429 on pipelines", r"/pipelines$", "rate_limit", "GET", {"retry_after": 1}),
    ("429 on issues", r"/issues$", "rate_limit", "GET", {"retry_after": 1}),
    ("dropped connection on a pipeline", r"/pipelines/\d+$", "drop", "GET", {}),
    ("malformed answer on deployments", r"/deployments$", "malformed_json", "GET", {}),
    ("5xx on the raw file", r"/raw$", "status", "GET", {"status": 500}),
)
FINAL = ("success", "failed")
VISIBLE_FROM: dict[int, datetime] = {}  # deployment id -> when the campaign added it (sandbox time)


class Campaign:
    """The rounds, the faults they injected (counted as they fire), and the ground-truth checks."""

    def __init__(self, rig: Rig, seed: int) -> None:
        self.rig = rig
        self.rng = random.Random(seed)
        self.faults: Counter[str] = Counter()
        self.runs: list[str] = []
        self.package = 0
        self.sha = NEW_SHA
        self.backfill_hours = 24
        self.kill_offset = self.rng.randrange(len(KILL_POINTS))  # every kill point, in a seeded order

    # -- the world -------------------------------------------------------------------------------------
    def deploy_package(self) -> str:
        """A new package on gstg and gprd (baked), its migrations already run on gstg: pending on gprd."""
        self.package += 1
        sha = f"{self.package:x}".rjust(40, "c")
        version = 20261201000000 + self.package * 100
        path = f"db/post_migrate/{version}_queue_chaos_backfill{self.package}.rb"
        source = BACKGROUND.replace("QueueBackfillIssueSearchData", f"QueueChaosBackfill{self.package}")
        sandbox = self.rig.sandbox
        sandbox.add_commit(APP, sha=sha, files_from=self.sha, add={path: source})
        ref = f"17.7.2026120{self.package % 10}0620-{sha[:11]}.{sha[-11:]}"
        for environment in ("gstg", "gprd", "db/gstg"):
            added = sandbox.add_deployment(
                APP,
                environment=environment,
                sha=sha,
                ref=ref,
                status="success",
                created_at="-3h",
                finished_at="-3h",
            )
            # Backdated (baked 3 h) but visible only from now: the ground truth needs the latter.
            VISIBLE_FROM[int(added["id"])] = sandbox.world.now()
        self.sha = sha
        return sha

    # -- runs ------------------------------------------------------------------------------------------
    def start_manual(self) -> str:
        run_id = self.rig.api(f"/dags/{DAG}/dagRuns", {"logical_date": None})["dag_run_id"]
        self.runs.append(run_id)
        return run_id

    def start_backfill(self, slots: int) -> list[str]:
        """A backfill over `slots` past re-check slots (2 h each), `slots` runs at once beside the others."""
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(
            hours=self.backfill_hours
        )
        start = end - timedelta(hours=2 * slots)
        self.backfill_hours += 2 * slots + 2
        before = {r["dag_run_id"] for r in self._dag_runs()}
        body = {
            "dag_id": DAG,
            "from_date": start.isoformat(),
            "to_date": end.isoformat(),
            "max_active_runs": slots,
            "reprocess_behavior": "none",
        }
        self.wait_until(self._no_active_backfill, 60)
        for attempt in range(8):
            try:
                self.rig.api("/backfills", body)
                break
            except Exception as exc:  # noqa: BLE001 - 503: metadata locked; 409: one running (maybe ours)
                if "409" in str(exc):
                    break  # an earlier attempt that timed out on our side may have created it: look below
                if "503" not in str(exc) or attempt == 7:
                    print(f"  backfill refused: {str(exc)[-300:]}")
                    return []
                time.sleep(1.5)
        deadline = time.monotonic() + 30
        new: list[str] = []
        while time.monotonic() < deadline and not new:
            new = [r["dag_run_id"] for r in self._dag_runs() if r["dag_run_id"] not in before]
            time.sleep(1)
        self.runs += new
        return new

    def _no_active_backfill(self) -> bool:
        found = self.rig.api(f"/backfills?dag_id={DAG}")
        return not any(b.get("completed_at") is None for b in found.get("backfills", []))

    def _dag_runs(self) -> list[dict[str, Any]]:
        return self.rig.api(f"/dags/{DAG}/dagRuns?limit=1000")["dag_runs"]

    def state(self, run_id: str) -> str:
        return self.rig.api(f"/dags/{DAG}/dagRuns/{run_id}")["state"]

    def ti(self, run_id: str, task: str = "trigger_pipeline") -> dict[str, Any]:
        return self.rig.api(f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task}")

    def wait_all(self, run_ids: list[str], timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.state(r) in FINAL for r in run_ids):
                return
            time.sleep(1.5)
        print(
            f"  (runs still going after {timeout:.0f} s: {[r for r in run_ids if self.state(r) not in FINAL]})"
        )

    # -- faults ----------------------------------------------------------------------------------------
    def inject_gitlab_faults(self, how_many: int, spare_discovery: bool = False) -> list[dict[str, Any]]:
        """`spare_discovery`: a round that will kill the trigger task keeps discovery's endpoints to one
        fault each, so that the run reaches the trigger (three failed discoveries end the run first)."""
        injected = []
        for name, path, kind, method, extra in self.rng.sample(GITLAB_FAULTS, how_many):
            discovery = path in (r"/deployments$", r"/repository/compare$", r"/raw$")
            count = 1 if spare_discovery and discovery else self.rng.randint(1, 3)
            fault = self.rig.sandbox.inject_fault(path, kind, method=method, count=count, **extra)
            injected.append({"name": name, "path": path, "count": count, "fault": fault})
        return injected

    def count_fired(self, injected: list[dict[str, Any]]) -> None:
        remaining = {(f["path"], f["kind"]): f["count"] for f in self.rig.sandbox.faults}
        for item in injected:
            left = remaining.get((item["path"], item["fault"]["kind"]), 0)
            fired = max(0, item["count"] - left)
            if fired:
                self.faults[item["name"]] += fired
        self.rig.sandbox.clear_faults()

    def wait_until(self, predicate, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = predicate()
            except Exception:  # noqa: BLE001 - API blips while faults fly: look again
                found = None
            if found:
                return found
            time.sleep(0.3)
        return None

    def kill_trigger(self, run_ids: list[str], point: str) -> None:
        """SIGKILL the trigger task at a step boundary of the create path: of the run that requests the
        create (for the points at or after the request), or of the first run whose trigger task starts."""
        sandbox, audit = self.rig.sandbox, self.rig.audit
        created_before = len(sandbox.created_pipelines(project=RELEASE_TOOLS))
        if point == "before_request":
            sandbox.inject_fault(r"/pipelines$", "slow", method="GET", count=1, delay_seconds=4)
        elif point in ("during_request", "while_recording"):  # the create held: time to lock the table
            sandbox.inject_fault(r"/pipeline$", "slow", method="POST", count=1, delay_seconds=4)
        elif point == "after_create":
            sandbox.inject_fault(
                r"/pipeline$", "slow", method="POST", count=1, delay_seconds=4, after_success=True
            )

        def target() -> Any:
            if all(self.state(r) in FINAL for r in run_ids):
                return "over"
            if point == "before_request":
                for run_id in run_ids:
                    ti = self.ti(run_id)
                    if ti["state"] == "running" and ti.get("pid"):
                        return run_id
                return None
            for run_id in run_ids:
                if audit.events(run_id=run_id, kind="pipeline_requested"):
                    return run_id
            return None

        run_id = self.wait_until(target, 240)
        if not run_id or run_id == "over":
            print(f"  kill {point}: no trigger task reached that point")
            self.rig.sandbox.clear_faults()
            return
        locker = None
        if point == "before_request":
            time.sleep(1.0)
        elif point == "during_request":
            time.sleep(1.0)
        elif point == "after_create":
            self.wait_until(
                lambda: len(sandbox.created_pipelines(project=RELEASE_TOOLS)) > created_before, 60
            )
            time.sleep(0.5)
        elif point == "while_recording":
            locker = psycopg2.connect(self.rig.direct_uri)
            with locker.cursor() as cur:
                cur.execute("LOCK TABLE pdm_audit_event IN EXCLUSIVE MODE")
            self.wait_until(
                lambda: len(sandbox.created_pipelines(project=RELEASE_TOOLS)) > created_before, 30
            )
            time.sleep(1.5)
        pid = self.ti(run_id).get("pid")
        killed = bool(pid) and self.rig.kill_task(int(pid))
        if locker is not None:
            with self.rig.admin.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                    "AND wait_event_type = 'Lock'",
                    (self.rig.database,),
                )
            locker.rollback()
            locker.close()
        self.rig.sandbox.clear_faults()
        if killed:
            self.faults[f"SIGKILL {point.replace('_', ' ')}"] += 1
        print(f"  kill {point}: {'killed pid ' + str(pid) if killed else 'missed (task not running then)'}")

    def audit_outage(self, seconds: float) -> None:
        self.rig.proxy.down()
        time.sleep(seconds)
        self.rig.proxy.up()
        self.faults["audit database down and restored"] += 1

    def create_times_out_after_commit(self) -> None:
        self.rig.sandbox.inject_fault(
            r"/pipeline$", "slow", method="POST", count=1, delay_seconds=7, after_success=True
        )

    # -- rounds ----------------------------------------------------------------------------------------
    def round(self, number: int, first: bool = False) -> None:
        rng = self.rng
        self.deploy_package()
        plan = {
            "gitlab_faults": rng.randint(4, len(GITLAB_FAULTS)),
            "kill": KILL_POINTS[(number + self.kill_offset) % len(KILL_POINTS)] if not first else None,
            "outage": rng.random() < 0.5,
            "concurrent": 3 if first else rng.choice((1, 1, 2, 3)),
            "deploy_during_wait": rng.random() < 0.35 and not first,
            "timeout_after_commit": rng.random() < 0.3,
            "nan_metrics": rng.random() < 0.25,
            "clear_later": rng.random() < 0.3,
        }
        if plan["kill"] and plan["timeout_after_commit"]:
            plan["timeout_after_commit"] = False  # one create fault at a time keeps the kill point exact
        print(f"round {number}: package …{self.sha[-6:]}; plan {plan}")
        injected = self.inject_gitlab_faults(plan["gitlab_faults"], spare_discovery=bool(plan["kill"]))
        if plan["timeout_after_commit"]:
            self.create_times_out_after_commit()
        if plan["deploy_during_wait"] or plan["nan_metrics"]:
            self.rig.set_traffic(
                float("nan") if plan["nan_metrics"] and not plan["deploy_during_wait"] else 5000.0
            )
        runs: list[str] = []
        if first:
            # Unpausing created the scheduled run; a manual and a backfill run join it.
            runs += [r["dag_run_id"] for r in self._dag_runs()]
            self.runs += runs
        runs.append(self.start_manual())
        if plan["concurrent"] >= 2:
            backfilled = self.start_backfill(plan["concurrent"] - 1)
            runs += backfilled
            if backfilled:
                self.faults[f"{len(runs)} concurrent runs of gprd"] += 1
        if plan["deploy_during_wait"] or plan["nan_metrics"]:
            waiting = self.wait_until(lambda: self.ti(runs[0], TRAFFIC_SENSOR)["state"] == "deferred", 90)
            if plan["deploy_during_wait"] and waiting:
                self.deploy_package()
                self.faults["package deployed while a run waits"] += 1
            if plan["nan_metrics"] and waiting:
                self.faults[
                    "traffic metrics invalid (NaN)" if not plan["deploy_during_wait"] else "traffic high"
                ] += 1
            time.sleep(rng.uniform(1, 3))
            self.rig.set_traffic(100.0)
        if plan["timeout_after_commit"]:
            self.faults["create timed out after GitLab committed"] += 1
        outage = None
        if plan["outage"]:
            delay = rng.uniform(0, 12)
            outage = threading.Timer(delay, self.audit_outage, args=(rng.uniform(2, 6),))
            outage.start()
        if plan["kill"]:
            self.kill_trigger(runs, plan["kill"])
        self.wait_all(runs)
        if outage is not None:
            outage.join()
        self.count_fired(injected)
        if plan["clear_later"]:
            self.clear_trigger(runs[0])
        states = Counter(self.state(r) for r in runs)
        print(f"  runs {dict(states)}; faults so far {sum(self.faults.values())}")

    def clear_trigger(self, run_id: str) -> None:
        """An operator clears the trigger task of a finished run, as if hours later."""
        try:
            self.rig.api(
                f"/dags/{DAG}/clearTaskInstances",
                {
                    "dry_run": False,
                    "task_ids": ["trigger_pipeline", "record_outcome"],
                    "dag_run_id": run_id,
                    "only_failed": False,
                    "reset_dag_runs": True,
                    "include_downstream": True,
                },
            )
        except Exception as exc:  # noqa: BLE001
            print(f"  clear refused: {exc}")
            return
        self.faults["trigger task cleared after the run"] += 1
        time.sleep(3)
        self.wait_all([run_id], 120)


# -- ground truth -------------------------------------------------------------------------------------------
def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_iso_instant(str(value))


def _latest(deployments: list[dict[str, Any]], environment: str, at: datetime) -> dict[str, Any] | None:
    """The environment's newest successful deployment finished by `at` (what GitLab showed then)."""
    done = [
        d
        for d in deployments
        if d["environment"] == environment
        and d["status"] == "success"
        and d.get("finished_at") is not None
        and _time(VISIBLE_FROM.get(int(d["id"]), d["finished_at"])) <= at
    ]
    return max(done, key=lambda d: (_time(d["finished_at"]), d["id"]), default=None)


def tally(rig: Rig, run_ids: list[str]) -> dict[str, int]:
    """The four counts, from the sandbox's pipelines and the audit store only."""
    sandbox, audit = rig.sandbox, rig.audit
    pipelines = sandbox.created_pipelines(project=RELEASE_TOOLS)
    events = audit.events()
    requested = {e.decision_id: e for e in events if e.kind == "pipeline_requested"}
    decisions = {(e.dag_id, e.run_id) for e in events if e.kind == "decision" and e.payload.get("go")}
    snapshots = {(e.dag_id, e.run_id): e.payload for e in events if e.kind == "snapshot"}
    outcomes = {(e.dag_id, e.run_id) for e in events if e.kind == "outcome"}

    by_decision = Counter(p["variables"].get("PDM_DECISION_ID") for p in pipelines)
    doubles = sum(n - 1 for n in by_decision.values() if n > 1)
    spans = sorted(
        (_time(p["created_at"]), _time(p["finished_at"]) if p.get("finished_at") else None) for p in pipelines
    )
    for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False):
        if a_end is None or b_start < a_end:  # two PDM pipelines of gprd at once
            doubles += 1

    without_decision = 0
    changed = 0
    # GitLab's view of the deployments (a PDM's db deployment follows its pipeline's status).
    with sandbox.world.lock:
        project = sandbox.world.project(APP)
        deployments = [sandbox.world.deployment_state(d) for d in project.deployments]
        commits = {sha: set(c["files"]) for sha, c in project.commits.items()}
    for pipeline in pipelines:
        decision = pipeline["variables"].get("PDM_DECISION_ID")
        request = requested.get(decision)
        key = (request.dag_id, request.run_id) if request else None
        if key is None or key not in decisions:
            without_decision += 1
            continue
        created = _time(pipeline["created_at"])

        deployed, line = _latest(deployments, "gprd", created), _latest(deployments, "db/gprd", created)
        post = lambda files: {f for f in files if f.startswith(("db/post_migrate/", "ee/db/post_migrate/"))}  # noqa: E731
        really_pending = post(commits.get(deployed["sha"], set())) - post(commits.get(line["sha"], set()))
        snapshot = snapshots.get(key) or {}
        classified = {
            m["path"] for m in snapshot.get("migrations", []) if m.get("class") not in (None, "unknown")
        }
        problems = []
        if deployed["sha"] != (snapshot.get("deployed") or {}).get("sha"):
            problems.append(f"deployed {deployed['sha'][-6:]} at creation, snapshot had another package")
        if pipeline["variables"].get("PDM_SHA") != deployed["sha"]:
            problems.append("the pipeline's PDM_SHA is not the deployed package")
        if really_pending != classified:
            problems.append(
                f"pending at creation {sorted(really_pending)} != classified {sorted(classified)}"
            )
        if problems:
            changed += 1
            print(f"  pipeline {pipeline['id']} ({key[1]}): {'; '.join(problems)}")

    runs_without_outcome = sum(1 for r in run_ids if (DAG, r) not in outcomes)
    return {
        "double": doubles,
        "without_decision": without_decision,
        "changed": changed,
        "without_outcome": runs_without_outcome,
        "pipelines": len(pipelines),
    }


def run_campaign(seed: int, rounds: int, workdir: Path, min_faults: int = 100) -> int:
    started = time.monotonic()
    rig = Rig(workdir)
    try:
        print(f"chaos: seed {seed}, {rounds} rounds; starting the real parts in {workdir}")
        rig.start()
        campaign = Campaign(rig, seed)
        for number in range(1, rounds + 1):
            campaign.round(number, first=number == 1)
        every = [r["dag_run_id"] for r in campaign._dag_runs()]
        campaign.wait_all(every, 180)
        counts = tally(rig, every)
        outcomes = Counter(e.payload.get("outcome") for e in rig.audit.events(kind="outcome"))
        print("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(campaign.faults.items())))
        print(f"pipelines created: {counts['pipelines']}; outcomes recorded: {dict(outcomes)}")
        print(f"audit chain: {rig.audit.verify().message}; took {time.monotonic() - started:.0f} s")
        n = sum(campaign.faults.values())
        print(
            f"chaos: {n} faults injected over {len(every)} runs; double pipelines {counts['double']}; "
            f"pipelines without a decision on record {counts['without_decision']}; runs of unclassified or "
            f"changed migrations {counts['changed']}; runs without an outcome record {counts['without_outcome']}"
        )
        bad = counts["double"] or counts["without_decision"] or counts["changed"] or counts["without_outcome"]
        return 1 if bad or n < min_faults else 0
    finally:
        rig.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos.campaign", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--min-faults", type=int, default=100)
    parser.add_argument(
        "--workdir", help="where Airflow, Prometheus and logs live (default: a temporary dir)"
    )
    args = parser.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pdm-chaos-"))
    return run_campaign(args.seed, args.rounds, workdir, args.min_faults)


if __name__ == "__main__":
    sys.exit(main())
