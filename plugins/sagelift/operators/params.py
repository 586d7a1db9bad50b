"""The pipeline's parameters as Airflow Params for the trigger form (the definitions live in domain)."""

from __future__ import annotations

from airflow.sdk import Param

from sagelift.domain.params import PARAMETERS, instance_types


def airflow_params() -> dict[str, Param]:
    """One Param per parameter, with its title, description, section and JSON-schema type.

    Instance types are enums (a dropdown in the form; Airflow refuses another value at trigger time,
    naming the param). The other schemas stay permissive on purpose: strings for JSON values and counts
    are accepted, as in the original KFP payload, so a JSON parameter is a union of its JSON type and
    "string", which the form edits as JSON text; the validate task applies every other rule and names the
    field that breaks one.
    """
    params: dict[str, Param] = {}
    for spec in PARAMETERS:
        schema = dict(spec.schema)
        if spec.name in ("training_instance_type", "endpoint_instance_type"):
            kind = "training" if spec.name.startswith("training") else "endpoint"
            # The same table validate checks, so the form offers exactly what validate accepts.
            schema["enum"] = list(instance_types()[kind])
        params[spec.name] = Param(
            spec.default, title=spec.title, description=spec.description, section=spec.section, **schema
        )
    return params
