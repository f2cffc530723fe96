"""The manual trigger form of the PDM DAGs (Params) and its validation.

Airflow validates each Param on its own (JSON Schema, on the API server, before the run is created), so a rule
that ties two values together must live in one Param: the gates to override and the reason form one object,
whose schema says "a reason of at least 10 characters as soon as a gate is chosen". The trigger form then
refuses the run with the schema's message instead of accepting it and failing a minute later.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

from include.classification.classes import MigrationClass
from include.gates.result import GATE_NAMES

GATES = list(GATE_NAMES)
CLASSES = [cls.value for cls in MigrationClass]
MIN_REASON = 10

OVERRIDE_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {
        "gates": {"type": "array", "items": {"type": "string", "enum": GATES}, "uniqueItems": True},
        "reason": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
    # A gate chosen → a reason is required (JSON Schema if/then, validated by the API server on trigger).
    "if": {"type": "object", "required": ["gates"], "properties": {"gates": {"minItems": 1}}},
    "then": {"required": ["reason"], "properties": {"reason": {"type": "string", "minLength": MIN_REASON}}},
}


class InvalidRunParameters(AirflowFailException, ValueError):
    """A manual run's parameters do not make sense together; the message says which and why.

    An AirflowFailException: the task fails at once, without retries, since retrying cannot fix the input."""


def pdm_params(environment: str, *, selected_versions: bool = False) -> dict[str, Param]:
    """The trigger form: dry run, gate overrides with a mandatory reason, and (only where the policy's execution
    mode is selected_versions) the class filter.

    Optional fields admit null: the Airflow UI marks every field whose type lacks "null" as required and turns
    an empty input into null, which would keep the Trigger button disabled. Arrays carry `examples` so the UI
    renders them as multi-selects; `items.enum` still makes the API refuse an unknown class."""
    params = {
        "environment": Param(
            environment,
            type="string",
            enum=[environment],
            title="Environment",
            description=(
                "The environment this DAG runs the PDM pipeline on. One run at a time holds it: a run that "
                "finds another run or a PDM pipeline holding it ends as environment_busy without triggering."
            ),
            section="Run",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Evaluate pending migrations and gates and record the decision; never trigger the pipeline.",
            section="Run",
        ),
        "override": Param(
            {"gates": [], "reason": ""},
            title="Gate override",
            description_md=(
                "Closed gates to treat as open **for this run only**, and why (at least "
                f"{MIN_REASON} characters, e.g. the incident or change request); recorded with your user name. "
                f"Gates: {', '.join(f'`{g}`' for g in GATES)}. Example: "
                '`{"gates": ["window"], "reason": "CR 1234: approved outside the window"}`. '
                "The run is refused when a gate is chosen without a reason."
            ),
            section="Override",
            **OVERRIDE_SCHEMA,
        ),
    }
    if selected_versions:
        params["class_filter"] = Param(
            [],
            type=["array", "null"],
            items={"type": "string", "enum": CLASSES},
            examples=CLASSES,
            title="Class filter (selected_versions mode)",
            description="Only run pending migrations of these classes (a prefix in version order). Empty: all.",
            section="Selection",
        )
    return params


def gate_overrides(params: dict[str, Any]) -> dict[str, str]:
    """{gate: reason} for the overridden gates; raises InvalidRunParameters when the reason is missing.

    Reads the form's `override` object; the older separate keys `override_gates`/`override_reason` (REST
    clients, scripts) are still accepted and checked the same way at run time."""
    override = params.get("override") or {}
    if not isinstance(override, dict):
        raise InvalidRunParameters(f"override: expected an object {{gates, reason}}, got {override!r}")
    gates = list(override.get("gates") or params.get("override_gates") or [])
    reason = str(override.get("reason") or params.get("override_reason") or "").strip()
    unknown = [g for g in gates if g not in GATES]
    if unknown:
        raise InvalidRunParameters(f"override.gates: unknown gate(s) {unknown} (known: {', '.join(GATES)})")
    if gates and len(reason) < MIN_REASON:
        raise InvalidRunParameters(
            f"override.reason: overriding gates needs a reason of at least {MIN_REASON} characters "
            f"(gates: {', '.join(gates)})"
        )
    if reason and not gates:
        raise InvalidRunParameters("override.reason is set but no gate is selected in override.gates")
    return dict.fromkeys(gates, reason)


def validate_run_params(params: dict[str, Any], execution_mode: str) -> None:
    """Every check of a run's parameters, done by the run's first task so that a bad input fails once, first,
    with its cause (the form's schema already refuses most of it before the run exists)."""
    gate_overrides(params)
    class_filter = params.get("class_filter") or []
    if class_filter and execution_mode != "selected_versions":
        raise InvalidRunParameters(
            f"class_filter {class_filter} only applies when the policy's execution_mode is selected_versions "
            f"(it is {execution_mode}): remove it"
        )
    unknown = [c for c in class_filter if c not in CLASSES]
    if unknown:
        raise InvalidRunParameters(f"class_filter: unknown class(es) {unknown} (known: {', '.join(CLASSES)})")
