"""The trigger form's parameters: all 13 originals and the optional overrides, described and sectioned."""

from __future__ import annotations

import json

import jsonschema
import pytest

from sagelift.dags.params import airflow_params
from sagelift.domain.params import ORIGINAL_PARAMETER_NAMES, PARAMETERS, builtin_algorithms, instance_types

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


def test_instance_types_and_algorithms_are_offered_as_the_form_s_suggestions():
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    training = model.operation_model("CreateTrainingJob").input_shape.members["ResourceConfig"]
    endpoint = model.operation_model("CreateEndpointConfig").input_shape.members["ProductionVariants"].member
    assert set(instance_types()["training"]) <= set(training.members["InstanceType"].enum)
    assert set(instance_types()["endpoint"]) <= set(endpoint.members["InstanceType"].enum)
    params = airflow_params()
    for name, kind in (("training_instance_type", "training"), ("endpoint_instance_type", "endpoint")):
        # examples, not enum: the form offers the list, validate refuses what is not in it
        # endpoint_instance_type offers "auto" first: recommend_instance picks (README: Instance recommendation)
        offered = ["auto"] if name == "endpoint_instance_type" else []
        assert params[name].schema["examples"] == offered + list(instance_types()[kind])
        assert params[name].value in params[name].schema["examples"]
    assert params["training_algorithm_name"].schema["examples"] == list(builtin_algorithms())
    assert not [name for name, param in params.items() if "enum" in param.schema]


def _dag_params(server_side: bool):
    """The params as the API server validates a triggered run's conf (deserialized), or as the SDK does."""
    from airflow.sdk import DAG
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.serialization.serialized_objects import DagSerialization

    if not server_side:
        return ParamsDict(airflow_params())
    with DAG("params_probe", schedule=None, params=airflow_params()) as dag:
        pass
    return DagSerialization.from_dict(DagSerialization.to_dict(dag)).params


HOSTILE_CONF_VALUES = [
    "ml.m5.huge",
    "",
    None,
    0,
    -1,
    2.5,
    True,
    "x" * 20_000,
    ["x" * 2000] * 5,
    {"k": "v" * 5000},
    [[[[[[[["deep"]]]]]]]],
    {"a": {"b": {"c": {"d": None}}}},
    "é\u00e9\x00",
]


@pytest.mark.parametrize("server_side", [False, True], ids=["sdk", "api_server"])
def test_a_triggered_conf_is_never_refused_with_a_schema_dump(server_side):
    """What Airflow answers at trigger time: POST /dagRuns returns 400 {"detail": str(error)} when a
    param fails its schema. The schemas accept every JSON value, so Airflow never answers with its
    multi-line JSON-schema dump; validate names the field and the rule instead. Were one to fail, the
    REST body would still have to stay within 1 KB and its first line within 200 characters."""
    from airflow.exceptions import ParamValidationError as ServerParamValidationError
    from airflow.sdk.exceptions import ParamValidationError

    refused = []
    for name in airflow_params():
        for value in HOSTILE_CONF_VALUES:
            params = _dag_params(server_side)
            try:
                if server_side:
                    params.deep_merge({name: value}).validate()
                else:
                    params.update({name: value})
                    params.validate()
            except (ParamValidationError, ServerParamValidationError) as err:
                body = json.dumps({"detail": str(err)})
                assert len(body) <= 1024 and len(str(err).splitlines()[0]) <= 200, (name, body[:300])
                refused.append(name)
    assert refused == []


def test_an_enum_of_instance_types_would_break_the_1_kb_bound():
    """Why instance types are suggestions and not an enum: Airflow's refusal lists the whole enum."""
    from airflow.sdk import Param
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict({"t": Param("ml.m5.large", type="string", enum=list(instance_types()["training"]))})
    with pytest.raises(ParamValidationError) as refused:
        params.update({"t": "ml.m5.huge"})
    assert len(json.dumps({"detail": str(refused.value)})) > 1024


def test_sections_group_the_form():
    sections = {spec.section for spec in PARAMETERS}
    assert len(sections) >= 3


def test_the_form_is_serialized_once_on_the_dag_and_every_task_still_sees_it():
    """share_form_params: no task carries a copy of the form (the parse validated every copy), yet each
    task's context["params"] holds the form's defaults and the run's conf, as Airflow merges them."""
    from airflow.sdk.definitions.param import process_params
    from airflow.serialization.serialized_objects import DagSerialization

    from sagelift.dags.sagemaker_deploy import dag

    serialized = DagSerialization.to_dict(dag)["dag"]
    assert [name for name, _ in serialized["params"]] == [spec.name for spec in PARAMETERS]
    assert [task["__var"]["task_id"] for task in serialized["tasks"] if "params" in task["__var"]] == []
    defaults = {spec.name: spec.default for spec in PARAMETERS}
    for task in dag.tasks:
        seen = process_params(dag, task, {"model_name": "churn"}, suppress_exception=False)
        assert seen == {**defaults, "model_name": "churn"}, task.task_id
