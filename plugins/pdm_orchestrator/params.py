"""The manual trigger form of the PDM DAGs (Params) and its validation."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

GATES = ["window", "traffic", "deploy_lock", "rollback_safety"]
CLASSES = ["noop", "background", "data", "schema_heavy", "cleanup", "unknown"]


class InvalidRunParameters(AirflowFailException, ValueError):
    """A manual run's parameters do not make sense together; the message says which and why.

    A failure, not an error to retry: the parameters cannot change between tries, so the task fails at once."""


def pdm_params(environment: str) -> dict[str, Param]:
    """The trigger form: dry run, gate overrides with a mandatory reason, class filter.

    Optional fields admit null: the Airflow UI marks every field whose type lacks "null" as required and turns
    an empty input into null, which would keep the Trigger button disabled. Arrays carry `examples` so the UI
    renders them as multi-selects; `items.enum` still makes the API refuse an unknown gate or class."""
    return {
        "environment": Param(
            environment,
            type="string",
            enum=[environment],
            title="Environment",
            description="The environment this DAG runs the PDM pipeline on.",
            section="Run",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Evaluate pending migrations and gates and record the decision; never trigger the pipeline.",
            section="Run",
        ),
        "override_gates": Param(
            [],
            type=["array", "null"],
            items={"type": "string", "enum": GATES},
            examples=GATES,
            title="Gates to override",
            description_md="Closed gates to treat as open **for this run only**. Needs a reason; recorded with your user name.",
            section="Override",
        ),
        "override_reason": Param(
            "",
            type=["string", "null"],
            title="Override reason",
            description="Why the overridden gates may be ignored (e.g. the incident or change request).",
            section="Override",
        ),
        "class_filter": Param(
            [],
            type=["array", "null"],
            items={"type": "string", "enum": CLASSES},
            examples=CLASSES,
            title="Class filter (selected_versions mode)",
            description="Only run pending migrations of these classes (a prefix in version order). Empty: all.",
            section="Selection",
        ),
    }


def gate_overrides(params: dict[str, Any]) -> dict[str, str]:
    """{gate: reason} for the overridden gates; raises InvalidRunParameters when the reason is missing."""
    gates = list(params.get("override_gates") or [])
    reason = str(params.get("override_reason") or "").strip()
    unknown = [g for g in gates if g not in GATES]
    if unknown:
        raise InvalidRunParameters(f"override_gates: unknown gate(s) {unknown} (known: {', '.join(GATES)})")
    if gates and len(reason) < 10:
        raise InvalidRunParameters(
            "override_reason: overriding gates needs a reason of at least 10 characters "
            f"(gates: {', '.join(gates)})"
        )
    if reason and not gates:
        raise InvalidRunParameters("override_reason is set but no gate is selected in override_gates")
    return dict.fromkeys(gates, reason)
