"""The release manager's view in a real browser (Chromium via Playwright) against the session's `make run`
(tests/support/product.py): the form refusing an override without a reason, each run's outcome in the grid and
its note, a valid override running to a pipeline, a broken policy shown (DAGs still listed, runs failing closed,
the PDM page saying why) and recovered, the gate sensor that holds a run shown deferred (an overridden one saying
so), the PDM page's picture, and approvals answered in Required Actions. Screenshots go to /tmp/rm-view-*.png."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.support.browser import browser_page, fill_json_field
from tests.support.product import MakeRun

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("PDM_UI_SHOTS", "/tmp"))


@pytest.fixture
def product(pdm_product: MakeRun) -> MakeRun:
    """The session's one `make run` (tests/support/product.py), shared with tests/smoke."""
    return pdm_product


def _open_trigger_form(page, run: MakeRun, dag_id: str):
    page.goto(f"{run.base}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Override", exact=True).click()
    return dialog


def test_the_form_refuses_an_override_without_a_reason(product):
    from playwright.sync_api import sync_playwright

    before = product.api("/dags/pdm_gstg/dagRuns")["total_entries"]
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright, product.base, product.token, height=1100)
        dialog = _open_trigger_form(page, product, "pdm_gstg")
        fill_json_field(page, dialog, "element_override", {"gates": ["window"], "reason": ""})
        dialog.get_by_role("button", name="Trigger", exact=True).click()
        dialog.get_by_text("too short").first.wait_for(timeout=90_000)
        text = dialog.inner_text()
        page.screenshot(path=str(SHOTS / "rm-view-form-refused.png"))
        browser.close()
    assert "400" in text and "override" in text and "reason" in text
    assert product.api("/dags/pdm_gstg/dagRuns")["total_entries"] == before  # no run was created


def test_each_run_shows_its_outcome_in_the_grid_and_its_note(product):
    from playwright.sync_api import sync_playwright

    # A new package on gstg and gprd: gstg has work, and gprd waits until gstg has run it, whatever the
    # session's earlier tests ran.
    product.publish_package()
    before = product.run_ids("pdm_gstg")
    product.api("/dags/pdm_gprd", {"is_paused": False}, method="PATCH")
    dry = product.api("/dags/pdm_gprd/dagRuns", {"logical_date": None, "conf": {"dry_run": True}})
    # A valid override from the form: a real pipeline in the sandbox GitLab.
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright, product.base, product.token, height=1100)
        dialog = _open_trigger_form(page, product, "pdm_gstg")
        gates = ["window", "traffic", "deploy_lock", "rollback_safety"]
        fill_json_field(
            page, dialog, "element_override", {"gates": gates, "reason": "UI test: CR 1234 approved"}
        )
        dialog.get_by_role("button", name="Trigger", exact=True).click()
        page.get_by_role("dialog").wait_for(state="detached", timeout=90_000)
        browser.close()
    override = product.wait(
        lambda: next(
            (
                r
                for r in product.api("/dags/pdm_gstg/dagRuns?limit=100")["dag_runs"]
                if r["run_type"] == "manual" and r["dag_run_id"] not in before
            ),
            None,
        ),
        60,
        "the run triggered from the form",
    )
    dry = product.finished("pdm_gprd", dry["dag_run_id"])
    override = product.finished("pdm_gstg", override["dag_run_id"])
    dry_states = product.task_states("pdm_gprd", dry["dag_run_id"])
    shown = {t: s for t, s in dry_states.items() if t.startswith("outcome_") and s != "skipped"}
    assert shown == {"outcome_waiting_on_previous_environment": "success"}, dry_states
    assert dry["note"].startswith("waiting_on_previous_environment: ")
    states = product.task_states("pdm_gstg", override["dag_run_id"])
    assert states["outcome_pipeline_succeeded"] == "success", states
    assert override["state"] == "success"
    assert override["note"].startswith("pipeline_succeeded: pipeline ") and "/pipelines/" in override["note"]
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright, product.base, product.token, height=1000)
        page.goto(f"{product.base}/dags/pdm_gstg/runs/{override['dag_run_id']}")
        page.get_by_text("pipeline_succeeded: pipeline").first.wait_for(timeout=90_000)
        page.screenshot(path=str(SHOTS / "rm-view-run-note.png"))
        page.goto(f"{product.base}/dags/pdm_gprd/runs")
        page.get_by_text(dry["dag_run_id"]).first.wait_for(timeout=90_000)
        page.screenshot(path=str(SHOTS / "rm-view-runs-list.png"))
        page.goto(f"{product.base}/dags/pdm_gstg")
        page.get_by_text("outcome_pipeline_succeeded").first.wait_for(timeout=90_000)
        page.screenshot(path=str(SHOTS / "rm-view-grid.png"))
        browser.close()


def test_a_broken_policy_is_shown_and_a_fixed_one_recovers(product):
    from playwright.sync_api import sync_playwright

    good = product.policy.read_text()
    broken = yaml.safe_load(good)
    broken["windows"]["weekend"]["start"] = "25:00"
    product.policy.write_text(yaml.safe_dump(broken, sort_keys=False))
    dag = product.wait(
        lambda: (d := product.api("/dags/pdm_gprd"))["description"].startswith("POLICY INVALID") and d,
        240,
        "pdm_gprd to show the policy error",
    )
    assert "25:00" in dag["description"]
    assert product.api("/importErrors")["total_entries"] == 0
    run = product.api("/dags/pdm_gprd/dagRuns", {"logical_date": None, "conf": {}})
    run = product.finished("pdm_gprd", run["dag_run_id"])
    assert run["state"] == "failed"
    assert product.task_states("pdm_gprd", run["dag_run_id"]) == {"policy_invalid": "failed"}
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright, product.base, product.token, height=1000)
        page.goto(f"{product.base}/dags?tags=pdm")
        page.get_by_text("pdm_gstg").first.wait_for(timeout=90_000)
        page.screenshot(path=str(SHOTS / "rm-view-policy-broken-list.png"))
        page.goto(f"{product.base}/pdm/")
        pdm_text = page.inner_text("body")
        page.screenshot(path=str(SHOTS / "rm-view-policy-broken-pdm-page.png"), full_page=True)
        browser.close()
    assert "policy invalid" in pdm_text and "25:00" in pdm_text
    product.policy.write_text(good)
    product.wait(
        lambda: not product.api("/dags/pdm_gprd")["description"].startswith("POLICY INVALID"),
        240,
        "pdm_gprd to recover",
    )
    tasks = {t["task_id"] for t in product.api("/dags/pdm_gprd/tasks")["tasks"]}
    assert {"discover_pending", "gate_window", "show_outcome"} <= tasks


def test_the_pdm_page_draws_the_next_7_days(product):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = browser_page(playwright, product.base, product.token, height=1400)
        page.goto(f"{product.base}/pdm/")
        page.locator("#outlook-gprd .main-svg").first.wait_for(
            timeout=90_000
        )  # drawn by the served plotly.js
        text = page.content()
        local = page.locator("time").first.inner_text()
        page.screenshot(path=str(SHOTS / "rm-view-pdm-page.png"), full_page=True)
        page.goto(f"{product.base}/plugin/pdm")  # embedded in Airflow's UI (the nav entry)
        page.frame_locator("iframe").locator("#outlook-gstg .main-svg").first.wait_for(timeout=90_000)
        page.screenshot(path=str(SHOTS / "rm-view-pdm-page-embedded.png"))
        browser.close()
    for label in ("The next 7 days", "schema_heavy may run", "predicted next run"):
        assert label in text, label
    assert "UTC" not in local or local.endswith("UTC")  # rewritten by the browser into its own zone


def _log_text(product: MakeRun, dag_id: str, run_id: str, task_id: str) -> str:
    """The task's first try's log as the REST API serves it (the log the UI shows)."""
    found = product.api(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1?full_content=true")
    return json.dumps(found, ensure_ascii=False)


def test_the_gate_that_holds_a_run_is_the_sensor_shown_deferred(product):
    """One gate closed (an explicit deploy lock), one overridden, two open: exactly the closed gate's sensor
    is deferred, and its log says which gate, why and until when; the overridden one says so."""
    from playwright.sync_api import sync_playwright

    good = product.policy.read_text()
    policy = yaml.safe_load(good)
    policy["environments"]["gprd"].pop("after", None)  # gprd's migrations need not wait for gstg here
    policy.pop("change_locks", None)  # the windows below open on any day the test runs
    for name, rule in policy["classes"].items():
        if name != "unknown":
            rule["windows"] = ["any_time"]
            rule.pop("min_bake", None)  # the general 1 h bake: the test package finished ~3 h ago
    policy["gates"]["deploy_lock"].pop("forecast", None)  # only the explicit lock holds the environment
    lock_until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    lock = {"holder": "ui-test", "reason": "hotfix deploy in progress", "expires_at": lock_until.isoformat()}
    override = {"gates": ["traffic"], "reason": "UI test: traffic reviewed by the SRE on call"}
    product.publish_package()
    product.policy.write_text(yaml.safe_dump(policy, sort_keys=False))  # read by each run's tasks
    product.api("/variables", {"key": "pdm_lock_gprd", "value": json.dumps(lock)})
    locked = True
    try:
        product.api("/dags/pdm_gprd", {"is_paused": False}, method="PATCH")
        run_id = product.api(
            "/dags/pdm_gprd/dagRuns", {"logical_date": None, "conf": {"dry_run": True, "override": override}}
        )["dag_run_id"]
        held = {
            "gate_window": "success",
            "gate_low_traffic": "success",
            "gate_rollback_safe": "success",
            "gate_no_deploy_lock": "deferred",
        }
        states = product.wait(
            lambda: (
                (s := product.task_states("pdm_gprd", run_id))
                and all(s.get(t) == v for t, v in held.items())
                and s
            ),
            300,
            "the deploy-lock sensor deferred and the other gates done",
        )
        assert {t: states[t] for t in held} == held, states
        held_log = _log_text(product, "pdm_gprd", run_id, "gate_no_deploy_lock")
        assert "gate deploy_lock: closed" in held_log, held_log
        assert "explicit lock by ui-test" in held_log and "hotfix deploy in progress" in held_log, held_log
        assert lock_until.isoformat() in held_log, held_log  # until when
        traffic_log = _log_text(product, "pdm_gprd", run_id, "gate_low_traffic")
        assert "gate traffic: OVERRIDDEN by admin" in traffic_log and override["reason"] in traffic_log
        window_log = _log_text(product, "pdm_gprd", run_id, "gate_window")
        assert "gate window: open" in window_log, window_log
        with sync_playwright() as playwright:
            browser, page = browser_page(playwright, product.base, product.token, height=1200)
            page.goto(f"{product.base}/dags/pdm_gprd/runs/{run_id}/tasks/gate_no_deploy_lock")
            page.get_by_text("explicit lock by ui-test").first.wait_for(timeout=90_000)
            held_page = page.inner_text("body")
            page.screenshot(path=str(SHOTS / "rm-view-gate-deferred-log.png"), full_page=True)
            page.goto(f"{product.base}/dags/pdm_gprd/runs/{run_id}/tasks/gate_low_traffic")
            page.get_by_text("OVERRIDDEN by admin").first.wait_for(timeout=90_000)
            page.screenshot(path=str(SHOTS / "rm-view-gate-overridden-log.png"), full_page=True)
            # The grid: the run's column has one purple (deferred) cell, in the row gate_no_deploy_lock.
            page.goto(f"{product.base}/dags/pdm_gprd")
            page.get_by_text("gate_no_deploy_lock").first.wait_for(timeout=90_000)
            page.screenshot(path=str(SHOTS / "rm-view-gate-deferred-grid.png"), full_page=True)
            browser.close()
        assert "deferred" in held_page.lower()  # the task's page shows its state
        # Lifting the lock lets the sensor's next poll open the gate; the dry run then ends on its own.
        product.api("/variables/pdm_lock_gprd", method="DELETE")
        locked = False
        run = product.finished("pdm_gprd", run_id, timeout=300)
        assert run["state"] == "success", run
        assert product.task_states("pdm_gprd", run_id)["gate_no_deploy_lock"] == "success"
    finally:
        if locked:
            product.api("/variables/pdm_lock_gprd", method="DELETE")
        product.policy.write_text(good)


def _awaiting_approval(product: MakeRun, dag_id: str, run_id: str) -> bool:
    return product.task_states(dag_id, run_id).get("request_approval") == "awaiting_input"


def _answer_in_the_ui(page, product: MakeRun, dag_id: str, run_id: str, option: str, comment: str, shot: str):
    """Open the run's Required Actions form, write the comment, press the option (as a release manager)."""
    page.goto(f"{product.base}/dags/{dag_id}/runs/{run_id}/tasks/request_approval/required_actions")
    page.get_by_text("Diff of the pending range in GitLab").first.wait_for(timeout=90_000)
    field = page.locator("#element_comment")
    field.wait_for(timeout=90_000)
    field.fill(comment)
    page.screenshot(path=str(SHOTS / f"rm-approval-{shot}-request.png"), full_page=True)
    page.get_by_role("button", name=option, exact=True).first.click()
    page.get_by_text("response successful").first.wait_for(timeout=90_000)
    page.screenshot(path=str(SHOTS / f"rm-approval-{shot}-answered.png"), full_page=True)


def test_an_approval_granted_and_one_rejected_in_required_actions(product):
    """A run that needs a human waits in Required Actions; one is rejected, one approved, from the real UI."""
    from playwright.sync_api import sync_playwright

    good = product.policy.read_text()
    policy = yaml.safe_load(good)
    policy["environments"]["gprd"].pop("after", None)  # gprd's migrations need not wait for gstg here
    for name, rule in policy["classes"].items():
        if name not in ("noop", "unknown"):
            rule["approval_required"] = True  # every class with work needs a person's approval
    product.policy.write_text(yaml.safe_dump(policy, sort_keys=False))  # read by each run's tasks
    try:
        product.api("/dags/pdm_gprd", {"is_paused": False}, method="PATCH")
        rejected = product.api("/dags/pdm_gprd/dagRuns", {"logical_date": None, "conf": {}})["dag_run_id"]
        product.wait(lambda: _awaiting_approval(product, "pdm_gprd", rejected), 300, "the approval request")
        with sync_playwright() as playwright:
            browser, page = browser_page(playwright, product.base, product.token, height=1400)
            _answer_in_the_ui(
                page, product, "pdm_gprd", rejected, "Reject", "DBRE review pending", "rejected"
            )
            browser.close()
        run = product.finished("pdm_gprd", rejected)
        assert run["state"] == "success" and run["note"].startswith("rejected: rejected by admin: DBRE")
        assert product.task_states("pdm_gprd", rejected)["outcome_rejected"] == "success"

        approved = product.api("/dags/pdm_gprd/dagRuns", {"logical_date": None, "conf": {}})["dag_run_id"]
        product.wait(lambda: _awaiting_approval(product, "pdm_gprd", approved), 300, "the approval request")
        with sync_playwright() as playwright:
            browser, page = browser_page(playwright, product.base, product.token, height=1400)
            _answer_in_the_ui(
                page, product, "pdm_gprd", approved, "Approve", "CR 4321: read the diff", "approved"
            )
            browser.close()
        # Approve goes on to the gates; open by hand those still waiting. schema_heavy's window is the weekend
        # here: on a weekday the window gate cannot open within gates.max_wait, so it answers closed at once
        # (success, open: false) instead of deferring, and is "running" for well under a second. Waiting for
        # "deferred or running" alone raced that (a clean-clone run on a quiet machine missed it).
        product.wait(
            lambda: (
                product.task_states("pdm_gprd", approved).get("gate_window")
                in ("deferred", "running", "success")
            ),
            300,
            "the gates after the approval",
        )
        for gate in ("gate_window", "gate_low_traffic", "gate_no_deploy_lock", "gate_rollback_safe"):
            if product.task_states("pdm_gprd", approved).get(gate) != "success":
                product.set_task_state("pdm_gprd", approved, gate, "success")
        run = product.finished("pdm_gprd", approved, timeout=400)
        with sync_playwright() as playwright:
            browser, page = browser_page(playwright, product.base, product.token, height=1400)
            page.goto(f"{product.base}/pdm/")
            page.get_by_text("approved by admin").first.wait_for(timeout=90_000)
            pdm_text = page.inner_text("body")
            page.locator("td.approval").first.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "rm-approval-pdm-page.png"), full_page=True)
            browser.close()
    finally:
        product.policy.write_text(good)
    assert "CR 4321: read the diff" in pdm_text and "rejected by admin" in pdm_text
    assert "DBRE review pending" in pdm_text
