"""Regenerate the data the domain layer ships from the locked botocore's SageMaker model.

The domain layer may not import botocore, so what it validates against is shipped as data:
- plugins/sagelift/domain/instance_types.json: the instance-type enums validate checks (and the trigger
  form suggests), the batch transform's included;
- plugins/sagelift/domain/training_channels.json: the shapes of CreateTrainingJob's InputDataConfig
  (types, enums, patterns, lengths, required and known members), which validate checks
  ``training_channels`` against (sagelift.domain.channels).
Run after upgrading boto3/botocore in uv.lock; tests fail while the files differ from the model.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import botocore.session

# The package's own folder: plugins/sagelift/domain in the work tree (the project's editable install).
DOMAIN = Path(str(resources.files("sagelift.domain")))
INSTANCE_TYPES = DOMAIN / "instance_types.json"
TRAINING_CHANNELS = DOMAIN / "training_channels.json"
# The constraints a shape can carry in the model; documentation and the like are left out.
_CONSTRAINTS = ("min", "max", "pattern")


def sagemaker_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


def instance_type_table(model: Any) -> dict[str, Any]:
    training = model.operation_model("CreateTrainingJob").input_shape.members["ResourceConfig"]
    endpoint = model.operation_model("CreateEndpointConfig").input_shape.members["ProductionVariants"].member
    transform = model.operation_model("CreateTransformJob").input_shape.members["TransformResources"]
    return {
        "_source": "botocore's SageMaker service model (TrainingInstanceType, ProductionVariantInstanceType, "
        "TransformInstanceType); refresh with scripts/refresh_instance_types.py",
        "training": sorted(training.members["InstanceType"].enum),
        "endpoint": sorted(endpoint.members["InstanceType"].enum),
        "transform": sorted(transform.members["InstanceType"].enum),
    }


def shape_extract(root: Any) -> dict[str, dict[str, Any]]:
    """Every shape reachable from ``root``, keyed by its model name, with only what validation needs."""
    shapes: dict[str, dict[str, Any]] = {}
    pending = [root]
    while pending:
        shape = pending.pop()
        if shape.name in shapes:
            continue
        entry: dict[str, Any] = {"type": shape.type_name}
        entry.update({key: shape.metadata[key] for key in _CONSTRAINTS if key in shape.metadata})
        if shape.type_name == "string" and shape.enum:
            entry["enum"] = list(shape.enum)
        if shape.type_name == "structure":
            entry["members"] = {name: member.name for name, member in shape.members.items()}
            entry["required"] = list(shape.required_members)
            pending.extend(shape.members.values())
        elif shape.type_name == "list":
            entry["member"] = shape.member.name
            pending.append(shape.member)
        elif shape.type_name == "map":
            entry["key"], entry["value"] = shape.key.name, shape.value.name
            pending.extend((shape.key, shape.value))
        shapes[shape.name] = dict(sorted(entry.items()))
    return dict(sorted(shapes.items()))


def training_channel_table(model: Any) -> dict[str, Any]:
    root = model.operation_model("CreateTrainingJob").input_shape.members["InputDataConfig"]
    return {
        "_source": "botocore's SageMaker service model: CreateTrainingJob's InputDataConfig and every shape "
        "inside it; refresh with scripts/refresh_instance_types.py",
        "root": root.name,
        "shapes": shape_extract(root),
    }


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}")


def main() -> None:
    model = sagemaker_model()
    _write(INSTANCE_TYPES, instance_type_table(model))
    _write(TRAINING_CHANNELS, training_channel_table(model))


if __name__ == "__main__":
    main()
