"""The trigger form's schema refuses bad input before a run exists (Airflow validates each Param on the API
server with JSON Schema), and the run's first task refuses what the schema cannot see, once, without retry."""

from __future__ import annotations

import pytest

from pdm_orchestrator.params import InvalidRunParameters, gate_overrides, pdm_params, validate_run_params


def _validate(conf: dict) -> dict:
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(pdm_params("gprd"))
    params.update(conf)
    return params.validate()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"gates": ["window"], "reason": ""}, "too short"),
        ({"gates": ["window"], "reason": "short"}, "too short"),
        ({"gates": ["window"]}, "'reason' is a required property"),
        ({"gates": ["window"], "reason": None}, "None is not of type 'string'"),
        ({"gates": ["no_such_gate"], "reason": "CR 1234 approved it"}, "is not one of"),
        ({"gates": ["window"], "reason": "CR 1234 approved it", "extra": 1}, "Additional properties"),
    ],
)
def test_the_form_schema_refuses_an_override_without_a_proper_reason(override, message):
    from airflow.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match=message):
        _validate({"override": override})


@pytest.mark.parametrize(
    "override",
    [None, {"gates": [], "reason": ""}, {"gates": ["window", "traffic"], "reason": "CR 1234 approved it"}],
)
def test_the_form_schema_accepts_no_override_or_one_with_a_reason(override):
    assert _validate({"override": override})["override"] == override


def test_class_filter_is_on_the_form_only_in_selected_versions_mode():
    assert "class_filter" not in pdm_params("gprd")
    assert "class_filter" in pdm_params("gprd", selected_versions=True)


def test_runtime_checks_fail_without_retry_and_name_the_field():
    from airflow.sdk.exceptions import AirflowFailException

    assert issubclass(InvalidRunParameters, AirflowFailException)
    with pytest.raises(InvalidRunParameters, match=r"override\.reason: .* at least 10"):
        gate_overrides({"override_gates": ["window"], "override_reason": ""})  # older REST keys
    with pytest.raises(InvalidRunParameters, match=r"override\.reason is set but no gate"):
        gate_overrides({"override": {"gates": [], "reason": "CR 1234 approved it"}})
    with pytest.raises(InvalidRunParameters, match="only applies when the policy's execution_mode"):
        validate_run_params({"class_filter": ["data"]}, "all_pending")
    validate_run_params({"class_filter": ["data"]}, "selected_versions")
    assert gate_overrides({"override": {"gates": ["window"], "reason": " CR 1234 approved it "}}) == {
        "window": "CR 1234 approved it"
    }


def test_the_form_lists_the_gates_and_classes_from_their_one_home():
    from include.classification.classes import MigrationClass
    from include.gates.result import GATE_NAMES
    from pdm_orchestrator.params import CLASSES, GATES
    from pdm_orchestrator.sensors.gates import GATE_TASKS

    assert GATES == list(GATE_NAMES) == list(GATE_TASKS)
    assert CLASSES == [cls.value for cls in MigrationClass]
