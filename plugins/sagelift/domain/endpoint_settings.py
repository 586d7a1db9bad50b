"""How a run's endpoint serves: the optional ``endpoint`` object of a conf, and the platform's caps on it.

The 13 seed parameters stay as they are; everything about serving beyond the instance type lives in one
optional ``endpoint`` object, so the seed's payload works unchanged and a run that gives no ``endpoint``
deploys exactly as before (realtime, the platform's instance count, all traffic at once, no capture).

The types here are the contract between validate (which builds them from the conf and checks them
against the account's ``EndpointCaps``) and the steps that act on them (endpoint config variants, data
capture, Application Auto Scaling, guarded UpdateEndpoint with alarms, the smoke test). They are frozen,
JSON-able through ``to_dict``/``from_dict`` (the plan carries them through XCom and KFP parameters), and
carry no AWS client, no credential and nothing rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["realtime", "serverless", "async"]
StrategyType = Literal["all_at_once", "canary", "linear"]

MODES: tuple[str, ...] = ("realtime", "serverless", "async")
STRATEGIES: tuple[str, ...] = ("all_at_once", "canary", "linear")


@dataclass(frozen=True)
class Autoscaling:
    """A target-tracking policy on SageMakerVariantInvocationsPerInstance for the variant."""

    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: float
    scale_in_cooldown_seconds: int = 300
    scale_out_cooldown_seconds: int = 60


@dataclass(frozen=True)
class DeploymentStrategy:
    """How an update shifts traffic (UpdateEndpoint's DeploymentConfig, blue/green).

    ``canary``: ``canary_percent`` of capacity first, bake ``bake_seconds``, then the rest.
    ``linear``: ``linear_step_percent`` at a time, ``bake_seconds`` between steps.
    ``alarms``: CloudWatch alarm names that roll the update back; empty means sagelift creates its own
    per model (5XX errors, model latency) and records them for teardown.
    """

    type: StrategyType = "all_at_once"
    canary_percent: int | None = None
    linear_step_percent: int | None = None
    bake_seconds: int = 600
    termination_wait_seconds: int = 0
    max_execution_timeout_seconds: int | None = None
    alarms: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataCapture:
    """DataCaptureConfig on the endpoint config; kept on every later update."""

    enabled: bool = False
    sampling_percent: int = 100
    # s3://bucket/prefix/ under one of the account's allowed capture prefixes; None derives
    # <first allowed prefix>/<model_name>/.
    destination_s3_uri: str | None = None


@dataclass(frozen=True)
class Serverless:
    memory_size_mb: int
    max_concurrency: int


@dataclass(frozen=True)
class AsyncInference:
    output_s3_uri: str
    success_topic_arn: str | None = None
    error_topic_arn: str | None = None
    max_concurrent_invocations_per_instance: int | None = None


@dataclass(frozen=True)
class SmokeTest:
    """One request sent after InService; a different status (or an error) reverts the endpoint."""

    body: str
    content_type: str = "application/json"
    # body is base64 of the bytes to send (an image, say) when True, the text itself otherwise.
    body_base64: bool = False
    expected_status: int = 200


@dataclass(frozen=True)
class EndpointSettings:
    mode: Mode = "realtime"
    # None: the platform's sagemaker.endpoint_initial_instance_count.
    instance_count: int | None = None
    autoscaling: Autoscaling | None = None
    deployment: DeploymentStrategy = field(default_factory=DeploymentStrategy)
    data_capture: DataCapture = field(default_factory=DataCapture)
    serverless: Serverless | None = None
    async_inference: AsyncInference | None = None
    smoke_test: SmokeTest | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["deployment"]["alarms"] = list(self.deployment.alarms)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EndpointSettings:
        if not data:
            return cls()

        def opt(kind: Any, key: str) -> Any:
            value = data.get(key)
            return kind(**value) if value else None

        deployment = dict(data.get("deployment") or {})
        deployment["alarms"] = tuple(deployment.get("alarms") or ())
        return cls(
            mode=data.get("mode", "realtime"),
            instance_count=data.get("instance_count"),
            autoscaling=opt(Autoscaling, "autoscaling"),
            deployment=DeploymentStrategy(**deployment),
            data_capture=DataCapture(**(data.get("data_capture") or {})),
            serverless=opt(Serverless, "serverless"),
            async_inference=opt(AsyncInference, "async_inference"),
            smoke_test=opt(SmokeTest, "smoke_test"),
        )


@dataclass(frozen=True)
class EndpointCaps:
    """What an account's endpoints may use (platform ``accounts.<id>.endpoint``); validate checks every
    ``endpoint`` value against these before anything is created."""

    max_instances: int = 4
    allowed_modes: tuple[str, ...] = ("realtime",)
    # s3:// prefixes data capture and async output may write under; empty means capture is refused.
    capture_prefixes: tuple[str, ...] = ()
    allowed_strategies: tuple[str, ...] = STRATEGIES
