"""The platform configuration's SageMaker settings: defaults and strict parsing."""

from __future__ import annotations

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.platform import PlatformConfig

BASE = {"region": "us-east-1", "accounts": {"333333333333": {}}}


def test_training_logs_are_streamed_unless_the_platform_says_false():
    assert PlatformConfig.from_dict(BASE).sagemaker.stream_training_logs is True
    off = PlatformConfig.from_dict({**BASE, "sagemaker": {"stream_training_logs": False}})
    assert off.sagemaker.stream_training_logs is False


def test_stream_training_logs_must_be_a_boolean():
    with pytest.raises(SageliftValidationError) as raised:
        PlatformConfig.from_dict({**BASE, "sagemaker": {"stream_training_logs": "false"}})
    assert raised.value.fields == ["platform.sagemaker.stream_training_logs"]
