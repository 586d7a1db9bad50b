"""How a run's endpoint serves: the optional ``endpoint`` object of a conf, and the platform's caps on it.

The 13 seed parameters stay as they are; everything about serving beyond the instance type lives in one
optional ``endpoint`` object, so the seed's payload works unchanged and a run that gives no ``endpoint``
deploys exactly as before (realtime, the platform's instance count, all traffic at once, no capture).

The types here are the contract between validate (which builds them from the conf and checks them
against the account's ``EndpointCaps``) and the steps that act on them (endpoint config variants, data
capture, Application Auto Scaling, guarded UpdateEndpoint with alarms, the smoke test). They are frozen,
JSON-able through ``to_dict``/``from_dict`` (the plan carries them through XCom and KFP parameters), and
carry no AWS client, no credential and nothing rendered.

``parse_endpoint`` reads the conf's object (native or its JSON text, within ``ENDPOINT_LIMITS``) and
names the dotted field of every broken rule; ``check_endpoint_against_caps`` checks it against the
account; ``resolve_endpoint`` fills in what the plan decides (where captures land).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import difflib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from sagelift.domain.bounded_json import JsonLimits, read_json_object, whole_number
from sagelift.domain.errors import Problems, kind, show, subfield

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

    def to_conf(self) -> dict[str, Any]:
        """The settings as a conf's ``endpoint`` object that parses back to them: defaults and nulls left
        out (a KFP struct parameter holds no nulls), an empty object for the defaults."""
        defaults = {
            "deployment": asdict(DeploymentStrategy()),
            "data_capture": asdict(DataCapture()),
        }
        conf: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                value = {
                    k: v
                    for k, v in value.items()
                    if v is not None and v != () and v != [] and defaults.get(key, {}).get(k, object()) != v
                }
                if key == "data_capture" and self.data_capture.enabled:
                    value["enabled"] = True
                if not value:
                    continue
            elif value is None or (key == "mode" and value == "realtime"):
                continue
            conf[key] = value
        return conf

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

    def allows_capture_to(self, uri: str) -> bool:
        """Whether data capture or async output may write to ``uri`` (under one of ``capture_prefixes``)."""
        return any(_under(uri, prefix) for prefix in self.capture_prefixes)


def _under(uri: str, prefix: str) -> bool:
    base = prefix if prefix.endswith("/") else prefix + "/"
    return uri == prefix or uri.rstrip("/") == prefix.rstrip("/") or uri.startswith(base)


# --- what each setting means: the trigger form's help (sagelift.dags.params); README "Serving settings" --
SETTINGS_DOC: tuple[tuple[str, str], ...] = (
    ("mode", "realtime (default), serverless or async; your account must allow it"),
    (
        "instance_count",
        "instances of a realtime or async endpoint (default: the platform's), up to the account's max",
    ),
    ("autoscaling.min_capacity", "autoscaling's fewest instances (with max_capacity and the target)"),
    ("autoscaling.max_capacity", "autoscaling's most instances, up to the account's max"),
    ("autoscaling.target_invocations_per_instance", "the target of the policy on InvocationsPerInstance"),
    ("autoscaling.scale_in_cooldown_seconds", "0-3600, default 300"),
    ("autoscaling.scale_out_cooldown_seconds", "0-3600, default 60"),
    ("deployment.type", "all_at_once (default), canary or linear: how an update shifts traffic"),
    (
        "deployment.canary_percent",
        "canary: share of capacity shifted first, 1-50 (default 10; SageMaker's CanarySize)",
    ),
    (
        "deployment.linear_step_percent",
        "linear: share shifted per step, 10-50 (default 20; SageMaker's LinearStepSize)",
    ),
    ("deployment.bake_seconds", "canary/linear: wait after each shift, 0-3600 (default 600)"),
    ("deployment.termination_wait_seconds", "0-3600: how long the old fleet stays after the shift"),
    ("deployment.max_execution_timeout_seconds", "600-14400: the whole update's limit"),
    (
        "deployment.alarms",
        "up to 10 CloudWatch alarm names that roll an update back (default: sagelift's own)",
    ),
    ("data_capture.enabled", "capture requests and responses (true once data_capture is given)"),
    ("data_capture.sampling_percent", "0-100 (default 100)"),
    (
        "data_capture.destination_s3_uri",
        "under the account's capture prefixes (default: <first prefix>/<model>/)",
    ),
    ("serverless.memory_size_mb", "serverless: 1024-6144 in steps of 1024 (default 2048)"),
    ("serverless.max_concurrency", "serverless: 1-200 (default 5)"),
    (
        "async_inference.output_s3_uri",
        "async: where results go, under the account's capture prefixes (required)",
    ),
    ("async_inference.success_topic_arn", "async: SNS topic told of each result"),
    ("async_inference.error_topic_arn", "async: SNS topic told of each error"),
    ("async_inference.max_concurrent_invocations_per_instance", "async: 1-1000"),
    ("smoke_test.body", "request sent once InService (text, or base64 with body_base64); at most 64 KiB"),
    ("smoke_test.body_base64", "true when body is base64 of the bytes to send (an image, say)"),
    ("smoke_test.content_type", "media type of the body (default application/json)"),
    ("smoke_test.expected_status", "100-599 (default 200); another reverts the endpoint and fails the run"),
)


def settings_doc_markdown() -> str:
    """SETTINGS_DOC as a markdown list, for the trigger form."""
    return "\n".join(f"- `{key}`: {meaning}" for key, meaning in SETTINGS_DOC)


# --- parsing the conf's ``endpoint`` object ------------------------------------------------------------
FIELD = "endpoint"
# The object is read within these bounds before any rule looks at it (a smoke-test image is the largest
# thing it holds): 256 KiB of JSON text, 6 levels, 2,000 values, strings of 96 KiB.
ENDPOINT_LIMITS = JsonLimits(max_chars=256 * 1024, max_depth=6, max_nodes=2_000, max_string=96 * 1024)
# The smoke test's request body, as bytes sent (after base64 decoding when body_base64).
SMOKE_BODY_MAX = 64 * 1024
MAX_INSTANCES = 1000  # SageMaker's InitialInstanceCount / MaxCapacity ceiling, before the account's caps
MAX_ALARMS = 10  # AutoRollbackConfiguration.Alarms
SERVERLESS_MEMORY = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_DEFAULTS = {"memory_size_mb": 2048, "max_concurrency": 5}
DEFAULT_CANARY_PERCENT = 10
DEFAULT_LINEAR_STEP_PERCENT = 20
# The instance type the trigger form shows: a conf that leaves it there has not asked for an instance.
DEFAULT_INSTANCE_TYPE = "ml.m5.large"

_S3_URI_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?\Z")
_SNS_TOPIC_RE = re.compile(
    r"^arn:aws[a-z-]*:sns:[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?\Z"
)
_ALARM_NAME_RE = re.compile(r"^[^\x00-\x1f]{1,255}\Z")
_CONTENT_TYPE_RE = re.compile(
    r"^[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+*-]{1,127}(\s*;[ -~]{0,512})?\Z"
)

_SECTIONS: dict[str, type] = {
    "autoscaling": Autoscaling,
    "deployment": DeploymentStrategy,
    "data_capture": DataCapture,
    "serverless": Serverless,
    "async_inference": AsyncInference,
    "smoke_test": SmokeTest,
}
_TOP_KEYS = ("mode", "instance_count", *_SECTIONS)


class ObjectReader:
    """One object of the ``endpoint`` conf read key by key; every problem names its dotted field."""

    def __init__(self, raw: Mapping[str, Any], prefix: str, known: tuple[str, ...], problems: Problems):
        self.raw, self.prefix, self.problems = raw, prefix, problems
        for key in sorted((k for k in raw if k not in known), key=str)[:10]:
            close = difflib.get_close_matches(str(key)[:64], known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(known)
            problems.add(subfield(prefix, key), f"unknown setting; {hint}")

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}"

    def given(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def whole(self, key: str, default: Any, low: int, high: int) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        number = whole_number(value)
        if number is None or not low <= number <= high:
            self.problems.add(
                self.name(key), f"must be a whole number from {low} to {high}, got {show(value, 24)}"
            )
            return default
        return number

    def number(self, key: str, default: Any, low: float, high: float) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value) if len(value) <= 24 else value
        if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
            self.problems.add(
                self.name(key), f"must be a number above {low:g} and at most {high:g}, got {show(value, 24)}"
            )
            return default
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problems.add(self.name(key), f"must be true or false, got {show(value, 24)}")
            return default
        return value

    def text(self, key: str, default: Any, max_len: int) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problems.add(self.name(key), f"must be a string, got {kind(value)}")
            return default
        if len(value) > max_len:
            self.problems.add(self.name(key), f"at most {max_len} characters, got {len(value)}")
            return default
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw.get(key)
        if value is None:
            return default
        if value not in choices:
            self.problems.add(self.name(key), f"must be one of {', '.join(choices)}; got {show(value, 24)}")
            return default
        return str(value)

    def s3_uri(self, key: str) -> str | None:
        value = self.text(key, None, 1024)
        if value is not None and not _S3_URI_RE.match(value):
            self.problems.add(
                self.name(key), f"must be an S3 URI like s3://bucket/prefix/, got {show(value)}"
            )
            return None
        if value is not None and any(s in (".", "..") for s in value[5:].split("/")[1:]):
            self.problems.add(self.name(key), "must not have '.' or '..' path segments")
            return None
        return value

    def section(self, key: str) -> ObjectReader | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problems.add(self.name(key), f"must be an object, got {kind(value)}")
            return None
        known = tuple(f.name for f in fields(_SECTIONS[key]))
        return ObjectReader(value, self.name(key), known, self.problems)


def parse_endpoint(raw: Any, problems: Problems) -> EndpointSettings:
    """The conf's optional ``endpoint`` object (native or its JSON text) as EndpointSettings.

    Adds a problem naming the dotted field (``endpoint.autoscaling.max_capacity``) for every rule broken;
    returns the defaults for what could not be read. The account's caps are checked separately
    (``check_endpoint_against_caps``), once the platform is known.
    """
    data = read_json_object(raw, ENDPOINT_LIMITS, FIELD, problems)
    if data is None:
        return EndpointSettings()
    top = ObjectReader(data, FIELD, _TOP_KEYS, problems)
    mode = top.choice("mode", "realtime", MODES)
    settings = EndpointSettings(
        mode=mode,  # type: ignore[arg-type]
        instance_count=top.whole("instance_count", None, 1, MAX_INSTANCES),
        autoscaling=_parse_autoscaling(top),
        deployment=_parse_deployment(top),
        data_capture=_parse_data_capture(top),
        serverless=_parse_serverless(top, mode),
        async_inference=_parse_async(top),
        smoke_test=_parse_smoke_test(top),
    )
    _check_mode_fields(settings, top)
    return settings


def _parse_autoscaling(top: ObjectReader) -> Autoscaling | None:
    r = top.section("autoscaling")
    if r is None:
        return None
    for key in ("min_capacity", "max_capacity", "target_invocations_per_instance"):
        if not r.given(key):
            r.problems.add(r.name(key), "required when autoscaling is given")
    low = r.whole("min_capacity", 1, 1, MAX_INSTANCES)
    high = r.whole("max_capacity", low, 1, MAX_INSTANCES)
    if low > high:
        r.problems.add(r.name("min_capacity"), f"must be at most max_capacity ({high}), got {low}")
    return Autoscaling(
        min_capacity=low,
        max_capacity=high,
        target_invocations_per_instance=r.number("target_invocations_per_instance", 1.0, 0, 1_000_000),
        scale_in_cooldown_seconds=r.whole("scale_in_cooldown_seconds", 300, 0, 3600),
        scale_out_cooldown_seconds=r.whole("scale_out_cooldown_seconds", 60, 0, 3600),
    )


def _parse_deployment(top: ObjectReader) -> DeploymentStrategy:
    r = top.section("deployment")
    if r is None:
        return DeploymentStrategy()
    kind_ = r.choice("type", "all_at_once", STRATEGIES)
    # SageMaker's CapacitySize of type CAPACITY_PERCENT: a share of the fleet, never all or none of it.
    canary = r.whole("canary_percent", None, 1, 50)
    linear = r.whole("linear_step_percent", None, 10, 50)
    if canary is not None and kind_ != "canary":
        r.problems.add(r.name("canary_percent"), f"applies to type canary only; type is {kind_}")
    if linear is not None and kind_ != "linear":
        r.problems.add(r.name("linear_step_percent"), f"applies to type linear only; type is {kind_}")
    alarms = _parse_alarms(r)
    if kind_ == "all_at_once" and (r.given("bake_seconds") or alarms):
        r.problems.add(
            r.name("type"), "bake_seconds and alarms need type canary or linear (all_at_once shifts at once)"
        )
    return DeploymentStrategy(
        type=kind_,  # type: ignore[arg-type]
        canary_percent=(canary or DEFAULT_CANARY_PERCENT) if kind_ == "canary" else None,
        linear_step_percent=(linear or DEFAULT_LINEAR_STEP_PERCENT) if kind_ == "linear" else None,
        bake_seconds=r.whole("bake_seconds", 600, 0, 3600),
        termination_wait_seconds=r.whole("termination_wait_seconds", 0, 0, 3600),
        max_execution_timeout_seconds=r.whole("max_execution_timeout_seconds", None, 600, 14400),
        alarms=alarms,
    )


def _parse_alarms(r: ObjectReader) -> tuple[str, ...]:
    value = r.raw.get("alarms")
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or len(value) > MAX_ALARMS:
        r.problems.add(r.name("alarms"), f"must be a list of at most {MAX_ALARMS} CloudWatch alarm names")
        return ()
    names: list[str] = []
    for i, name in enumerate(value):
        if not isinstance(name, str) or not _ALARM_NAME_RE.match(name):
            r.problems.add(
                f"{r.name('alarms')}[{i}]",
                "must be a CloudWatch alarm name: 1-255 characters, no control characters",
            )
        elif name not in names:
            names.append(name)
    return tuple(names)


def _parse_data_capture(top: ObjectReader) -> DataCapture:
    r = top.section("data_capture")
    if r is None:
        return DataCapture()
    enabled = r.flag("enabled", True)
    capture = DataCapture(
        enabled=enabled,
        sampling_percent=r.whole("sampling_percent", 100, 0, 100),
        destination_s3_uri=r.s3_uri("destination_s3_uri"),
    )
    if not enabled and (r.given("destination_s3_uri") or r.given("sampling_percent")):
        r.problems.add(r.name("enabled"), "is false, yet sampling_percent or destination_s3_uri is given")
    return capture


def _parse_serverless(top: ObjectReader, mode: str) -> Serverless | None:
    r = top.section("serverless")
    if r is None:
        return Serverless(**SERVERLESS_DEFAULTS) if mode == "serverless" else None
    memory = r.whole("memory_size_mb", SERVERLESS_DEFAULTS["memory_size_mb"], 1024, 6144)
    if memory not in SERVERLESS_MEMORY:
        r.problems.add(
            r.name("memory_size_mb"), f"must be 1024, 2048, 3072, 4096, 5120 or 6144 (MB), got {memory}"
        )
    return Serverless(
        memory_size_mb=memory,
        max_concurrency=r.whole("max_concurrency", SERVERLESS_DEFAULTS["max_concurrency"], 1, 200),
    )


def _parse_async(top: ObjectReader) -> AsyncInference | None:
    r = top.section("async_inference")
    if r is None:
        return None
    output = r.s3_uri("output_s3_uri")
    if output is None and not r.problems.has(r.name("output_s3_uri")):
        r.problems.add(r.name("output_s3_uri"), "required: the S3 prefix where async results are written")
    topics = {}
    for key in ("success_topic_arn", "error_topic_arn"):
        topic = r.text(key, None, 1024)
        if topic is not None and not _SNS_TOPIC_RE.match(topic):
            r.problems.add(
                r.name(key),
                f"must be an SNS topic ARN like arn:aws:sns:<region>:<account>:<topic>, got {show(topic)}",
            )
            topic = None
        topics[key] = topic
    return AsyncInference(
        output_s3_uri=output or "",
        max_concurrent_invocations_per_instance=r.whole(
            "max_concurrent_invocations_per_instance", None, 1, 1000
        ),
        **topics,
    )


def _parse_smoke_test(top: ObjectReader) -> SmokeTest | None:
    r = top.section("smoke_test")
    if r is None:
        return None
    body_base64 = r.flag("body_base64", False)
    body = r.text("body", None, ENDPOINT_LIMITS.max_string)
    if body is None and not r.problems.has(r.name("body")):
        r.problems.add(
            r.name("body"), "required: the request body sent to the endpoint after it is InService"
        )
    size = len(body.encode()) if body is not None else 0
    if body is not None and body_base64:
        try:
            size = len(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError):
            r.problems.add(r.name("body"), "is not valid base64 (body_base64 is true)")
    if size > SMOKE_BODY_MAX:
        r.problems.add(r.name("body"), f"at most {SMOKE_BODY_MAX} bytes, got {size}")
    content_type = r.text("content_type", "application/json", 1024)
    if not _CONTENT_TYPE_RE.match(content_type):
        r.problems.add(
            r.name("content_type"), f"must be a media type like application/json, got {show(content_type)}"
        )
    return SmokeTest(
        body=body or "",
        content_type=content_type,
        body_base64=body_base64,
        expected_status=r.whole("expected_status", 200, 100, 599),
    )


def _check_mode_fields(settings: EndpointSettings, top: ObjectReader) -> None:
    """Settings that do not apply to the chosen mode are refused, not silently dropped."""
    mode, add = settings.mode, top.problems.add
    if mode != "serverless" and top.given("serverless"):
        add(top.name("serverless"), f"applies to mode serverless only; mode is {mode}")
    if mode != "async" and top.given("async_inference"):
        add(top.name("async_inference"), f"applies to mode async only; mode is {mode}")
    if mode == "async" and not top.given("async_inference"):
        add(top.name("async_inference"), "required with mode async: at least output_s3_uri")
    if mode == "serverless":
        for key, why in (
            ("instance_count", "serverless endpoints have no instances (set serverless.max_concurrency)"),
            ("autoscaling", "serverless endpoints scale by themselves (set serverless.max_concurrency)"),
            ("data_capture", "SageMaker does not capture data on serverless endpoints"),
        ):
            if top.given(key):
                add(top.name(key), f"does not apply to mode serverless: {why}")
        if settings.deployment.type != "all_at_once":
            add(
                top.name("deployment.type"),
                "canary and linear do not apply to mode serverless: its updates shift all traffic at once",
            )
    if mode == "async" and top.given("smoke_test"):
        add(
            top.name("smoke_test"),
            "does not apply to mode async: its endpoint answers InvokeEndpointAsync, not a direct request",
        )
    scaling = settings.autoscaling
    count = settings.instance_count
    if (
        scaling is not None
        and count is not None
        and not scaling.min_capacity <= count <= scaling.max_capacity
    ):
        add(
            top.name("instance_count"),
            f"must be within autoscaling's min_capacity and max_capacity ({scaling.min_capacity}-"
            f"{scaling.max_capacity}), got {count}",
        )


def check_instance_type_applies(settings: EndpointSettings, instance_type: str, problems: Problems) -> None:
    """endpoint_instance_type names the instances of a realtime or async endpoint; a serverless endpoint
    has none, so a conf that changes it from the form's default asked for something that cannot happen."""
    if settings.mode == "serverless" and instance_type != DEFAULT_INSTANCE_TYPE:
        problems.add(
            "endpoint_instance_type",
            f"does not apply to serverless endpoints (endpoint.mode); leave it at {DEFAULT_INSTANCE_TYPE} "
            "and size with endpoint.serverless.memory_size_mb",
        )


def check_endpoint_against_caps(settings: EndpointSettings, caps: EndpointCaps, problems: Problems) -> None:
    """The account's caps (platform ``accounts.<id>.endpoint``): every value in the run's ``endpoint``."""
    if settings.mode not in caps.allowed_modes:
        problems.add(
            f"{FIELD}.mode",
            f"{settings.mode} is not allowed in this account (allowed: {', '.join(caps.allowed_modes)})",
        )
    most = caps.max_instances
    counts = (
        ("instance_count", settings.instance_count),
        ("autoscaling.max_capacity", settings.autoscaling.max_capacity if settings.autoscaling else None),
        ("autoscaling.min_capacity", settings.autoscaling.min_capacity if settings.autoscaling else None),
    )
    for name, count in counts:
        if count is not None and count > most:
            problems.add(f"{FIELD}.{name}", f"at most {most} instances in this account, got {count}")
    if settings.deployment.type not in caps.allowed_strategies:
        problems.add(
            f"{FIELD}.deployment.type",
            f"{settings.deployment.type} is not allowed in this account "
            f"(allowed: {', '.join(caps.allowed_strategies)})",
        )
    writes = []
    if settings.data_capture.enabled:
        writes.append(("data_capture.destination_s3_uri", settings.data_capture.destination_s3_uri))
    if settings.async_inference is not None and settings.async_inference.output_s3_uri:
        writes.append(("async_inference.output_s3_uri", settings.async_inference.output_s3_uri))
    for name, uri in writes:
        if not caps.capture_prefixes:
            problems.add(
                f"{FIELD}.{name}", "this account has no capture_prefixes: captures and async output are off"
            )
        elif uri is not None and not caps.allows_capture_to(uri):
            problems.add(
                f"{FIELD}.{name}",
                f"{show(uri, 48)} is not under the account's capture_prefixes ({', '.join(caps.capture_prefixes)[:60]})",
            )


def resolve_endpoint(settings: EndpointSettings, caps: EndpointCaps, model_name: str) -> EndpointSettings:
    """The settings as the plan carries them: a capture without a destination lands under the account's
    first capture prefix, in a folder named after the model."""
    capture = settings.data_capture
    if not capture.enabled or capture.destination_s3_uri is not None or not caps.capture_prefixes:
        return settings
    base = caps.capture_prefixes[0].rstrip("/")
    return replace(settings, data_capture=replace(capture, destination_s3_uri=f"{base}/{model_name}/"))
