"""Regenerate plugins/sagelift/domain/instance_types.json from the locked botocore's SageMaker model.

The domain layer may not import botocore, so the instance-type enums it validates against (and that
the trigger form offers) are shipped as data. Run after upgrading boto3/botocore in uv.lock.
"""

import json
from pathlib import Path

import botocore.session

TARGET = Path(__file__).resolve().parents[1] / "plugins/sagelift/domain/instance_types.json"


def main() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    training = model.operation_model("CreateTrainingJob").input_shape.members["ResourceConfig"]
    endpoint = model.operation_model("CreateEndpointConfig").input_shape.members["ProductionVariants"].member
    TARGET.write_text(
        json.dumps(
            {
                "_source": "botocore's SageMaker service model (TrainingInstanceType, ProductionVariantInstanceType); "
                "refresh with scripts/refresh_instance_types.py",
                "training": sorted(training.members["InstanceType"].enum),
                "endpoint": sorted(endpoint.members["InstanceType"].enum),
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
