"""The behavioural scenarios both engines run (issue 15): what each does, and what it must end with.

Pure data over the standard library, importable from either environment. tests/scenarios/
test_both_engines.py runs every scenario once per engine, each time against a fresh local AWS (the
three-account world of tests/support/scenario.py) with the SageMaker lifecycle emulation installed:

1. it changes the fresh world as the scenario's ``world`` says (a refused trust policy, an endpoint an
   earlier deploy left, images in a source registry);
2. it runs the scenario's deploys one after another, each with ``demo_conf()`` plus the run's ``conf``,
   after scripting the emulated SageMaker with the run's ``lifecycle``; a run with ``again`` is that
   earlier run run again with the same run id (Airflow: its DAG run cleared and run again; KFP: a retry
   of the same run); a run with ``cancel`` is stopped while its training job trains (Airflow: the task
   is killed in the worker; KFP: the run is terminated, its pods get SIGTERM);
3. after each deploy it reads the scientist account's end state and the run's outcome, normalized
   (run keys, run ids, the engine's pipeline name, random API ids), checks ``expect`` and compares the
   two engines;
4. it tears the model down with the ``sagemaker_teardown`` DAG and checks that nothing of sagelift's is
   left but what ``TEARDOWN_KEEPS`` names.

Normalized names: ``<run N>`` is the run key of the scenario's N-th distinct run (so the training job of
the first run is ``churn-predictor-<run 1>``), ``<run N id>`` its run id, ``<pipeline>`` the engine's
dag id or pipeline name, ``<api>`` the model's API id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MODEL = "churn-predictor"
ENGINES = ("airflow", "kfp")  # the keys of Expect.fails_at
PER_RUN = MODEL + "-<run {}>"
# The object tests/support/scenario.Scenario.build() puts in the scientist account's bucket.
EXISTING_ARTIFACT = "s3://scientist-ml-data/models/churn/model.tar.gz"
# The endpoint an earlier deploy left (world "endpoint_from_earlier_deploy"), on this config and model.
EARLIER_CONFIG = f"{MODEL}-0badc0de"

# What a teardown leaves: training jobs (SageMaker cannot delete them), ECR repositories (teardown deletes
# the images sagelift copied, not the repositories), the images of the local registry, which the local
# ECR API that teardown deletes through does not see (tests/support/oci_registry.py), and S3 (the
# scientist's data; a run gives its model lock back itself).
TEARDOWN_KEEPS = ("training_jobs", "ecr", "registry", "s3", "model_packages")  # the model registry: history
# Batch scoring leaves nothing to delete: a transform job is a record SageMaker cannot delete, like a
# training job, and its results are the scientist's data (kept with S3).
TEARDOWN_KEEPS += ("transform_jobs",)
# Labeling leaves nothing to delete either: a labeling job is a record SageMaker cannot delete, and the
# labeled manifest is the scientist's data (kept with S3).
TEARDOWN_KEEPS += ("labeling_jobs",)
# Model monitoring's baseline is a processing job: a record SageMaker cannot delete (its results are under
# the training output, kept with S3); the schedule, its definitions and the drift alarms are deleted.
TEARDOWN_KEEPS += ("processing_jobs",)
# Instance recommendation leaves nothing to delete either: an inference recommendations job is a record
# SageMaker cannot delete, and SageMaker removes the endpoints its load test made.
TEARDOWN_KEEPS += ("recommendation_jobs",)
# issue 20 item 2: the scientist account allows Inference Recommender jobs (platform accounts.<id>)
RECOMMENDER_PLATFORM = {"inference_recommender": True}


@dataclass(frozen=True)
class Lifecycle:
    """What the emulated SageMaker does during one run, in emulated seconds (see
    tests/support/sagemaker_lifecycle.py; the test runs it 60 times faster than real time). Jobs and
    endpoints end at once unless a run needs the waits: the first deploy and the update wait for a minute."""

    training_seconds: float = 0.0
    training_outcome: str = "Completed"
    stop_seconds: float = 60.0
    create_seconds: float = 0.0
    create_outcome: str = "InService"
    create_failure: str = ""
    update_seconds: float = 0.0
    update_outcome: str = "InService"
    update_failure: str = ""
    # issue 16: a guarded update's first alarm goes into ALARM this many seconds after UpdateEndpoint
    update_alarm_fires_after: float | None = None
    # issue 17: a spot job's interruptions, and the FinalMetricDataList a Completed job reports
    training_interruptions: int = 0
    training_metrics: Mapping[str, float] | None = None
    # issue 17: a tuning job's length, and the objective value each of its training jobs reports in turn
    tuning_seconds: float = 0.0
    tuning_objective_values: tuple[float, ...] = (0.81, 0.92, 0.87)
    # issue 17: how long a batch transform job runs (Completed then, with one result per input object)
    transform_seconds: float = 0.0
    # issue 20: how long a labeling job's workteam labels (Completed then, the output manifest written)
    labeling_seconds: float = 0.0
    # issue 20 item 2: how long an Inference Recommender job load-tests, and the metrics it reports per
    # instance type (a type not listed: the price table's price, latency by its vCPUs)
    recommender_seconds: float = 0.0
    recommender_metrics: Mapping[str, Mapping[str, float]] | None = None


@dataclass(frozen=True)
class Expect:
    """The outcome a run must have on both engines, and facts its end state must show.

    ``message`` is the start of the normalized message the failed step surfaces (the core's StepFailed
    text); None where the engines end the step their own way (a cancelled run). ``state`` maps a path in
    the normalized end state (its keys and list indexes, ``("count", "models")`` for how many there
    are, ``("outcome", "invoke_url")`` for the URL the run reported) to the value it must have.

    ``fails_at`` is a failure at a step that differs by engine, keyed by engine (``"airflow"``,
    ``"kfp"``), e.g. ``{"airflow": "validate", "kfp": "ensure_pvc"}``: KFP builds the plan in its first
    component, so a validate-time refusal fails there (a later failure fails the component of the same
    name, and needs no ``fails_at``). It implies ``outcome="failed"``; ``message`` is then checked
    against the first line of each engine's message. ``changes_nothing``: the account after the run is
    the account before it (resources and objects; a refused run creates nothing).
    """

    outcome: str = "success"
    failed_step: str | None = None
    message: str | None = None
    state: Mapping[tuple[Any, ...], Any] = field(default_factory=dict)
    same_api_as_run: int | None = None  # the API id must be the one this earlier run (1-based) exposed
    fails_at: Mapping[str, str] = field(default_factory=dict)
    changes_nothing: bool = False
    keeps: tuple[str, ...] = ()  # a teardown's: kinds it leaves besides TEARDOWN_KEEPS (another model's)

    def __post_init__(self) -> None:
        if self.fails_at:
            if set(self.fails_at) != set(ENGINES) or self.failed_step is not None:
                raise ValueError(f"fails_at names the step of each engine {ENGINES}, without failed_step")
            object.__setattr__(self, "outcome", "failed")

    def failed_step_on(self, engine: str) -> str | None:
        """The step that must fail on ``engine`` (an engine's name, any case)."""
        return self.fails_at.get(engine.lower(), self.failed_step)


@dataclass(frozen=True)
class Run:
    number: int  # the scenario number this run proves
    title: str
    expect: Expect
    conf: Mapping[str, Any] = field(default_factory=dict)
    lifecycle: Lifecycle = Lifecycle()
    again: int | None = None  # run the scenario's run of this number (1-based) again, same run id
    cancel: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    runs: tuple[Run, ...]
    world: tuple[str, ...] = ()
    sagemaker: Mapping[str, Any] = field(default_factory=dict)  # platform.sagemaker overrides
    teardown: Expect = Expect()
    # the scientist account's caps on the endpoint settings (platform accounts.<id>.endpoint)
    endpoint_caps: Mapping[str, Any] = field(default_factory=dict)


def _endpoint(status: str, config: str, failure: str | None = None) -> dict[tuple[Any, ...], Any]:
    return {
        ("endpoints", MODEL, "EndpointStatus"): status,
        ("endpoints", MODEL, "EndpointConfigName"): config,
        ("endpoints", MODEL, "FailureReason"): failure,
    }


INVOKE_URL = "https://<api>.execute-api.us-east-1.amazonaws.com/prod/invocations"
# issue 16: the first run's endpoint config, its variant, and where the async scenario captures
_CONFIG = ("endpoint_configs", PER_RUN.format(1))
_VARIANT = (*_CONFIG, "ProductionVariants", 0)
CAPTURES = "s3://scientist-ml-data/captures/"
HEALTH_CHECK = "The primary container did not pass the ping health check."
ROLLED_BACK = "Instance ping health check failed; rolled back."
# issue 17: the spot scenario's training job; the tuning scenario's best training job (its second)
SPOT_JOB = ("training_jobs", PER_RUN.format(1))
BEST_JOB = ("training_jobs", PER_RUN.format(1) + "-002-6b86b273")
# issue 16 guarded deploys: sagelift's default alarms of the model (sagelift.domain.deployment)
GUARD_ERRORS = f"sagelift-{MODEL}-invocation-5xx-errors"
GUARD_LATENCY = f"sagelift-{MODEL}-model-latency"
GUARD_DIMENSIONS = [{"Name": "EndpointName", "Value": MODEL}, {"Name": "VariantName", "Value": "AllTraffic"}]
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 120}
# issue 17 batch scoring: the run's transform job, what it scores and where its results land
BATCH_JOB = PER_RUN.format(1)
BATCH_INPUT = "s3://scientist-ml-data/churn/validation/"
# issue 20 item 3: the drift alarm of the training data's first column (the analyzer names it _c0)
DRIFT_ALARM = f"sagelift-monitor-{MODEL}-_c0"
BATCH_OUTPUT = f"s3://scientist-ml-data/churn/output/{PER_RUN.format(1)}/batch/"
# issue 20 labeling: the account's workteam and manifest prefix (world "labeling_workteam"), the manifest the
# world puts there (two texts), and where the run's labeling job writes the labeled manifest
LABELING_PLATFORM = {
    "labeling_workteam_arn": "arn:aws:sagemaker:us-east-1:333333333333:workteam/private-crowd/churn-labelers",
    "labeling_prefixes": ["s3://scientist-ml-data/to-label/"],
}
LABELING_MANIFEST = "s3://scientist-ml-data/to-label/churn.manifest"
LABELED = f"s3://scientist-ml-data/churn/output/{PER_RUN.format(1)}/manifests/output/output.manifest"


# issue 20 item 1: the team's shared multi-model endpoint (world "multi_model_endpoint"), serving the demo
# conf's own serving image, which the platform lists as one that serves multi-model endpoints
MME_TEAM = "churn-team"
MME_ENDPOINT = "sagelift-mme-" + MME_TEAM
MME_PREFIX = "s3://scientist-ml-data/mme/churn-team/"
MME_IMAGE = "333333333333.dkr.ecr.us-east-1.amazonaws.com/churn-serving"
MULTI_MODEL_PLATFORM = {
    "multi_model_endpoints": {MME_TEAM: {"prefix": MME_PREFIX, "image": MME_IMAGE + ":1.4"}}
}
OTHER_MODEL = "fraud-score"
MME_URI = "arn:aws:apigateway:us-east-1:runtime.sagemaker:path//endpoints/sagelift-mme-churn-team/invocations"
MME_ROUTE = "POST /models/{}/invocations"
# each run deploys the bucket's existing artifact (the emulated training job writes none to copy)
MME_CONF = {
    "model_artifact_s3_path": EXISTING_ARTIFACT,
    "training_docker_image": "",
    "training_channels": [],
    "training_s3_output_path": "",
    "multi_model": {"endpoint": MME_TEAM},
}
MME_DATA = [  # the scientist's objects every run of the scenario leaves (and the model's keys added to them)
    "churn/train/part-0.csv",
    "churn/validation/part-0.csv",
    "models/churn/model.tar.gz",
    "platform/standard-tags.json",
]


def _guard_alarms(state: str) -> dict[str, Any]:
    """The account's CloudWatch alarms as the scenarios read them: sagelift's two, in ``state``."""
    return {
        name: {
            "Namespace": "AWS/SageMaker",
            "MetricName": metric,
            "Dimensions": GUARD_DIMENSIONS,
            "StateValue": state,
            "owner": MODEL,
        }
        for name, metric in ((GUARD_ERRORS, "Invocation5XXErrors"), (GUARD_LATENCY, "ModelLatency"))
    }


# issue 16 autoscaling and smoke: the variant's scalable target and policy (sagelift.domain.autoscaling)
SCALED = f"endpoint/{MODEL}/variant/AllTraffic"
SCALING_POLICY = f"sagelift-{MODEL}-invocations-per-instance"
AUTOSCALING = {"min_capacity": 1, "max_capacity": 3, "target_invocations_per_instance": 50}
SMOKE = {"body": '{"features": [0.5, 0.25]}', "content_type": "application/json"}
SMOKE_ANSWER = '{"error": "model not loaded"}'  # what the second run's model answers, with status 500

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "deploy, re-run, update",
        sagemaker={"keep_endpoint_configs": 1},
        runs=(
            Run(
                1,
                "first deploy",
                lifecycle=Lifecycle(training_seconds=60, create_seconds=60),
                expect=Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        ("training_jobs", PER_RUN.format(1), "TrainingJobStatus"): "Completed",
                        ("outcome", "invoke_url"): INVOKE_URL,
                        (
                            "endpoint_configs",
                            PER_RUN.format(1),
                            "ProductionVariants",
                            0,
                            "InstanceType",
                        ): "ml.m5.large",
                    }
                ),
            ),
            Run(
                2,
                "the same conf re-run (same run id)",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        ("count", "training_jobs"): 1,
                        ("count", "endpoint_configs"): 1,
                    },
                    same_api_as_run=1,
                ),
                again=1,
            ),
            Run(
                3,
                "a new run that updates the endpoint",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(2)),
                        (
                            "endpoint_configs",
                            PER_RUN.format(2),
                            "ProductionVariants",
                            0,
                            "InstanceType",
                        ): "ml.m5.xlarge",
                        # keep_endpoint_configs 1: the first run's config and model are pruned
                        ("count", "endpoint_configs"): 1,
                        ("count", "models"): 1,
                        ("count", "training_jobs"): 2,
                    },
                    same_api_as_run=1,
                ),
                conf={"endpoint_instance_type": "ml.m5.xlarge", "training_hyperparameters": {"max_depth": 6}},
                lifecycle=Lifecycle(update_seconds=60),
            ),
        ),
    ),
    Scenario(
        "existing artifact",
        runs=(
            Run(
                4,
                "an existing artifact, no training",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        ("count", "training_jobs"): 0,
                        ("models", PER_RUN.format(1), "PrimaryContainer", "ModelDataUrl"): EXISTING_ARTIFACT,
                    }
                ),
                conf={
                    "model_artifact_s3_path": EXISTING_ARTIFACT,
                    "training_docker_image": "",
                    "training_channels": [],
                    "training_s3_output_path": "",
                    "training_hyperparameters": {},
                },
            ),
        ),
    ),
    Scenario(
        "image copy",
        world=("source_registry",),
        runs=(
            Run(
                5,
                "image copy from a local source registry",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        ("registry", "sagelift/team/churn-trainer", "2.0"): "<trainer digest>",
                        ("registry", "sagelift/team/churn-server", "2.0"): "<server digest>",
                        ("training_jobs", PER_RUN.format(1), "AlgorithmSpecification", "TrainingImage"): (
                            "333333333333.dkr.ecr.us-east-1.amazonaws.com/sagelift/team/churn-trainer"
                            "@<trainer digest>"
                        ),
                    }
                ),
            ),
        ),
    ),
    Scenario(
        "failed endpoint recovered",
        runs=(
            Run(
                6,
                "first create ends Failed",
                Expect(
                    outcome="failed",
                    failed_step="deploy_endpoint",
                    message=f"Endpoint {MODEL} failed: {HEALTH_CHECK}",
                    state=_endpoint("Failed", PER_RUN.format(1), HEALTH_CHECK),
                ),
                lifecycle=Lifecycle(create_outcome="Failed", create_failure=HEALTH_CHECK),
            ),
            Run(
                6,
                "the next run recovers the Failed endpoint",
                Expect(
                    state={**_endpoint("InService", PER_RUN.format(2)), ("outcome", "invoke_url"): INVOKE_URL}
                ),
            ),
        ),
    ),
    Scenario(
        "rolled-back update",
        world=("endpoint_from_earlier_deploy",),
        runs=(
            Run(
                7,
                "a rolled-back update reported as failure",
                Expect(
                    outcome="failed",
                    failed_step="deploy_endpoint",
                    message=(
                        f"Endpoint {MODEL} is serving config {EARLIER_CONFIG}, not this run's "
                        f"{PER_RUN.format(1)}: SageMaker rolled the update back. {ROLLED_BACK}"
                    ),
                    state={
                        **_endpoint("InService", EARLIER_CONFIG, ROLLED_BACK),
                        # nothing is pruned after a failed deploy: the config rolled back to stays
                        ("endpoint_configs", EARLIER_CONFIG, "EndpointConfigName"): EARLIER_CONFIG,
                        ("count", "apis"): 0,
                    },
                ),
                lifecycle=Lifecycle(update_outcome="RolledBack", update_failure=ROLLED_BACK),
            ),
        ),
    ),
    Scenario(
        "cancel during training",
        # Airflow's wait in the worker is what a kill interrupts in one process (dag.test); a deferred
        # wait is stopped by the trigger's on_kill in the triggerer (tests/reliability, tests/live). Without
        # the log stream, the wait is botocore's waiter: the provider's log tail reads the job's status
        # only every 30 s.
        sagemaker={"deferrable": False, "stream_training_logs": False},
        runs=(
            Run(
                8,
                "cancel during training: the job is Stopped",
                Expect(
                    outcome="failed",
                    failed_step="train_model",
                    state={
                        ("training_jobs", PER_RUN.format(1), "TrainingJobStatus"): "Stopped",
                        ("count", "models"): 0,
                        ("count", "endpoints"): 0,
                    },
                ),
                # ten minutes: the run is killed as soon as the job is InProgress, long before it would end
                lifecycle=Lifecycle(training_seconds=600, stop_seconds=60),
                cancel=True,
            ),
        ),
    ),
    Scenario(
        "refused hop",
        world=("refuse_second_hop",),
        runs=(
            Run(
                9,
                "a refused hop in the role chain",
                Expect(
                    outcome="failed",
                    failed_step="assume_role_chain",
                    message=(
                        "hop 2 of 2 (arn:aws:iam::222222222222:role/sagelift-master-pipeline -> "
                        "arn:aws:iam::333333333333:role/sagelift-pipeline-execution): AccessDenied"
                    ),
                    state={("count", "training_jobs"): 0, ("count", "endpoints"): 0, ("count", "apis"): 0},
                ),
            ),
        ),
        # The teardown goes through the same chain, so it is refused the same way, before any delete.
        teardown=Expect(
            outcome="failed",
            failed_step="assume_role_chain",
            message="hop 2 of 2 (arn:aws:iam::222222222222:role/sagelift-master-pipeline -> ",
        ),
    ),
    # --- issue 16: guarded deploys -------------------------------------------------------------------
    # Three updates of an endpoint an earlier deploy left, each shifting traffic as the conf's strategy
    # says, guarded by sagelift's default alarms (the conf names none): a canary, then a linear update,
    # then a canary whose alarm fires mid-bake, rolled back to the linear run's config. One scenario, so
    # the world and the teardown are paid once; the teardown deletes the alarms with the rest (the end
    # state lists every CloudWatch alarm of the account).
    Scenario(
        "guarded deploys",
        world=("endpoint_from_earlier_deploy",),
        runs=(
            Run(
                11,
                "canary: 10% bakes, then all traffic",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        ("endpoints", MODEL, "LastDeploymentConfig", "BlueGreenUpdatePolicy"): {
                            "TrafficRoutingConfiguration": {
                                "Type": "CANARY",
                                "WaitIntervalInSeconds": 120,
                                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                            },
                            "TerminationWaitInSeconds": 0,
                        },
                        ("alarms", GUARD_ERRORS, "StateValue"): "OK",
                        ("alarms", GUARD_LATENCY, "Dimensions"): GUARD_DIMENSIONS,
                        ("alarms", GUARD_LATENCY, "owner"): MODEL,
                        ("outcome", "deployments"): ["10%", "100%", "old fleet terminated"],
                    }
                ),
                conf={"endpoint": {"deployment": CANARY}},
                lifecycle=Lifecycle(update_seconds=60),
            ),
            Run(
                13,
                "linear: steps of 50%",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(2)),
                        ("alarms",): _guard_alarms("OK"),  # the same two alarms, updated in place
                        ("outcome", "deployments"): ["50%", "100%", "old fleet terminated"],
                    }
                ),
                conf={
                    "endpoint": {
                        "deployment": {"type": "linear", "linear_step_percent": 50, "bake_seconds": 60}
                    }
                },
                lifecycle=Lifecycle(update_seconds=60),
            ),
            Run(
                12,
                "canary rolled back by an alarm mid-bake",
                Expect(
                    outcome="failed",
                    failed_step="deploy_endpoint",
                    message=(
                        f"Endpoint {MODEL} is serving config {PER_RUN.format(2)}, not this run's "
                        f"{PER_RUN.format(3)}: SageMaker rolled the update back after CloudWatch alarm "
                        f"{GUARD_ERRORS} went into ALARM."
                    ),
                    state={
                        ("endpoints", MODEL, "EndpointStatus"): "InService",
                        ("endpoints", MODEL, "EndpointConfigName"): PER_RUN.format(2),
                        ("alarms", GUARD_ERRORS, "StateValue"): "ALARM",
                        ("outcome", "deployments"): ["10%", f"rolled back: {GUARD_ERRORS} in ALARM"],
                    },
                ),
                conf={"endpoint": {"deployment": CANARY}},
                lifecycle=Lifecycle(update_seconds=60, update_alarm_fires_after=90),
            ),
        ),
    ),
    # --- issue 16: modes ---------------------------------------------------------------------------------
    # Serverless and async endpoints where the account allows them, and a train-only run that deploys
    # nothing; the teardown after each leaves no model, config, endpoint or API.
    Scenario(
        "serverless",
        endpoint_caps={"allowed_modes": ["realtime", "serverless"]},
        runs=(
            Run(
                15,
                "a serverless endpoint",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        (*_VARIANT, "ServerlessConfig"): {"MemorySizeInMB": 3072, "MaxConcurrency": 4},
                        (*_VARIANT, "InstanceType"): "<absent>",
                        (*_VARIANT, "InitialInstanceCount"): "<absent>",
                        ("outcome", "invoke_url"): INVOKE_URL,
                    }
                ),
                conf={
                    "endpoint": {
                        "mode": "serverless",
                        "serverless": {"memory_size_mb": 3072, "max_concurrency": 4},
                    }
                },
            ),
        ),
    ),
    Scenario(
        "async",
        endpoint_caps={"allowed_modes": ["async"], "capture_prefixes": [CAPTURES]},
        runs=(
            Run(
                16,
                "an async endpoint with data capture",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        (*_CONFIG, "AsyncInferenceConfig", "OutputConfig", "S3OutputPath"): CAPTURES
                        + "async/",
                        (*_CONFIG, "DataCaptureConfig", "DestinationS3Uri"): f"{CAPTURES}{MODEL}/",
                        (*_CONFIG, "DataCaptureConfig", "InitialSamplingPercentage"): 50,
                        (*_VARIANT, "InitialInstanceCount"): 2,
                        ("outcome", "invoke_url"): INVOKE_URL.replace("/invocations", "/async-invocations"),
                    }
                ),
                conf={
                    "endpoint": {
                        "mode": "async",
                        "instance_count": 2,
                        "async_inference": {"output_s3_uri": CAPTURES + "async/"},
                        "data_capture": {"sampling_percent": 50},
                    }
                },
            ),
        ),
    ),
    Scenario(
        "train-only",
        runs=(
            Run(
                17,
                "train-only: no serving image, nothing deployed",
                Expect(
                    state={
                        ("training_jobs", PER_RUN.format(1), "TrainingJobStatus"): "Completed",
                        ("count", "models"): 0,
                        ("count", "endpoint_configs"): 0,
                        ("count", "endpoints"): 0,
                        ("count", "apis"): 0,
                        ("outcome", "invoke_url"): None,
                    }
                ),
                conf={"model_docker_image": ""},
            ),
        ),
    ),
    # --- issue 16: plan-only ---------------------------------------------------------------------------
    # A plan-only run reads the account and stops, green: nothing is created and the lock is never taken
    # (its bucket stays empty). That a real run then writes exactly what the plan listed is shown in
    # tests/steps/test_plan_changes.py, at step level (one run more here would add a minute per engine).
    Scenario(
        "plan-only",
        runs=(
            Run(
                19,
                "plan-only: a green run that changes nothing",
                Expect(
                    state={
                        ("count", "training_jobs"): 0,
                        ("count", "models"): 0,
                        ("count", "endpoint_configs"): 0,
                        ("count", "endpoints"): 0,
                        ("count", "apis"): 0,
                        ("s3", "sagelift-state-333333333333"): [],
                        ("outcome", "invoke_url"): None,
                    }
                ),
                conf={"plan_only": True},
            ),
        ),
    ),
    # --- issue 16: autoscaling and smoke --------------------------------------------------------------
    # An update on a new run changes the scaling and the instance type: the scalable target is
    # deregistered before UpdateEndpoint (the local AWS refuses an instance type change under a
    # registered target, as SageMaker does) and registered again after, with the new values. A smoke
    # test whose model answers 500 reverts the endpoint to the config it served before. The teardown
    # after each leaves no scalable target or scaling policy (the end state reads them all).
    Scenario(
        "autoscaling update on re-run",
        runs=(
            Run(
                14,
                "a first deploy registers the variant and its policy",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        ("scalable_targets", SCALED, "MinCapacity"): 1,
                        ("scalable_targets", SCALED, "MaxCapacity"): 3,
                        ("scaling_policies", SCALING_POLICY, "TargetValue"): 50.0,
                    }
                ),
                conf={"endpoint": {"autoscaling": AUTOSCALING}},
            ),
            Run(
                14,
                "a new run updates the scaling, across an instance type change",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(2)),
                        ("scalable_targets", SCALED, "MinCapacity"): 2,
                        ("scalable_targets", SCALED, "MaxCapacity"): 4,
                        # one policy, with the new values
                        ("scaling_policies",): {
                            SCALING_POLICY: {
                                "ResourceId": SCALED,
                                "PolicyType": "TargetTrackingScaling",
                                "Metric": "SageMakerVariantInvocationsPerInstance",
                                "TargetValue": 100.0,
                                "ScaleInCooldown": 600,
                                "ScaleOutCooldown": 60,
                            }
                        },
                    }
                ),
                conf={
                    "endpoint_instance_type": "ml.m5.xlarge",
                    "endpoint": {
                        "autoscaling": {
                            **AUTOSCALING,
                            "min_capacity": 2,
                            "max_capacity": 4,  # the account's max_instances (4 by default)
                            "target_invocations_per_instance": 100,
                            "scale_in_cooldown_seconds": 600,
                        }
                    },
                },
            ),
        ),
    ),
    Scenario(
        "smoke-test failure reverts",
        runs=(
            Run(
                18,
                "a first deploy whose smoke test passes",
                Expect(state={**_endpoint("InService", PER_RUN.format(1)), ("count", "apis"): 1}),
                conf={"endpoint": {"smoke_test": SMOKE}},
            ),
            Run(
                18,
                "a new model answers 500: reverted to the first run's config",
                Expect(
                    outcome="failed",
                    failed_step="deploy_endpoint",
                    message=(
                        f"Smoke test of endpoint {MODEL} failed: status 500, body '{SMOKE_ANSWER}' "
                        "(expected status 200). Reverted the endpoint to its "
                        f"previous config {PER_RUN.format(1)}: it is InService on {PER_RUN.format(1)}."
                    ),
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        ("endpoints", MODEL, "Tags", "sagelift:previous-endpoint-config"): PER_RUN.format(1),
                        ("count", "endpoint_configs"): 2,
                    },
                ),
                conf={
                    "endpoint": {"smoke_test": SMOKE},
                    "environment": {
                        "SAGELIFT_EMULATED_STATUS": "500",
                        "SAGELIFT_EMULATED_BODY": SMOKE_ANSWER,
                    },
                },
            ),
        ),
    ),
    # --- issue 17: spot and metrics ----------------------------------------------------------------
    Scenario(
        "spot with one interruption",
        runs=(
            Run(
                17,
                "a spot job interrupted once resumes from its checkpoints; billed less than trained; its "
                "final metrics reported",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        (*SPOT_JOB, "EnableManagedSpotTraining"): True,
                        (*SPOT_JOB, "StoppingCondition"): {
                            "MaxRuntimeInSeconds": 86400,
                            "MaxWaitTimeInSeconds": 172800,  # twice the max runtime by default
                        },
                        (*SPOT_JOB, "CheckpointConfig", "S3Uri"): (
                            f"s3://scientist-ml-data/churn/output/{PER_RUN.format(1)}/checkpoints/"
                        ),
                        (*SPOT_JOB, "AlgorithmSpecification", "MetricDefinitions"): [
                            {"Name": "validation:auc", "Regex": "validation-auc=([0-9.]+)"}
                        ],
                        (*SPOT_JOB, "FinalMetricDataList"): [{"MetricName": "validation:auc", "Value": 0.88}],
                        # the run keeps them: train_model's XCom (Airflow), its Metrics artifact (KFP)
                        ("outcome", "metrics"): {"validation:auc": 0.88},
                        # read by the harness off the ended job (interruptions, billable and training seconds)
                        (*SPOT_JOB, "Spot"): {
                            "Interruptions": 1,
                            "BillableTimeInSeconds": 24,
                            "TrainingTimeInSeconds": 60,
                        },
                    }
                ),
                conf={
                    "training": {
                        "use_spot": True,
                        "metric_definitions": [
                            {"name": "validation:auc", "regex": "validation-auc=([0-9.]+)"}
                        ],
                    }
                },
                lifecycle=Lifecycle(
                    training_seconds=60, training_interruptions=1, training_metrics={"validation:auc": 0.88}
                ),
            ),
        ),
    ),
    # --- issue 17: tuning -------------------------------------------------------------------------------
    # The tuning job is named like the run's resources (the model name is short enough for its 32
    # characters); its three training jobs are named as SageMaker names them (tests/support/sagemaker_tuning);
    # the second reports the best objective, so its artifact is deployed and its metric is the run's.
    Scenario(
        "tuning to deploy",
        runs=(
            Run(
                21,
                "a tuning job runs instead of one training job; the best training job's model is deployed",
                Expect(
                    state={
                        **_endpoint("InService", PER_RUN.format(1)),
                        ("count", "training_jobs"): 3,  # the tuning's; train_model skipped
                        (*BEST_JOB, "HyperParameters"): {
                            "max_depth": "5",
                            "eta": "0.2",
                            "subsample": "0.75",
                            "booster": "dart",
                        },
                        (*BEST_JOB, "FinalMetricDataList"): [{"MetricName": "validation:auc", "Value": 0.92}],
                        ("models", PER_RUN.format(1), "PrimaryContainer", "ModelDataUrl"): (
                            f"s3://scientist-ml-data/churn/output/{BEST_JOB[1]}/output/model.tar.gz"
                        ),
                        ("outcome", "metrics"): {"validation:auc": 0.92},
                    }
                ),
                conf={
                    "training": {
                        "metric_definitions": [
                            {"name": "validation:auc", "regex": "validation-auc=([0-9.]+)"}
                        ],
                    },
                    "tuning": {
                        "strategy": "Bayesian",
                        "objective_metric": "validation:auc",
                        "objective_direction": "Maximize",
                        "parameter_ranges": {
                            "subsample": {"type": "continuous", "min": 0.5, "max": 1.0},
                            "booster": {"type": "categorical", "values": ["gbtree", "dart"]},
                        },
                        "max_jobs": 3,
                        "max_parallel_jobs": 1,
                    },
                },
                lifecycle=Lifecycle(tuning_seconds=120, tuning_objective_values=(0.81, 0.92, 0.87)),
            ),
        ),
    ),
    # --- issue 17: the quality gate ----------------------------------------------------------------
    # The conf's gate asks for validation:auc >= 0.8 and the job reports 0.71: register_model registers
    # the version Rejected (the registry keeps it, with the metric and the verdict) and fails naming the
    # metric and both values; no model, endpoint or API is created. The teardown keeps the version.
    Scenario(
        "quality-gate stop",
        runs=(
            Run(
                22,
                "a metric below the conf's threshold: the version is Rejected and nothing is deployed",
                Expect(
                    outcome="failed",
                    failed_step="register_model",
                    message=(
                        "quality_gate: validation:auc is 0.71, which fails >= 0.8; "
                        f"{MODEL} version 1 is Rejected."
                    ),
                    state={
                        ("model_packages", f"{MODEL}/1", "ModelApprovalStatus"): "Rejected",
                        ("model_packages", f"{MODEL}/1", "CustomerMetadataProperties"): {
                            "metric:validation:auc": "0.71",
                            "sagelift:quality_gate": "failed",
                        },
                        ("count", "training_jobs"): 1,
                        ("count", "models"): 0,
                        ("count", "endpoints"): 0,
                        ("count", "apis"): 0,
                    },
                ),
                conf={
                    "training": {
                        "metric_definitions": [
                            {"name": "validation:auc", "regex": "validation-auc=([0-9.]+)"}
                        ],
                    },
                    "quality_gate": ["validation:auc >= 0.8"],
                },
                lifecycle=Lifecycle(training_metrics={"validation:auc": 0.71}),
            ),
        ),
    ),
    # --- issue 17: safe request overrides ----------------------------------------------------------
    # The platform lets runs set the training job's StoppingCondition only; a conf that sets its
    # Environment is refused by validate (KFP: by ensure_pvc, its first component), naming the field,
    # before any AWS call: the account is as it was.
    Scenario(
        "a refused override",
        sagemaker={"allowed_overrides": {"CreateTrainingJob": ["StoppingCondition"]}},
        runs=(
            Run(
                20,
                "a request override outside the platform's allow-list is refused, nothing created",
                Expect(
                    fails_at={"airflow": "validate", "kfp": "ensure_pvc"},
                    message=(
                        "request_overrides.CreateTrainingJob.Environment: not allowed by the platform "
                        "(platform.sagemaker.allowed_overrides.CreateTrainingJob: StoppingCondition)"
                    ),
                    changes_nothing=True,
                ),
                conf={"request_overrides": {"CreateTrainingJob": {"Environment": {"LOG_LEVEL": "debug"}}}},
            ),
        ),
    ),
    # --- issue 17: batch scoring -----------------------------------------------------------------
    # The run trains, registers and creates its model as any run does, then scores the validation prefix
    # with a transform job of the run's name instead of serving: no endpoint config, endpoint or API. The
    # emulated job writes one <object>.out per input object under the derived output prefix. Teardown has
    # nothing of the batch to delete (TEARDOWN_KEEPS: the job record, the results in S3).
    Scenario(
        "batch",
        runs=(
            Run(
                23,
                "batch scoring: a transform job scores an S3 prefix; no endpoint or API is created",
                Expect(
                    state={
                        ("transform_jobs", BATCH_JOB, "TransformJobStatus"): "Completed",
                        ("transform_jobs", BATCH_JOB, "ModelName"): PER_RUN.format(1),
                        ("transform_jobs", BATCH_JOB, "TransformInput"): {
                            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": BATCH_INPUT}},
                            "ContentType": "text/csv",
                            "SplitType": "Line",
                        },
                        ("transform_jobs", BATCH_JOB, "TransformOutput"): {
                            "S3OutputPath": BATCH_OUTPUT,
                            "AssembleWith": "Line",
                        },
                        ("transform_jobs", BATCH_JOB, "TransformResources"): {
                            "InstanceType": "ml.m5.large",
                            "InstanceCount": 1,
                        },
                        ("transform_jobs", BATCH_JOB, "Tags", "sagelift:model-name"): MODEL,
                        # the version is registered as in any run; the model scores through it
                        ("model_packages", f"{MODEL}/1", "ModelApprovalStatus"): "Approved",
                        # the results a user finds: one <object>.out per input object, beside the inputs
                        ("s3", "scientist-ml-data"): [
                            f"churn/output/{PER_RUN.format(1)}/batch/part-0.csv.out",
                            "churn/train/part-0.csv",
                            "churn/validation/part-0.csv",
                            "models/churn/model.tar.gz",
                            "platform/standard-tags.json",
                        ],
                        ("count", "models"): 1,
                        ("count", "endpoint_configs"): 0,
                        ("count", "endpoints"): 0,
                        ("count", "apis"): 0,
                    }
                ),
                conf={
                    "batch": {
                        "input_s3_uri": BATCH_INPUT,
                        "content_type": "text/csv",
                        "split_type": "Line",
                        "assemble_with": "Line",
                    }
                },
                lifecycle=Lifecycle(transform_seconds=60),
            ),
        ),
    ),
    # issue 20 item 1: two models behind one team's shared multi-model endpoint, one re-deployed (its route
    # moves to the new key, the old key goes), then torn down while the other keeps its artifact, route and
    # the endpoint
    Scenario(
        "multi-model endpoint",
        world=("multi_model_endpoint",),
        runs=(
            Run(
                1,
                "a model goes into its team's shared multi-model endpoint, routed by model",
                Expect(
                    state={
                        ("endpoints", MME_ENDPOINT, "EndpointStatus"): "InService",
                        ("models", MME_ENDPOINT, "PrimaryContainer", "Mode"): "MultiModel",
                        ("models", MME_ENDPOINT, "PrimaryContainer", "ModelDataUrl"): MME_PREFIX,
                        ("endpoints", MME_ENDPOINT, "Tags"): {"sagelift:multi-model-endpoint": MME_TEAM},
                        ("apis", MODEL, "routes", MME_ROUTE.format(MODEL), "integration", "uri"): MME_URI,
                        ("outcome", "invoke_url"): INVOKE_URL.replace(
                            "/invocations", f"/models/{MODEL}/invocations"
                        ),
                        ("s3", "scientist-ml-data"): sorted(
                            [*MME_DATA, f"mme/churn-team/{MODEL}/<run 1>.tar.gz"]
                        ),
                        ("count", "endpoints"): 1,
                        ("count", "models"): 1,
                    }
                ),
                conf=MME_CONF,
                lifecycle=Lifecycle(create_seconds=60),  # the first run waits for the shared endpoint
            ),
            Run(
                1,
                "a second model joins the same endpoint",
                Expect(
                    state={
                        (
                            "apis",
                            OTHER_MODEL,
                            "routes",
                            MME_ROUTE.format(OTHER_MODEL),
                            "integration",
                            "uri",
                        ): MME_URI,
                        ("s3", "scientist-ml-data"): sorted(
                            [
                                *MME_DATA,
                                f"mme/churn-team/{MODEL}/<run 1>.tar.gz",
                                f"mme/churn-team/{OTHER_MODEL}/<run 2>.tar.gz",
                            ]
                        ),
                        ("count", "endpoints"): 1,
                        ("count", "apis"): 2,
                    }
                ),
                conf={**MME_CONF, "model_name": OTHER_MODEL},
            ),
            Run(
                1,
                "re-deploying the first model moves its route to a new key",
                Expect(
                    state={
                        ("s3", "scientist-ml-data"): sorted(
                            [
                                *MME_DATA,
                                f"mme/churn-team/{MODEL}/<run 3>.tar.gz",
                                f"mme/churn-team/{OTHER_MODEL}/<run 2>.tar.gz",
                            ]
                        ),
                        ("count", "endpoints"): 1,
                    },
                    same_api_as_run=1,
                ),
                conf=MME_CONF,
            ),
        ),
        teardown=Expect(
            keeps=("models", "endpoint_configs", "endpoints", "apis", "usage_plans", "api_keys"),
            state={
                ("endpoints", MME_ENDPOINT, "EndpointStatus"): "InService",
                ("apis", OTHER_MODEL, "routes", MME_ROUTE.format(OTHER_MODEL), "integration", "uri"): MME_URI,
                ("count", "apis"): 1,
                ("s3", "scientist-ml-data"): sorted(
                    [*MME_DATA, f"mme/churn-team/{OTHER_MODEL}/<run 2>.tar.gz"]
                ),
            },
        ),
    ),
    # issue 20 item 4: a workteam labels a manifest before training, and the training job reads the labeled
    # manifest as a channel of its own (AugmentedManifestFile, Pipe); teardown leaves the job's record and
    # the scientist's objects (S3)
    Scenario(
        "labeled then trained",
        world=("labeling_workteam",),
        runs=(
            Run(
                1,
                "the labeling job's output manifest is the training job's channel",
                expect=Expect(
                    state={
                        ("labeling_jobs", PER_RUN.format(1), "LabelingJobStatus"): "Completed",
                        ("labeling_jobs", PER_RUN.format(1), "LabelCounters", "TotalLabeled"): 2,
                        ("labeling_jobs", PER_RUN.format(1), "OutputDatasetS3Uri"): LABELED,
                        ("training_jobs", PER_RUN.format(1), "TrainingJobStatus"): "Completed",
                        ("training_jobs", PER_RUN.format(1), "InputDataConfig", 2): {
                            "ChannelName": "labeled",
                            "DataSource": {
                                "S3DataSource": {
                                    "S3DataType": "AugmentedManifestFile",
                                    "S3Uri": LABELED,
                                    "S3DataDistributionType": "FullyReplicated",
                                    "AttributeNames": ["source", "label"],
                                }
                            },
                            "InputMode": "Pipe",
                        },
                        ("s3", "scientist-ml-data"): [
                            f"churn/output/{PER_RUN.format(1)}/labeling-input/label-categories.json",
                            f"churn/output/{PER_RUN.format(1)}/labeling-input/template.liquid.html",
                            f"churn/output/{PER_RUN.format(1)}/manifests/output/output.manifest",
                            "churn/train/part-0.csv",
                            "churn/validation/part-0.csv",
                            "models/churn/model.tar.gz",
                            "platform/standard-tags.json",
                            "to-label/churn.manifest",
                        ],
                    }
                ),
                conf={
                    "labeling": {
                        "manifest_s3_uri": LABELING_MANIFEST,
                        "task_type": "text_classification",
                        "labels": ["churns", "stays"],
                        "channel": "labeled",
                    }
                },
                lifecycle=Lifecycle(labeling_seconds=60),
            ),
        ),
    ),
    # issue 20 item 2: endpoint_instance_type "auto" with a default Inference Recommender job over the
    # registered version: the job load-tests the ten cheapest types that fit and reports ml.c5.large the
    # cheapest under load (its scripted answer), so the endpoint is deployed on ml.c5.large, not on the
    # table's cheapest (ml.t2.medium) nor the form's default (ml.m5.large). Teardown leaves the job record.
    Scenario(
        "instance recommendation",
        world=("inference_recommender",),
        runs=(
            Run(
                1,
                'endpoint_instance_type "auto": an Inference Recommender job runs and its pick is deployed',
                Expect(
                    state={
                        ("recommendation_jobs", PER_RUN.format(1), "Status"): "COMPLETED",
                        ("recommendation_jobs", PER_RUN.format(1), "JobType"): "Default",
                        ("recommendation_jobs", PER_RUN.format(1), "ModelPackageVersionArn"): (
                            f"arn:aws:sagemaker:us-east-1:333333333333:model-package/{MODEL}/1"
                        ),
                        (*_VARIANT, "InstanceType"): "ml.c5.large",
                        ("endpoints", MODEL, "EndpointStatus"): "InService",
                        ("count", "endpoints"): 1,
                    }
                ),
                conf={
                    "endpoint_instance_type": "auto",
                    "instance_recommendation": {
                        "job": "default",
                        "sample_payload_s3_uri": "s3://scientist-ml-data/churn/validation/part-0.csv",
                    },
                },
                lifecycle=Lifecycle(
                    recommender_seconds=120,
                    recommender_metrics={"ml.c5.large": {"CostPerHour": 0.05, "ModelLatency": 8}},
                ),
            ),
        ),
    ),
    # issue 20 item 3: a monitored endpoint. The baseline job runs over the training channel (the emulated
    # analyzer writes one feature per CSV column), the endpoint gets its hourly data-quality schedule and a
    # drift alarm per feature; the re-run (daily) updates the schedule to its own definition and deletes the
    # previous one; teardown deletes the schedule, the definition and the alarms.
    Scenario(
        "monitored endpoint",
        endpoint_caps={"capture_prefixes": [CAPTURES]},
        runs=(
            Run(
                3,
                "a monitored endpoint: a baseline job, an hourly data-quality schedule and drift alarms",
                Expect(
                    state={
                        ("processing_jobs", PER_RUN.format(1)): {
                            "ProcessingJobStatus": "Completed",
                            "Input": "s3://scientist-ml-data/churn/train/",
                            "Output": f"s3://scientist-ml-data/churn/output/{PER_RUN.format(1)}/monitoring/baseline/",
                        },
                        ("monitoring_schedules", MODEL): {
                            "MonitoringScheduleStatus": "Scheduled",
                            "ScheduleExpression": "cron(0 * ? * * *)",
                            "MonitoringJobDefinitionName": PER_RUN.format(1),
                            "EndpointName": MODEL,
                        },
                        ("data_quality_job_definitions", PER_RUN.format(1), "EndpointName"): MODEL,
                        ("alarms", DRIFT_ALARM, "MetricName"): "feature_baseline_drift__c0",
                        ("alarms", DRIFT_ALARM, "owner"): MODEL,
                        ("endpoints", MODEL, "EndpointStatus"): "InService",
                    }
                ),
                conf={
                    "endpoint": {"data_capture": {"sampling_percent": 20}},
                    "monitoring": {"data_quality": {"schedule": "hourly"}},
                },
            ),
            Run(
                3,
                "a re-run updates the endpoint's schedule (daily) to its own definition; the previous one goes",
                Expect(
                    state={
                        ("monitoring_schedules", MODEL, "ScheduleExpression"): "cron(0 0 ? * * *)",
                        ("monitoring_schedules", MODEL, "MonitoringJobDefinitionName"): PER_RUN.format(2),
                        ("data_quality_job_definitions",): {PER_RUN.format(2): {"EndpointName": MODEL}},
                    }
                ),
                conf={
                    "endpoint": {"data_capture": {"sampling_percent": 20}},
                    "monitoring": {"data_quality": {"schedule": "daily"}},
                },
            ),
        ),
    ),
)
