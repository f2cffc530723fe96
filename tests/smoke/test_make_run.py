"""`make run` itself: it comes up healthy, lists the PDM DAGs, runs pdm_gprd to an audited end, runs pdm_gstg
from the Airflow UI's trigger form with overridden gates to a pipeline the extra link opens, and Ctrl-C stops
everything it started."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.error
from pathlib import Path

import pytest

from tests.support.browser import browser_page, fill_json_field
from tests.support.processes import call_json, free_port, port_open, wait_for

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _get(url, token=None, data=None, method=None):
    return call_json(url, token, data, method)


def _wait(predicate, timeout, what, proc, log: Path):
    def died():
        return f"make run exited with {proc.returncode}" if proc.poll() is not None else None

    return wait_for(predicate, timeout, what, lambda: log.read_text()[-4000:], died)


def test_make_run_end_to_end(tmp_path):
    ports = {name: free_port() for name in ("airflow", "gitlab", "exporter", "prometheus")}
    home = tmp_path / "airflow"
    env = dict(
        os.environ,
        PDM_RUN_DIR=str(tmp_path / "run"),
        PDM_AIRFLOW_HOME=str(home),
        PDM_AIRFLOW_PORT=str(ports["airflow"]),
        PDM_SANDBOX_GITLAB_PORT=str(ports["gitlab"]),
        PDM_TRAFFIC_EXPORTER_PORT=str(ports["exporter"]),
        PDM_PROMETHEUS_PORT=str(ports["prometheus"]),
    )
    for key in [k for k in env if k.startswith("AIRFLOW")] + ["PDM_POLICY_FILE"]:
        env.pop(key, None)
    log = tmp_path / "make-run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["make", "run"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{ports['airflow']}"
    try:
        _wait(
            lambda: _get(f"{base}/api/v2/monitor/health")["scheduler"]["status"] == "healthy",
            300,
            "health",
            proc,
            log,
        )
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        token = _get(f"{base}/auth/token", data={"username": "admin", "password": password})["access_token"]
        dag_ids = _wait(
            lambda: (
                {d["dag_id"] for d in _get(f"{base}/api/v2/dags", token)["dags"]} >= {"pdm_gprd", "pdm_gstg"}
            ),
            180,
            "the PDM DAGs in the REST API",
            proc,
            log,
        )
        assert dag_ids
        _get(f"{base}/api/v2/dags/pdm_gprd", token, data={"is_paused": False}, method="PATCH")
        run = _get(
            f"{base}/api/v2/dags/pdm_gprd/dagRuns",
            token,
            data={"logical_date": None, "conf": {"dry_run": True}},
        )
        run_url = f"{base}/api/v2/dags/pdm_gprd/dagRuns/{run['dag_run_id']}"
        state = _wait(
            lambda: (s := _get(run_url, token)["state"]) in ("success", "failed") and s,
            240,
            "the manual pdm_gprd run to finish",
            proc,
            log,
        )
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
        check_pdm_page(base, token, tmp_path)
        check_trigger_form_and_extra_link(base, token, home, proc, log)
        check_metrics(base, ports["prometheus"], tmp_path / "run" / "pdm-metrics-token", proc, log)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("make run did not stop within 60 s of Ctrl-C")
    time.sleep(2)
    still_open = [name for name, port in ports.items() if port_open(port)]
    assert still_open == [], f"still listening after Ctrl-C: {still_open}\n{log.read_text()[-3000:]}"


def check_pdm_page(base: str, token: str, tmp_path: Path) -> None:
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


def check_trigger_form_and_extra_link(base: str, token: str, home: Path, proc, log: Path) -> None:
    """A release manager's manual run: the form's sections, gates overridden with a reason, a real pipeline in
    the sandbox GitLab, and the task's extra link pointing at it."""
    from playwright.sync_api import sync_playwright

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

    runs = f"{base}/api/v2/dags/pdm_gstg/dagRuns"
    run = _wait(
        lambda: next(
            (
                r
                for r in _get(f"{runs}?order_by=-run_after&limit=5", token)["dag_runs"]
                if r["run_type"] == "manual"
            ),
            None,
        ),
        60,
        "the run triggered from the form",
        proc,
        log,
    )
    assert run["conf"]["override"] == {"gates": gates, "reason": reason}
    run_url = f"{runs}/{run['dag_run_id']}"
    state = _wait(
        lambda: (s := _get(run_url, token)["state"]) in ("success", "failed") and s,
        240,
        "the pdm_gstg run from the form to finish",
        proc,
        log,
    )
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


def check_metrics(base: str, prometheus_port: int, token_file: Path, proc, log: Path) -> None:
    """The metrics endpoint needs its bearer token, and the real Prometheus of make run scrapes it."""

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
    _wait(
        lambda: _get(f"http://127.0.0.1:{prometheus_port}/api/v1/query?{query}")["data"]["result"],
        90,
        "Prometheus to scrape /pdm/metrics",
        proc,
        log,
    )
