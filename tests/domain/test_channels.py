"""training_channels against CreateTrainingJob's InputDataConfig: the shipped extract and the validator."""

from __future__ import annotations

import importlib.util
import json

import pytest

from sagelift.domain.channels import channel_shapes, parse_training_channels
from sagelift.domain.errors import Problems
from sagelift.domain.params import instance_types
from sagelift.domain.sagemaker import _channel
from tests.conftest import ROOT
from tests.support.botocore_validation import validate_request


def _refresh_script():
    spec = importlib.util.spec_from_file_location(
        "refresh_domain_data", ROOT / "scripts/refresh_instance_types.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_data_is_what_botocore_s_model_says():
    script = _refresh_script()
    model = script.sagemaker_model()
    assert channel_shapes() == json.loads(json.dumps(script.training_channel_table(model)))
    table = script.instance_type_table(model)
    assert instance_types() == {"training": tuple(table["training"]), "endpoint": tuple(table["endpoint"])}


def test_every_pattern_of_the_extract_compiles_in_python():
    import re

    patterns = [s["pattern"] for s in channel_shapes()["shapes"].values() if "pattern" in s]
    assert patterns  # the extract does carry patterns
    for pattern in patterns:
        re.compile(pattern)


def channel(**changes):
    base = {
        "ChannelName": "train",
        "DataSource": {
            "S3DataSource": {"S3Uri": "s3://bkt/train/", "S3DataType": "S3Prefix"},
        },
    }
    base.update(changes)
    return base


def problems_of(channels, trains=True):
    problems = Problems()
    parse_training_channels(channels, trains, problems)
    return problems.items


@pytest.mark.parametrize(
    ("channels", "field", "rule"),
    [
        ([channel(ShuffleConfig="yes please")], "training_channels[0].ShuffleConfig", "must be an object"),
        ([channel(ShuffleConfig={"Seed": "1"})], "training_channels[0].ShuffleConfig.Seed", "whole number"),
        ([channel(ShuffleConfig={})], "training_channels[0].ShuffleConfig.Seed", "required"),
        ([channel(Shuffle={"Seed": 1})], "training_channels[0].Shuffle", "did you mean 'ShuffleConfig'"),
        (
            [
                channel(
                    DataSource={"S3DataSource": {"S3Uri": "s3://b/k", "S3DataType": "S3Prefix", "Extra": 1}}
                )
            ],
            "training_channels[0].DataSource.S3DataSource.Extra",
            "unknown field",
        ),
        (
            [channel(DataSource={"S3DataSource": {"S3Uri": "s3://b/k", "S3DataType": "S3Prefx"}})],
            "training_channels[0].DataSource.S3DataSource.S3DataType",
            "did you mean 'S3Prefix'",
        ),
        (
            [channel(InputMode="Stream")],
            "training_channels[0].InputMode",
            "must be one of Pipe, File, FastFile",
        ),
        ([channel(ChannelName="train data")], "training_channels[0].ChannelName", "must match"),
        ([channel(ChannelName="c" * 65)], "training_channels[0].ChannelName", "1 to 64 characters"),
        ([channel(ContentType="x" * 257)], "training_channels[0].ContentType", "0 to 256 characters"),
        ([channel(ContentType="text/csv\n")], "training_channels[0].ContentType", "must match"),
        ([channel(ChannelName=7)], "training_channels[0].ChannelName", "must be a string, got a number"),
        ([channel()] * 21, "training_channels", "1 to 20 items"),
        (["train"], "training_channels[0]", "must be an object, got a string"),
        ([channel(), channel()], "training_channels[1].ChannelName", "unique"),
        (
            [channel(DataSource={"S3DataSource": {"S3Uri": "https://bkt.s3.amazonaws.com/k"}})],
            "training_channels[0].DataSource.S3DataSource.S3Uri",
            "s3://bucket",
        ),
        (
            [
                channel(
                    DataSource={
                        "FileSystemDataSource": {
                            "FileSystemId": "fs-0123456789",
                            "FileSystemAccessMode": "ro",
                            "FileSystemType": "EFS",
                            "DirectoryPath": "/data",
                        }
                    }
                )
            ],
            "training_channels[0].DataSource.S3DataSource",
            "the only data source sagelift sends (got FileSystemDataSource)",
        ),
        ([], "training_channels", "training needs at least one channel"),
    ],
)
def test_channels_breaking_the_model_or_sagelift_s_rules_name_the_field(channels, field, rule):
    found = problems_of(channels)
    assert any(f == field and rule in r for f, r in found), found


def test_channels_are_optional_without_training_and_normalized_as_the_builder_sends_them():
    assert problems_of([], trains=False) == []
    problems = Problems()
    cleaned = parse_training_channels([channel(ContentType="", InputMode=None)], True, problems)
    assert problems.items == []
    assert cleaned == [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3Uri": "s3://bkt/train/",
                    "S3DataType": "S3Prefix",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
    ]
    # What validate accepts is what the builder sends, and that conforms to botocore's model.
    assert [_channel(c) for c in cleaned] == cleaned
    body = {
        "TrainingJobName": "j",
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": "i"},
        "RoleArn": "arn:aws:iam::333333333333:role/sagelift-training-execution",
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/out/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "InputDataConfig": cleaned,
    }
    assert validate_request("sagemaker", "CreateTrainingJob", body) == []


def test_every_optional_member_of_the_model_is_accepted():
    full = channel(
        ContentType="text/csv",
        CompressionType="Gzip",
        RecordWrapperType="RecordIO",
        InputMode="FastFile",
        ShuffleConfig={"Seed": 42},
        DataSource={
            "S3DataSource": {
                "S3Uri": "s3://bkt/train/",
                "S3DataType": "AugmentedManifestFile",
                "S3DataDistributionType": "ShardedByS3Key",
                "AttributeNames": ["source-ref", "label"],
                "InstanceGroupNames": ["group-1"],
            }
        },
    )
    assert problems_of([full]) == []
