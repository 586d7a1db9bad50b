"""sagelift's AWS hooks name the same caller in their user agent as the provider's lookup would."""

from __future__ import annotations

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from sagelift.hooks.apigateway import ApiGatewayHook
from sagelift.hooks.caller import AwsHook, QuickCallerLookup
from sagelift.hooks.ecr import EcrHook
from sagelift.hooks.sagemaker import SageMakerHook


class TrainSomething:
    def execute(self, target: str = "execute") -> tuple[object, object]:
        return AwsBaseHook._find_operator_class_name(target), QuickCallerLookup._find_operator_class_name(
            target
        )


class WaitForSomething:
    def poke(self) -> str:
        return AwsHook(aws_conn_id=None, client_type="s3")._get_caller("poke")


def test_the_quick_lookup_finds_what_the_provider_finds():
    assert TrainSomething().execute() == ("TrainSomething", "TrainSomething")
    assert TrainSomething().execute("no_such_function") == (None, None)
    assert WaitForSomething().poke() == "WaitForSomething"
    # outside any operator and executor both end with nothing found
    assert AwsBaseHook._find_executor_class_name() is QuickCallerLookup._find_executor_class_name() is None
    assert AwsHook(aws_conn_id=None, client_type="s3")._get_caller() == "Unknown"


def test_every_sagelift_aws_hook_uses_it():
    for hook in (AwsHook, SageMakerHook, EcrHook, ApiGatewayHook):
        assert hook._find_operator_class_name is QuickCallerLookup._find_operator_class_name, hook
        assert hook._find_executor_class_name is QuickCallerLookup._find_executor_class_name, hook
