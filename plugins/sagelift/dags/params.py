"""The pipeline's parameters as Airflow Params for the trigger form (the definitions live in domain)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param
from airflow.sdk.definitions.param import ParamsDict

from sagelift.domain.endpoint_settings import settings_doc_markdown
from sagelift.domain.params import PARAMETERS, ParamSpec, builtin_algorithms, instance_types

# Every JSON type: the trigger-time schema accepts any value, so Airflow never refuses a conf with its own
# JSON-schema message (the whole schema and the value, kilobytes long); validate refuses it instead,
# naming the field and the rule in one short line.
JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
INSTANCE_TYPE_PARAMS = {"training_instance_type": "training", "endpoint_instance_type": "endpoint"}


def param_schema(spec: ParamSpec) -> dict[str, Any]:
    """The JSON schema of one param: permissive types, the widget chosen by the first one.

    The form picks its widget from the first non-null type and, when several types remain and no
    ``examples`` are given, shows a JSON text box (the JSON parameters, counts and the account id). Plain
    text parameters carry ``examples``: the form shows a text field suggesting them (for instance types
    and built-in algorithms, the whole list: a dropdown to pick from while typing). Not an ``enum``: Airflow
    would refuse another value at trigger time with the list of all ~250 types in its message.
    """
    declared = spec.schema["type"]
    declared = [declared] if isinstance(declared, str) else list(declared)
    schema: dict[str, Any] = {"type": declared + [t for t in JSON_TYPES if t not in declared]}
    if spec.name in INSTANCE_TYPE_PARAMS:
        schema["examples"] = list(instance_types()[INSTANCE_TYPE_PARAMS[spec.name]])
        if spec.name == "endpoint_instance_type":  # "auto": recommend_instance decides
            schema["examples"].insert(0, "auto")
    elif spec.name == "training_algorithm_name":
        schema["examples"] = list(builtin_algorithms())
    elif [t for t in declared if t != "null"] == ["string"]:
        schema["examples"] = [str(example) for example in spec.examples]
    if spec.name == "endpoint":  # the form renders it under the field: every setting and its bounds
        schema["description_md"] = spec.description + "\n\n" + settings_doc_markdown()
    return schema


def airflow_params() -> dict[str, Param]:
    """One Param per parameter, with its title, description, section and permissive schema.

    The schemas accept the original KFP payload's forms (JSON values and counts as strings) and anything
    else: the validate task applies every rule and names the field that breaks one.
    """
    return {
        spec.name: Param(
            spec.default,
            title=spec.title,
            description=spec.description,
            section=spec.section,
            **param_schema(spec),
        )
        for spec in PARAMETERS
    }


def share_form_params(dag: DAG) -> None:
    """Keep the form's Params on the DAG alone: drop the copy Airflow gives each task.

    Airflow deep-copies a DAG's params into every task, and its serializer then validates each task's
    copy, every Param against its JSON schema (and the schema against the JSON-schema metaschema), twice
    per task: 26 x 24 validations for 13 tasks, the larger part of the DAG processor's parse. The copies
    carry nothing of their own (no sagelift task sets params), and a running task's ``context["params"]``
    starts from the DAG's params (``process_params``), so every task still sees the form's values; the
    trigger form and the run conf's validation read the DAG's. Call it after the last task is defined.
    """
    for task in dag.tasks:
        task.params = ParamsDict()
