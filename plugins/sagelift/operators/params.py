"""The pipeline's parameters as Airflow Params for the trigger form (the definitions live in domain)."""

from __future__ import annotations

from airflow.sdk import Param

from sagelift.domain.params import PARAMETERS, instance_types


def airflow_params() -> dict[str, Param]:
    """One Param per parameter, with its title, description, section and JSON-schema type.

    Schemas stay permissive on purpose (strings for JSON values and counts are accepted, as in the
    original KFP payload); the validate task applies every rule and names the field that breaks one.
    """
    params: dict[str, Param] = {}
    for spec in PARAMETERS:
        schema = dict(spec.schema)
        if spec.name in ("training_instance_type", "endpoint_instance_type"):
            kind = "training" if spec.name.startswith("training") else "endpoint"
            # Suggestions, not an enum: Airflow would refuse other values at trigger time with a message
            # listing all 200+ types; validate refuses them naming the field instead.
            schema["examples"] = list(instance_types()[kind])
        params[spec.name] = Param(
            spec.default, title=spec.title, description=spec.description, section=spec.section, **schema
        )
    return params
