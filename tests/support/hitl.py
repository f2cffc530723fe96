"""Answers an Airflow human-in-the-loop request from a test, as the Required Actions UI does.

`dag.test()` leaves a HITL task parked in `awaiting_input` until a response reaches the metadata DB. This
writes the response the way the REST API's `PATCH …/hitlDetails` handler does (the responder, time, option,
form input) and resumes the task with the same event, in a thread while `dag.test()` waits.
"""

from __future__ import annotations

import threading
import time
from typing import Any


def respond(
    dag_id: str,
    task_id: str,
    option: str | None,
    comment: str = "",
    *,
    user: str = "alice",
    timeout: float = 180.0,
) -> dict[str, Any]:
    """Wait for an open request of `task_id` and answer it; `option=None` expires it (the scheduler's sweep)."""
    from airflow._shared.timezones import timezone
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    deadline = time.monotonic() + timeout
    time.sleep(5)  # let dag.test() create its run first
    while time.monotonic() < deadline:
        with create_session() as session:
            ti = session.scalars(
                select(TI).where(
                    TI.dag_id == dag_id, TI.task_id == task_id, TI.state == TaskInstanceState.AWAITING_INPUT
                )
            ).first()
            detail = session.get(HITLDetail, ti.id) if ti is not None else None
            if ti is not None and detail is not None:
                seen = {"subject": detail.subject, "body": detail.body, "options": list(detail.options)}
                if option is None:
                    event = {"error": "timeout (test)", "error_type": "timeout"}
                else:
                    detail.responded_by = {"id": user, "name": user}
                    detail.responded_at = timezone.utcnow()
                    detail.chosen_options = [option]
                    detail.params_input = {"comment": comment}
                    session.add(detail)
                    event = detail.as_resume_event_payload()
                handle_event_submit(TriggerEvent(event), task_instance=ti, session=session)
                return seen
        time.sleep(0.5)
    raise TimeoutError(f"no open human-in-the-loop request for {dag_id}.{task_id} within {timeout:.0f} s")


def respond_in_background(dag_id: str, task_id: str, option: str | None, comment: str = "", **kw: Any):
    """Start `respond` in a thread; returns (thread, result dict filled with 'seen' or 'error')."""
    # Import Airflow's modules here, in the caller's thread: importing them in the thread while dag.test()
    # imports in the main one can deadlock on the import locks.
    import airflow.models.hitl  # noqa: F401
    import airflow.models.taskinstance  # noqa: F401
    import airflow.models.trigger  # noqa: F401
    import airflow.triggers.base  # noqa: F401
    import airflow.utils.session  # noqa: F401

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["seen"] = respond(dag_id, task_id, option, comment, **kw)
        except Exception as exc:  # noqa: BLE001 - reported to the test through `result`
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def run_answering(
    pdm_world: Any, option: str | None, comment: str = "", *, dag_id: str = "pdm_gprd"
) -> tuple[Any, dict[str, Any]]:
    """Run the PDM DAG with `dag.test()` while its approval request is answered `option` (None: expires).

    Returns the finished run and what the request showed (subject, body, options); fails the test when no
    request was answered.
    """
    thread, answered = respond_in_background(dag_id, "request_approval", option, comment)
    run = pdm_world.run()
    thread.join(timeout=30)
    assert "error" not in answered, answered
    return run, answered["seen"]
