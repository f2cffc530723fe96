"""`make run` itself: it comes up healthy, lists the PDM DAGs, runs pdm_gprd to an audited end, runs pdm_gstg
from the Airflow UI's trigger form with overridden gates to a pipeline the extra link opens, and Ctrl-C stops
everything it started (checked when the session's shared `make run` stops: tests/support/product.py)."""

from __future__ import annotations

import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support.browser import browser_page, fill_json_field
from tests.support.processes import call_json

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _get(url, token=None, data=None, method=None):
    return call_json(url, token, data, method)


def test_make_run_end_to_end(pdm_product):
    product = pdm_product
    base, token, home = product.base, product.token, product.home
    dag_ids = {d["dag_id"] for d in product.api("/dags")["dags"]}
    assert {"pdm_gprd", "pdm_gstg"} <= dag_ids
    product.api("/dags/pdm_gprd", {"is_paused": False}, method="PATCH")
    run = product.api("/dags/pdm_gprd/dagRuns", {"logical_date": None, "conf": {"dry_run": True}})
    state = product.finished("pdm_gprd", run["dag_run_id"], timeout=240)["state"]
    audit = sqlite3.connect(home / "pdm_audit.db")
    kinds = [
        row[0]
        for row in audit.execute(
            "SELECT kind FROM pdm_audit_event WHERE run_id = ? ORDER BY id", (run["dag_run_id"],)
        )
    ]
    audit.close()
    assert state == "success", kinds
    assert kinds[0] == "run_started" and kinds[-1] == "outcome"
    check_pdm_page(base, token)
    product.publish_package()  # gstg has work whatever the session's earlier tests ran
    check_trigger_form_and_extra_link(product)
    check_metrics(product)


def check_pdm_page(base: str, token: str) -> None:
    """The PDM page refuses anonymous requests and shows the environments to a logged-in browser."""

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/pdm/", timeout=10)
    assert refused.value.code in (401, 403)
    plugins = _get(f"{base}/api/v2/plugins", token)["plugins"]
    assert any(p["name"] == "pdm_orchestrator" for p in plugins)

    from playwright.sync_api import sync_playwright

    shot = PROJECT_ROOT / "tests" / "artifacts" / "pdm-page.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = _browser_page(playwright, base, token)
        page.goto(f"{base}/pdm/")
        text = page.inner_text("body")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert "Post-deploy migrations" in text
    assert "gprd" in text and "gstg" in text
    assert "Windows per class" in text and "schema_heavy" in text
    assert "Last runs" in text and "manual__" in text
    print(f"\nPDM page screenshot: {shot}")


def _browser_page(playwright, base: str, token: str):
    return browser_page(playwright, base, token)


def check_trigger_form_and_extra_link(product) -> None:
    """A release manager's manual run: the form's sections, gates overridden with a reason, a real pipeline in
    the sandbox GitLab, and the task's extra link pointing at it."""
    from playwright.sync_api import sync_playwright

    base, token, home = product.base, product.token, product.home
    runs = f"{base}/api/v2/dags/pdm_gstg/dagRuns"
    before = product.run_ids("pdm_gstg")
    gates = ["window", "traffic", "deploy_lock", "rollback_safety"]
    reason = "Smoke test: a manual run from the trigger form"
    shot = PROJECT_ROOT / "tests" / "artifacts" / "trigger-form.png"
    with sync_playwright() as playwright:
        browser, page = _browser_page(playwright, base, token)
        page.goto(f"{base}/dags/pdm_gstg")
        page.get_by_text("PDM windows (gstg)").first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        for section in ("Run", "Override"):
            assert dialog.get_by_role("button", name=section, exact=True).count() == 1, section
        # The class filter is only on the form of a selected_versions policy; the local one runs all pending.
        assert dialog.get_by_role("button", name="Selection", exact=True).count() == 0
        dialog.get_by_role("button", name="Override", exact=True).click()
        fill_json_field(page, dialog, "element_override", {"gates": gates, "reason": reason})
        page.screenshot(path=str(shot))
        submit = dialog.get_by_role("button", name="Trigger", exact=True)
        assert submit.is_enabled(), "the trigger form refuses its own defaults"
        submit.click()
        page.get_by_role("dialog").wait_for(state="detached", timeout=30_000)
        browser.close()

    run = product.wait(
        lambda: next(
            (
                r
                for r in _get(f"{runs}?order_by=-run_after&limit=5", token)["dag_runs"]
                if r["run_type"] == "manual" and r["dag_run_id"] not in before
            ),
            None,
        ),
        60,
        "the run triggered from the form",
    )
    assert run["conf"]["override"] == {"gates": gates, "reason": reason}
    run_url = f"{runs}/{run['dag_run_id']}"
    state = product.finished("pdm_gstg", run["dag_run_id"], timeout=240)["state"]
    audit = sqlite3.connect(home / "pdm_audit.db")
    outcome = audit.execute(
        "SELECT payload FROM pdm_audit_event WHERE run_id = ? AND kind = 'outcome'", (run["dag_run_id"],)
    ).fetchone()
    actor, decision = audit.execute(
        "SELECT actor, payload FROM pdm_audit_event WHERE run_id = ? AND kind = 'decision'",
        (run["dag_run_id"],),
    ).fetchone()
    audit.close()
    assert state == "success", outcome
    assert actor == "manual:admin" and reason in decision  # the override is recorded with its user and reason
    links = _get(f"{run_url}/taskInstances/trigger_pipeline/links", token)["extra_links"]
    pipeline_url = links["GitLab pipeline"]
    assert "/gitlab-org/release/tools/-/pipelines/" in pipeline_url
    with urllib.request.urlopen(pipeline_url, timeout=10) as response:
        page_text = response.read().decode()
    assert "PDM_ENVIRONMENT=gstg" in page_text


def check_metrics(product) -> None:
    """The metrics endpoint needs its bearer token, and the real Prometheus of make run scrapes it."""
    base, prometheus_port = product.base, product.ports["prometheus"]
    token_file = product.run_dir / "pdm-metrics-token"

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/pdm/metrics", timeout=10)
    assert refused.value.code == 401
    request = urllib.request.Request(
        f"{base}/pdm/metrics", headers={"Authorization": f"Bearer {token_file.read_text().strip()}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    assert "pdm_pending_migrations" in text and "pdm_next_window_seconds" in text
    query = urllib.parse.urlencode({"query": 'count(pdm_pending_migrations{environment="gprd"})'})
    product.wait(
        lambda: _get(f"http://127.0.0.1:{prometheus_port}/api/v1/query?{query}")["data"]["result"],
        90,
        "Prometheus to scrape /pdm/metrics",
    )
