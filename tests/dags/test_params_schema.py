"""The trigger form's parameters: all 13 originals and the optional overrides, described and sectioned."""

from __future__ import annotations

import jsonschema
import pytest

from sagelift.domain.params import ORIGINAL_PARAMETER_NAMES, PARAMETERS, instance_types
from sagelift.operators.params import airflow_params

ORIGINAL_13 = [
    "model_name",
    "account_id",
    "model_docker_image",
    "model_artifact_s3_path",
    "environment",
    "training_algorithm_name",
    "training_docker_image",
    "training_hyperparameters",
    "training_instance_count",
    "training_instance_type",
    "endpoint_instance_type",
    "training_channels",
    "training_s3_output_path",
]


def test_the_original_thirteen_parameters_with_their_defaults():
    assert list(ORIGINAL_PARAMETER_NAMES) == ORIGINAL_13
    params = airflow_params()
    assert params["training_instance_count"].value == 2
    assert params["training_instance_type"].value == "ml.m5.large"
    assert params["endpoint_instance_type"].value == "ml.m5.large"
    assert params["environment"].value == {}
    assert params["training_channels"].value == []


def test_every_param_has_title_description_section_and_type():
    for name, param in airflow_params().items():
        schema = param.schema
        assert schema.get("title"), name
        assert len(param.description or "") > 20, name
        assert schema.get("section"), name
        assert schema.get("type"), name
        jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("environment", '{"A": "1"}'),
        ("environment", {"A": "1"}),
        ("training_hyperparameters", '{"a": "1"}'),
        ("training_hyperparameters", {"a": 1}),
        ("training_channels", "[]"),
        ("training_channels", [{"ChannelName": "train"}]),
        ("training_instance_count", "2"),
        ("training_instance_count", 2),
        ("account_id", 333333333333),
    ],
)
def test_schema_accepts_the_kfp_string_forms_and_native_values(name, value):
    jsonschema.validate(value, airflow_params()[name].schema)


def test_instance_types_are_enums_of_sagemaker_instance_types():
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    training = model.operation_model("CreateTrainingJob").input_shape.members["ResourceConfig"]
    endpoint = model.operation_model("CreateEndpointConfig").input_shape.members["ProductionVariants"].member
    assert set(instance_types()["training"]) <= set(training.members["InstanceType"].enum)
    assert set(instance_types()["endpoint"]) <= set(endpoint.members["InstanceType"].enum)
    for name, kind in (("training_instance_type", "training"), ("endpoint_instance_type", "endpoint")):
        param = airflow_params()[name]
        assert param.schema["enum"] == list(instance_types()[kind])
        assert param.value in param.schema["enum"]


def test_an_unknown_instance_type_is_refused_at_trigger_time_naming_the_param():
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(airflow_params())
    with pytest.raises(ParamValidationError) as refused:  # what the API server does with a run's conf
        params.update({"training_instance_type": "ml.m5.huge"})
        params.validate()
    # The first line says it all; jsonschema appends the schema after it.
    first_line = str(refused.value).splitlines()[0]
    assert first_line.startswith("Invalid input for param training_instance_type: 'ml.m5.huge' is not one of")


def test_sections_group_the_form():
    sections = {spec.section for spec in PARAMETERS}
    assert len(sections) >= 3
