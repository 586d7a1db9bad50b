"""The behavioural scenarios (tests/scenarios/definitions.py) on both engines, end states compared.

Each scenario runs once on Airflow (``sagemaker_deploy`` with ``dag.test``: the real operators, deferred
waits run inline) and once on Kubeflow Pipelines (the committed ``plugins/sagelift/assets/kfp/sagemaker_deploy.yaml``
under ``kfp.local``, its components as subprocesses of include/kfp/.venv, driven by
include/kfp/tests/scenario_runner.py), each time against a fresh local AWS: the moto server of this
process with the SageMaker lifecycle emulation installed here, which the KFP components reach over HTTP
like any client. After every deploy the scientist account is read as its administrator would read it,
and normalized (run keys, run ids, the engine's pipeline name, API ids, image digests); the outcome is
the failed step and the message it surfaced. Both must match the scenario's expectations and each other.
Every scenario ends with the ``sagemaker_teardown`` DAG, on either engine's resources: KFP has no
teardown pipeline, Airflow's teardown is the one a KFP team runs too (include/kfp/README.md).

A run expected to fail where the engines' steps differ says so per engine with ``Expect.fails_at``:
validate's refusal fails Airflow's ``validate`` task and KFP's first component, ``ensure_pvc``, which
builds the plan there::

    Run(20, "a refused override", Expect(fails_at={"airflow": "validate", "kfp": "ensure_pvc"},
        message="request_overrides.CreateTrainingJob.Environment: not allowed", changes_nothing=True))

Each engine must fail at its own step, and the first line of each message must start with ``message``
(Airflow's validate heads a conf's refusal with "Invalid run configuration.", which the comparison
leaves out: KFP's component prints the error as raised). The account is compared between the engines as
after any run, the failed step as "<fails_at>"; ``changes_nothing`` also checks that the account after
the run is the account before it. A failure at a step both engines share (register_model, deploy_endpoint)
needs only ``failed_step``.

The table of scenarios by engine prints at the end of the pytest run (tests/conftest.py).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import re
import select
import signal
import ssl
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sagelift.domain.errors import RUN_HEADING
from sagelift.domain.plan import derive_run_key
from tests.conftest import ROOT
from tests.scenarios import definitions as d
from tests.support.botocore_validation import recording_aws_calls
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws, trust_policy
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.sagemaker_recommender import script_recommender
from tests.support.scenario import EXECUTION_ROLE, Scenario, demo_conf, ecr_registry_password, role_arn

pytestmark = [
    pytest.mark.e2e,
    # moto's STS has no error shape for its AccessDenied (the refused hop); the answer is right regardless
    pytest.mark.filterwarnings("ignore:Exception\\(STSClientError\\) with code AccessDenied:UserWarning"),
]

# Parsing the DAG folder imports the Kubernetes and Amazon providers: slow on a loaded 2-core machine.
os.environ.setdefault("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "300")

TIME_SCALE = 60.0  # emulated seconds per real second
KFP_DIR = ROOT / "include" / "kfp"
KFP_PYTHON = KFP_DIR / ".venv" / "bin" / "python"
RUNNER = KFP_DIR / "tests" / "scenario_runner.py"
TEARDOWN_DAG = "sagemaker_teardown"
TRIGGERED_BY = "sagelift:triggered-by"
TABLE_TITLE = "behavioural scenarios by engine (tests/scenarios)"
TABLE_HEADER = f"{'#':>2}  {'scenario':<44}  {'Airflow':<38}  {'KFP':<38}  same end state, as expected"


# --- what a run reports -----------------------------------------------------------------------------
@dataclass
class Outcome:
    run_id: str
    status: str  # success | failed
    failed_step: str | None = None
    message: str | None = None
    attempts: int = 1  # of the failed step
    invoke_url: str | None = None
    cancelled: str = ""  # how the engine ended a cancelled run
    seconds: float = 0.0
    logical_date: datetime.datetime | None = None  # Airflow: what running the same run again needs
    # the job's final metric values as the run keeps them (issue 17): train_model's XCom on Airflow
    # (the job's FinalMetricDataList), its Metrics artifact on KFP
    metrics: dict[str, float] | None = None


_AIRFLOW_ERROR = re.compile(r"(?:AirflowFailException|AirflowException)[:']\s*(.+)$")


def airflow_message(output: str) -> str | None:
    """The failed task's error text, as its task log shows it (the last one)."""
    found = None
    for line in output.splitlines():
        match = _AIRFLOW_ERROR.search(line)
        if match:
            found = match.group(1).strip().strip("'\"")
    return found


# --- the local AWS as its administrator sees it -------------------------------------------------------
class AdminView:
    """The local AWS, its administrator clients made once: every new boto3 session parses the service
    models again (~0.4 s a client), and the scenarios read the account after every run."""

    def __init__(self, aws: LocalAws) -> None:
        self.aws = aws
        self._clients: dict[tuple[str, str, str], Any] = {}

    def client(self, service: str, account: str = SCIENTIST_ACCOUNT, region: str = REGION) -> Any:
        key = (service, account, region)
        if key not in self._clients:
            self._clients[key] = self.aws.client(service, account, region)
        return self._clients[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.aws, name)


# --- the two engines ----------------------------------------------------------------------------------
class AirflowEngine:
    name = "Airflow"
    dag_id = "sagemaker_deploy"

    def __init__(self, dags: Mapping[str, Any], capfd: pytest.CaptureFixture[str]) -> None:
        self.dags, self.capfd = dags, capfd

    def deploy(self, conf: dict[str, Any], again: Outcome | None, cancel: Cancel | None) -> Outcome:
        from airflow.sdk import timezone

        when = again.logical_date if again is not None and again.logical_date else timezone.utcnow()
        self.capfd.readouterr()
        previous = signal.getsignal(signal.SIGTERM)
        if cancel is not None:
            # dag.test names the run after its logical date: manual__<date>
            cancel.start(f"{d.MODEL}-{derive_run_key(self.dag_id, 'manual__' + when.isoformat())}", self)
        try:
            dag_run = self.dags[self.dag_id].test(run_conf=conf, logical_date=when, run_after=when)
        finally:
            signal.signal(signal.SIGTERM, previous)
            if cancel is not None:
                cancel.join()
        outcome = self._outcome(self.dags[self.dag_id], dag_run)
        outcome.logical_date = when
        if cancel is not None:
            outcome.cancelled = "task killed"
        return outcome

    def kill(self) -> None:
        """What Airflow's supervisor does to a task it kills: SIGTERM, which the task runner turns into
        the operator's on_kill (dag.test runs the task in this process with the runner's handler)."""
        handler = signal.getsignal(signal.SIGTERM)
        if getattr(handler, "__name__", "") != "_on_term":
            raise RuntimeError(f"no Airflow task is running to kill (SIGTERM handler {handler!r})")
        os.kill(os.getpid(), signal.SIGTERM)

    def teardown(self) -> Outcome:
        self.capfd.readouterr()
        conf = {
            "model_name": d.MODEL,
            "account_id": SCIENTIST_ACCOUNT,
            "confirm": d.MODEL,
            "delete_images": True,
        }
        dag = self.dags[TEARDOWN_DAG]
        return self._outcome(dag, dag.test(run_conf=conf))

    def _outcome(self, dag: Any, dag_run: Any) -> Outcome:
        tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
        output = self.capfd.readouterr()
        states = {task_id: str(ti.state) for task_id, ti in tis.items()}
        failed = [task_id for task_id in dag.task_ids if states.get(task_id) == "failed"]  # in step order
        if str(dag_run.state) != "success" and not failed:
            raise AssertionError(f"run {dag_run.run_id} ended {dag_run.state}: {states}")
        outcome = Outcome(run_id=dag_run.run_id, status="failed" if failed else "success")
        if failed:
            outcome.failed_step = failed[0]
            outcome.attempts = int(tis[failed[0]].try_number)
            outcome.message = airflow_message(output.out + output.err)
        if states.get("expose_api") == "success":
            outcome.invoke_url = xcom(dag_run, "expose_api").get("invoke_url")
        trained = next((t for t in ("train_model", "tune_model") if states.get(t) == "success"), None)
        if trained:  # tune_model's "Training" is its best job
            final = (xcom(dag_run, trained).get("Training") or {}).get("FinalMetricDataList") or []
            outcome.metrics = {m["MetricName"]: m["Value"] for m in final} or None
        return outcome


def xcom(dag_run: Any, task_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        value = (
            session.query(XComModel.value)
            .filter(
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
            .scalar()
        )
    return dict(json.loads(value) if isinstance(value, str) else value or {})


class KfpRunner:
    """include/kfp/tests/scenario_runner.py in the kfp environment: one process for the module."""

    def __init__(self, log: Path, pipeline_root: Path) -> None:
        if not KFP_PYTHON.exists():
            pytest.fail(f"{KFP_PYTHON} is missing: build the kfp environment with `make kfp-env`")
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
        env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(KFP_DIR), str(ROOT)]),
                # The components' image has its modules compiled; without a cache every component would
                # compile kfp, protobuf and botocore again (this environment sets PYTHONDONTWRITEBYTECODE).
                "PYTHONPYCACHEPREFIX": str(KFP_DIR / ".venv" / "pycache"),
                "AWS_EC2_METADATA_DISABLED": "true",
                "SAGELIFT_KFP_PIPELINE_ROOT": str(pipeline_root),
            }
        )
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [str(KFP_PYTHON), str(RUNNER)],
            cwd=KFP_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            bufsize=1,
        )
        self._answer(timeout=120)  # {"ready": true}

    def _answer(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"the KFP runner did not answer within {timeout} s; its log:\n{self.tail()}")
        return dict(json.loads(line))

    def run(self, request: Mapping[str, Any], timeout: float = 300) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._answer(timeout)

    def tail(self, lines: int = 60) -> str:
        self._log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


class KfpEngine:
    name = "KFP"
    dag_id = "sagemaker-deploy"  # the pipeline's name, which names and tags use as Airflow uses its dag id

    def __init__(self, runner: KfpRunner, world: Scenario, teardown_engine: AirflowEngine) -> None:
        self.runner, self.world, self.teardown_engine = runner, world, teardown_engine

    def deploy(self, conf: dict[str, Any], again: Outcome | None, cancel: Cancel | None) -> Outcome:
        run_id = again.run_id if again is not None else str(uuid.uuid4())
        key, secret = self.world.runner_key
        request = {
            "run_id": run_id,
            "arguments": conf,
            "env": {  # the pod: the platform ConfigMap's document, the runner identity, the endpoint
                "SAGELIFT_PLATFORM": json.dumps(self.world.platform()),
                "AWS_ACCESS_KEY_ID": key,
                "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL": self.world.aws.url,
            },
        }
        if cancel is not None:
            cancel.start(f"{d.MODEL}-{derive_run_key(self.dag_id, run_id)}", self)
        try:
            answer = self.runner.run(request)
        finally:
            if cancel is not None:
                cancel.join()
        assert answer["run_id"] == run_id, answer
        outcome = Outcome(run_id=run_id, status="success" if answer["status"] == "SUCCEEDED" else "failed")
        if outcome.status == "failed":
            outcome.failed_step = answer["failed_step"]
            outcome.message = answer["message"]
            outcome.attempts = sum(a["step"] == answer["failed_step"] for a in answer["attempts"])
        outcome.invoke_url = (answer["outputs"].get("expose_api") or {}).get("invoke_url")
        logged = answer.get("metrics", {}).get("train_model") or {}
        # the job's own metrics; spot and tuning facts are the artifact's extras
        outcome.metrics = {k: v for k, v in logged.items() if not k.startswith(("spot:", "tuning:"))} or None
        if answer["terminated"]:
            outcome.cancelled = "run terminated"
        return outcome

    def kill(self) -> None:
        """KFP's "terminate run": the runner sends every running step SIGTERM, starts nothing more."""
        self.runner.process.send_signal(signal.SIGTERM)

    def teardown(self) -> Outcome:
        return self.teardown_engine.teardown()


class Cancel:
    """Kills a run once its training job is InProgress, from a thread of its own."""

    def __init__(self, admin: AdminView) -> None:
        self.admin = admin
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def start(self, job_name: str, engine: Any) -> None:
        self._thread = threading.Thread(target=self._watch, args=(job_name, engine), daemon=True)
        self._thread.start()

    def _watch(self, job_name: str, engine: Any) -> None:
        sm = self.admin.client("sagemaker")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                job = sm.describe_training_job(TrainingJobName=job_name)
            except sm.exceptions.ClientError:
                job = {}
            if job.get("TrainingJobStatus") == "InProgress":
                try:
                    engine.kill()
                except RuntimeError as err:
                    self.error = str(err)
                    break
                return
            time.sleep(0.2)
        self.error = self.error or f"training job {job_name} never started"

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=60)


# --- the scientist account, read and normalized ------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON-able, without timestamps and response metadata."""
    if isinstance(value, dict):
        return {
            k: _plain(v)
            for k, v in value.items()
            if k != "ResponseMetadata" and not isinstance(v, datetime.datetime)
        }
    if isinstance(value, list):
        return [_plain(v) for v in value if not isinstance(v, datetime.datetime)]
    return value


def _tags(items: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items}


# Moto's view of a job's progress, which depends on when it was read, not on what the engine did.
TRAINING_PROGRESS = (
    "SecondaryStatus",
    "SecondaryStatusTransitions",
    "TrainingTimeInSeconds",
    "BillableTimeInSeconds",
)


def sagemaker_state(admin: AdminView) -> dict[str, Any]:
    sm = admin.client("sagemaker")

    def described(kind: str, name: str, arn_key: str, call: Callable[..., Any], **kwargs: Any) -> None:
        value = _plain(call(**kwargs))
        if value.get("EnableManagedSpotTraining") and value.get("TrainingJobStatus") == "Completed":
            # an ended spot job's story, which no longer depends on when it is read (issue 17)
            value["Spot"] = {
                "Interruptions": [t["Status"] for t in value["SecondaryStatusTransitions"]].count(
                    "Interrupted"
                ),
                "BillableTimeInSeconds": value.get("BillableTimeInSeconds"),
                "TrainingTimeInSeconds": value.get("TrainingTimeInSeconds"),
            }
        for key in TRAINING_PROGRESS:
            value.pop(key, None)
        value["Tags"] = _tags(sm.list_tags(ResourceArn=value[arn_key])["Tags"])
        state[kind][name] = value

    state: dict[str, Any] = {"training_jobs": {}, "models": {}, "endpoint_configs": {}, "endpoints": {}}
    for job in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]:
        name = job["TrainingJobName"]
        described("training_jobs", name, "TrainingJobArn", sm.describe_training_job, TrainingJobName=name)
    for model in sm.list_models(MaxResults=100)["Models"]:
        name = model["ModelName"]
        described("models", name, "ModelArn", sm.describe_model, ModelName=name)
    # The registry (issue 17 item 6): each version's status, container and what sagelift recorded on it
    # (not the run key or DAG id, which differ by engine); a model built from a version shows what it serves.
    ENGINE_SPECIFIC = ("sagelift:run_key", "sagelift:dag_id")
    state["model_packages"] = {}
    packages: dict[str, dict[str, Any]] = {}
    for group in sm.list_model_package_groups(MaxResults=100)["ModelPackageGroupSummaryList"]:
        listed = sm.list_model_packages(ModelPackageGroupName=group["ModelPackageGroupName"], MaxResults=100)
        for summary in listed["ModelPackageSummaryList"]:
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            packages[package["ModelPackageArn"]] = package
            props = package.get("CustomerMetadataProperties") or {}
            state["model_packages"][f"{group['ModelPackageGroupName']}/{package['ModelPackageVersion']}"] = {
                "ModelApprovalStatus": package["ModelApprovalStatus"],
                "Containers": package["InferenceSpecification"]["Containers"],
                "CustomerMetadataProperties": {k: v for k, v in props.items() if k not in ENGINE_SPECIFIC},
            }
    for model in state["models"].values():
        container = model.get("PrimaryContainer") or {}
        source = packages.get(container.get("ModelPackageName", ""))
        if source:
            served = source["InferenceSpecification"]["Containers"][0]
            container.update({k: served[k] for k in ("Image", "ModelDataUrl") if k in served})
    # labeling (issue 20 item 4): the run's labeling jobs, their counts and output (their tags differ by
    # engine in the triggering user, and ListTags is not emulated for them)
    state["labeling_jobs"] = {}
    for job in sm.list_labeling_jobs(MaxResults=100)["LabelingJobSummaryList"]:
        state["labeling_jobs"][job["LabelingJobName"]] = {
            "LabelingJobStatus": job["LabelingJobStatus"],
            "LabelCounters": job["LabelCounters"],
            "OutputDatasetS3Uri": (job.get("LabelingJobOutput") or {}).get("OutputDatasetS3Uri"),
        }
    # batch scoring (issue 17 item 10): the run's transform jobs, as SageMaker keeps them
    state["transform_jobs"] = {}
    for job in sm.list_transform_jobs(MaxResults=100)["TransformJobSummaries"]:
        name = job["TransformJobName"]
        described("transform_jobs", name, "TransformJobArn", sm.describe_transform_job, TransformJobName=name)
    # instance recommendation (issue 20 item 2): the run's Inference Recommender jobs and what they tested
    state["recommendation_jobs"] = {}
    for job in sm.list_inference_recommendations_jobs()["InferenceRecommendationsJobs"]:
        found = sm.describe_inference_recommendations_job(JobName=job["JobName"])
        state["recommendation_jobs"][job["JobName"]] = {
            "Status": found["Status"],
            "JobType": found["JobType"],
            "ModelPackageVersionArn": found["InputConfig"].get("ModelPackageVersionArn"),
            "Recommended": [
                r["EndpointConfiguration"]["InstanceType"]
                for r in found.get("InferenceRecommendations") or []
            ],
        }
    for config in sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]:
        name = config["EndpointConfigName"]
        described(
            "endpoint_configs",
            name,
            "EndpointConfigArn",
            sm.describe_endpoint_config,
            EndpointConfigName=name,
        )
    for endpoint in sm.list_endpoints(MaxResults=100)["Endpoints"]:
        name = endpoint["EndpointName"]
        described("endpoints", name, "EndpointArn", sm.describe_endpoint, EndpointName=name)
        state["endpoints"][name].setdefault("FailureReason", None)
    return state


def api_state(admin: AdminView) -> dict[str, Any]:
    apigw = admin.client("apigateway")
    state: dict[str, Any] = {"apis": {}, "api_ids": {}}
    for api in apigw.get_rest_apis(limit=500)["items"]:
        routes = {}
        for resource in apigw.get_resources(restApiId=api["id"], limit=500)["items"]:
            for method in resource.get("resourceMethods", {}):
                found = apigw.get_method(restApiId=api["id"], resourceId=resource["id"], httpMethod=method)
                integration = found.get("methodIntegration", {})
                routes[f"{method} {resource['path']}"] = {
                    "authorizationType": found.get("authorizationType"),
                    "apiKeyRequired": found.get("apiKeyRequired"),
                    "integration": {
                        k: integration.get(k) for k in ("type", "httpMethod", "uri", "credentials")
                    },
                }
        state["api_ids"][api["name"]] = api["id"]
        state["apis"][api["name"]] = {
            **{k: v for k, v in _plain(api).items() if k not in ("id", "rootResourceId")},
            "routes": routes,
            "stages": sorted(s["stageName"] for s in apigw.get_stages(restApiId=api["id"])["item"]),
            "deployments": len(apigw.get_deployments(restApiId=api["id"], limit=500)["items"]),
        }
    state["usage_plans"] = {
        p["name"]: {"tags": p.get("tags", {})} for p in apigw.get_usage_plans(limit=500)["items"]
    }
    state["api_keys"] = {
        k["name"]: {"tags": k.get("tags", {})} for k in apigw.get_api_keys(limit=500)["items"]
    }
    return state


def ecr_state(admin: AdminView) -> dict[str, Any]:
    ecr = admin.client("ecr")
    state = {}
    for repository in ecr.describe_repositories()["repositories"]:
        name = repository["repositoryName"]
        images = ecr.describe_images(repositoryName=name)["imageDetails"]
        state[name] = {
            "imageTagMutability": repository.get("imageTagMutability"),
            "scanOnPush": repository.get("imageScanningConfiguration", {}).get("scanOnPush"),
            "Tags": _tags(ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]),
            "images": sorted([sorted(i.get("imageTags", [])), i["imageDigest"]] for i in images),
        }
    return {"ecr": state}


def monitoring_state(admin: AdminView) -> dict[str, Any]:
    """Model monitoring (issue 20 item 3): baseline jobs, the endpoint's schedule and its job definitions."""
    sm = admin.client("sagemaker")
    state: dict[str, Any] = {}
    state["processing_jobs"] = {}
    for job in sm.list_processing_jobs(MaxResults=100)["ProcessingJobSummaries"]:
        found = sm.describe_processing_job(ProcessingJobName=job["ProcessingJobName"])
        state["processing_jobs"][job["ProcessingJobName"]] = {
            "ProcessingJobStatus": found["ProcessingJobStatus"],
            "Input": found["ProcessingInputs"][0]["S3Input"]["S3Uri"],
            "Output": found["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"],
        }
    state["monitoring_schedules"] = {}
    for schedule in sm.list_monitoring_schedules()["MonitoringScheduleSummaries"]:
        found = sm.describe_monitoring_schedule(MonitoringScheduleName=schedule["MonitoringScheduleName"])
        config = found["MonitoringScheduleConfig"]
        state["monitoring_schedules"][found["MonitoringScheduleName"]] = {
            "MonitoringScheduleStatus": found["MonitoringScheduleStatus"],
            "ScheduleExpression": config["ScheduleConfig"]["ScheduleExpression"],
            "MonitoringJobDefinitionName": config["MonitoringJobDefinitionName"],
            "EndpointName": found.get("EndpointName"),
        }
    state["data_quality_job_definitions"] = {
        d["MonitoringJobDefinitionName"]: {"EndpointName": d.get("EndpointName")}
        for d in sm.list_data_quality_job_definitions()["JobDefinitionSummaries"]
    }
    return state


def cloudwatch_state(admin: AdminView) -> dict[str, Any]:
    """Every CloudWatch alarm of the account (issue 16: the alarms guarding updates), with its owner tag."""
    cw = admin.client("cloudwatch")
    alarms = {}
    for alarm in cw.describe_alarms()["MetricAlarms"]:
        tags = _tags(cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"])
        alarms[alarm["AlarmName"]] = {
            **{k: alarm.get(k) for k in ("Namespace", "MetricName", "Dimensions", "StateValue")},
            "owner": tags.get("sagelift:model-name"),
        }
    return {"alarms": alarms}


def autoscaling_state(admin: AdminView) -> dict[str, Any]:
    """Every SageMaker scalable target and scaling policy of the account (issue 16 autoscaling)."""
    client = admin.client("application-autoscaling")
    targets = client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    policies = client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    return {
        "scalable_targets": {
            t["ResourceId"]: {k: t.get(k) for k in ("ScalableDimension", "MinCapacity", "MaxCapacity")}
            for t in targets
        },
        "scaling_policies": {
            p["PolicyName"]: {
                "ResourceId": p["ResourceId"],
                "PolicyType": p["PolicyType"],
                "Metric": (c := p.get("TargetTrackingScalingPolicyConfiguration") or {})
                .get("PredefinedMetricSpecification", {})
                .get("PredefinedMetricType"),
                **{k: c.get(k) for k in ("TargetValue", "ScaleInCooldown", "ScaleOutCooldown")},
            }
            for p in policies
        },
    }


def s3_state(admin: AdminView) -> dict[str, Any]:
    """Every object in the account's buckets (the scientist's data, and the platform's model locks)."""
    s3 = admin.client("s3")
    buckets = {}
    for bucket in s3.list_buckets()["Buckets"]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"])
        buckets[bucket["Name"]] = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    return {"s3": buckets}


def registry_state(registry: Any, password: str, ca_file: Path) -> dict[str, dict[str, str]]:
    """Every repository and tag the account's ECR registry (the registry stand-in) serves, by digest."""
    context = ssl.create_default_context(cafile=str(ca_file))
    auth = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"

    def get(path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"https://{registry.host}{path}", method=method)
        request.add_header("Authorization", auth)
        request.add_header("Accept", accept)
        return urllib.request.urlopen(request, context=context, timeout=30)

    state: dict[str, dict[str, str]] = {}
    for repository in json.load(get("/v2/_catalog"))["repositories"]:
        tags = json.load(get(f"/v2/{repository}/tags/list")).get("tags") or []
        state[repository] = {
            tag: get(f"/v2/{repository}/manifests/{tag}", "HEAD").headers["Docker-Content-Digest"]
            for tag in tags
        }
    return state


def normalize(value: Any, replacements: list[tuple[str, str]]) -> Any:
    if isinstance(value, dict):
        return {normalize(k, replacements): normalize(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
    return value


def run_replacements(dag_id: str, run_id: str, label: str) -> list[tuple[str, str]]:
    from sagelift.domain.tags import derive_run_tags

    (tag,) = [
        t["Value"]
        for t in derive_run_tags(
            model_name=d.MODEL, dag_id=dag_id, run_id=run_id, account_id=SCIENTIST_ACCOUNT
        )
        if t["Key"] == "sagelift:run-id"
    ]
    return [(run_id, f"<{label} id>"), (tag, f"<{label} id>"), (derive_run_key(dag_id, run_id), f"<{label}>")]


@dataclass
class Checkpoint:
    """One run's outcome and the account's state after it, both normalized."""

    title: str
    number: int
    expect: d.Expect
    outcome: Outcome
    view: dict[str, Any]
    api_id: str | None
    engine: str = ""  # the engine's name (Expect.fails_at)
    before: dict[str, Any] | None = None  # the account before the run (Expect.changes_nothing)


def lookup(view: Mapping[str, Any], path: tuple[Any, ...]) -> Any:
    node: Any = view
    for key in path:
        if isinstance(node, Mapping):
            present = key in node
        else:
            present = isinstance(node, list) and isinstance(key, int) and key < len(node)
        if not present:
            return "<absent>"
        node = node[key]
    return node


# --- a plan-only run writes nothing (issue 16 item 9) ---------------------------------------------------
READ_ACTIONS = ("Describe", "List", "Get", "Head")


def plan_writes(received: list[Any], calls: list[Any]) -> list[str]:
    """What a plan-only run sent that is not a read: the calls made in this process (Airflow's tasks, by
    operation name) and every request the local AWS received (both engines: REST reads are GET or HEAD,
    JSON APIs name their action; an untargeted POST / is STS's query API, the role chain). The chain's
    AssumeRole gives the run credentials and changes nothing."""
    found = [
        f"{c.service} {c.operation}"
        for c in calls
        if not c.operation.startswith(READ_ACTIONS) and c.operation != "AssumeRole"
    ]
    found += [
        f"{r.method} {r.path} {r.target}"
        for r in received
        if r.method not in ("GET", "HEAD")
        and not r.target.split(".")[-1].startswith(READ_ACTIONS)
        and not (r.method == "POST" and r.path == "/" and not r.target)
    ]
    return found


# --- playing a scenario on one engine -----------------------------------------------------------------
@dataclass
class Played:
    engine: str
    checkpoints: list[Checkpoint] = field(default_factory=list)
    seconds: float = 0.0
    triggered_by: set[str] = field(default_factory=set)


@dataclass
class Images:
    trainer: Any
    server: Any


def _script(life: SageMakerLifecycle, lc: d.Lifecycle) -> None:
    life.training(
        seconds=lc.training_seconds,
        outcome=lc.training_outcome,
        stop_seconds=lc.stop_seconds,
        interruptions=lc.training_interruptions,
        metrics=dict(lc.training_metrics) if lc.training_metrics is not None else None,
    )
    life.tuning(seconds=lc.tuning_seconds, objective_values=lc.tuning_objective_values)
    life.transform(seconds=lc.transform_seconds)
    life.labeling(seconds=lc.labeling_seconds)
    recommender_metrics = {k: dict(v) for k, v in (lc.recommender_metrics or {}).items()}
    script_recommender(life, seconds=lc.recommender_seconds, metrics=recommender_metrics)
    life.endpoint_create(
        seconds=lc.create_seconds, outcome=lc.create_outcome, failure_reason=lc.create_failure
    )
    life.endpoint_update(
        seconds=lc.update_seconds,
        outcome=lc.update_outcome,
        failure_reason=lc.update_failure,
        alarm_fires_after=lc.update_alarm_fires_after,
    )


def _endpoint_from_earlier_deploy(admin: AdminView, life: SageMakerLifecycle) -> None:
    """The model's endpoint as an earlier deploy left it: InService on that deploy's config."""
    life.endpoint_create(seconds=0)
    sm = admin.client("sagemaker")
    tags = [{"Key": "sagelift:model-name", "Value": d.MODEL}]
    sm.create_model(
        ModelName=d.EARLIER_CONFIG,
        ExecutionRoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-model-execution"),
        PrimaryContainer={
            "Image": f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-serving:1.4",
            "ModelDataUrl": d.EXISTING_ARTIFACT,
        },
        Tags=tags,
    )
    variant = {"VariantName": "AllTraffic", "ModelName": d.EARLIER_CONFIG, "InitialInstanceCount": 1}
    sm.create_endpoint_config(
        EndpointConfigName=d.EARLIER_CONFIG,
        ProductionVariants=[{**variant, "InstanceType": "ml.m5.large"}],
        Tags=tags,
    )
    sm.create_endpoint(EndpointName=d.MODEL, EndpointConfigName=d.EARLIER_CONFIG, Tags=tags)
    assert sm.describe_endpoint(EndpointName=d.MODEL)["EndpointStatus"] == "InService"


def _wait_until_stopped(admin: AdminView, name: str) -> None:
    sm = admin.client("sagemaker")
    deadline = time.monotonic() + 30
    while sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] != "Stopped":
        assert time.monotonic() < deadline, f"training job {name} did not stop"
        time.sleep(0.2)


class Play:
    """One scenario on one engine, from a fresh local AWS to the state its teardown leaves."""

    def __init__(
        self, scenario: d.Scenario, admin: AdminView, tmp: Path, images: Callable[[], Images]
    ) -> None:
        self.scenario, self.admin, self.tmp, self.images = scenario, admin, tmp, images
        self.replacements: list[tuple[str, str]] = []
        self.pair: Any = None
        self.life: SageMakerLifecycle | None = None  # issue 16: its guarded deployments, per checkpoint
        self.events_seen = 0
        self.other_apis: list[tuple[str, str]] = []

    def world(self, monkeypatch: pytest.MonkeyPatch) -> Scenario:
        self.admin.reset()
        world = Scenario(self.admin)  # type: ignore[arg-type]  (LocalAws with cached clients)
        world.platform_overrides["sagemaker"] = {"check_interval_seconds": 1, **self.scenario.sagemaker}
        if self.scenario.endpoint_caps:  # issue 16: the modes the scientist account may use
            accounts = world.platform()["accounts"]
            accounts[SCIENTIST_ACCOUNT] = {
                **accounts[SCIENTIST_ACCOUNT],
                "endpoint": dict(self.scenario.endpoint_caps),
            }
            world.platform_overrides["accounts"] = accounts
        self.conf_images: dict[str, str] = {}
        if "source_registry" in self.scenario.world:
            from tests.support.oci_registry import RegistryPair

            built = self.images()
            self.pair = RegistryPair(self.tmp / "registries", ecr_password=ecr_registry_password())
            self.conf_images = {
                "training_docker_image": self.pair.push(built.trainer.reference, "team/churn-trainer", "2.0"),
                "model_docker_image": self.pair.push(built.server.reference, "team/churn-server", "2.0"),
            }
            world.use_registries(self.pair)
            self.replacements += [
                (built.trainer.digest, "<trainer digest>"),
                (built.server.digest, "<server digest>"),
                (self.pair.source.host, "<source registry>"),
                (self.pair.ecr.host, "<ecr registry>"),
            ]
        world.build()
        if "labeling_workteam" in self.scenario.world:  # issue 20: the account's workteam, a manifest
            accounts = world.platform()["accounts"]
            accounts[SCIENTIST_ACCOUNT] = {**accounts[SCIENTIST_ACCOUNT], **d.LABELING_PLATFORM}
            world.platform_overrides["accounts"] = accounts
            bucket, _, key = d.LABELING_MANIFEST.removeprefix("s3://").partition("/")
            lines = (
                b'{"source": "cancelled after the price rise"}\n',
                b'{"source": "renewed for two years"}\n',
            )
            self.admin.client("s3").put_object(Bucket=bucket, Key=key, Body=b"".join(lines))
        if "inference_recommender" in self.scenario.world:  # issue 20: the account allows the job
            accounts = world.platform()["accounts"]
            accounts[SCIENTIST_ACCOUNT] = {**accounts[SCIENTIST_ACCOUNT], **d.RECOMMENDER_PLATFORM}
            world.platform_overrides["accounts"] = accounts
        if "multi_model_endpoint" in self.scenario.world:  # issue 20: the team's shared endpoint
            accounts = world.platform()["accounts"]
            accounts[SCIENTIST_ACCOUNT] = {**accounts[SCIENTIST_ACCOUNT], **d.MULTI_MODEL_PLATFORM}
            world.platform_overrides["accounts"] = accounts
            world.platform_overrides["multi_model_images"] = [d.MME_IMAGE]
        if "refuse_second_hop" in self.scenario.world:
            self.admin.client("iam").update_assume_role_policy(
                RoleName=EXECUTION_ROLE,
                PolicyDocument=trust_policy("arn:aws:iam::999999999999:role/someone-else"),
            )
        for key, value in world.airflow_env().items():  # Airflow's side, and the teardown of either
            monkeypatch.setenv(key, value)
        return world

    def play(self, engine: Any) -> Played:
        started = time.monotonic()
        played = Played(engine.name)
        self.replacements.append((engine.dag_id, "<pipeline>"))
        try:
            with SageMakerLifecycle(time_scale=TIME_SCALE).installed(self.admin.aws) as life:
                self.life, self.events_seen = life, 0
                if "endpoint_from_earlier_deploy" in self.scenario.world:
                    _endpoint_from_earlier_deploy(self.admin, life)
                runs: list[Outcome] = []
                for run in self.scenario.runs:
                    account_before = None
                    if run.expect.changes_nothing:
                        last = played.checkpoints[-1] if played.checkpoints else None
                        account_before = last.view if last is not None else self.account_view(played)[0]
                    _script(life, run.lifecycle)
                    cancel = Cancel(self.admin) if run.cancel else None
                    conf = {**demo_conf(**run.conf), **self.conf_images}
                    began = time.monotonic()
                    before = self.admin.aws.request_count()
                    with (
                        recording_aws_calls()
                        if conf.get("plan_only")
                        else contextlib.nullcontext([]) as calls
                    ):
                        outcome = engine.deploy(conf, runs[run.again - 1] if run.again else None, cancel)
                    if conf.get("plan_only"):
                        written = plan_writes(self.admin.aws.requests[before:], calls)
                        assert not written, f"{engine.name}: a plan-only run wrote {written[:5]}"
                    outcome.seconds = time.monotonic() - began
                    if not run.again:
                        runs.append(outcome)
                        self.replacements[:0] = run_replacements(
                            engine.dag_id, outcome.run_id, f"run {len(runs)}"
                        )
                    if cancel is not None:
                        assert cancel.error is None, f"{engine.name}: {cancel.error}"
                        _wait_until_stopped(
                            self.admin, f"{d.MODEL}-{derive_run_key(engine.dag_id, outcome.run_id)}"
                        )
                    played.checkpoints.append(
                        self.checkpoint(run.title, run.number, run.expect, outcome, played, account_before)
                    )
                began = time.monotonic()
                teardown = engine.teardown()
                teardown.seconds = time.monotonic() - began
                self.replacements[:0] = run_replacements(TEARDOWN_DAG, teardown.run_id, "teardown")
                title = f"teardown after '{self.scenario.name}'"
                played.checkpoints.append(
                    self.checkpoint(title, 10, self.scenario.teardown, teardown, played)
                )
        finally:
            if self.pair is not None:
                self.pair.stop()
        played.seconds = time.monotonic() - started
        return played

    def deployments_since_last_checkpoint(self) -> list[str]:
        """What the guarded updates since the last checkpoint did (the emulation's deployment events)."""
        events = self.life.deployment_events if self.life is not None else []
        new, self.events_seen = events[self.events_seen :], len(events)
        return [what.removesuffix(" on the new fleet") for _, _, what in new]

    def account_view(self, played: Played) -> tuple[dict[str, Any], str | None]:
        """The scientist account, normalized, and the model's API id."""
        raw = {
            **sagemaker_state(self.admin),
            **api_state(self.admin),
            **ecr_state(self.admin),
            **s3_state(self.admin),
            **autoscaling_state(self.admin),
            **cloudwatch_state(self.admin),
            **monitoring_state(self.admin),
        }
        if self.pair is not None:
            raw["registry"] = registry_state(self.pair.ecr, ecr_registry_password(), self.pair.ca.ca_file)
        api_ids = raw.pop("api_ids")
        api_id = api_ids.get(d.MODEL)
        # another model's API (issue 20: two models behind one shared endpoint) is <api NAME>
        self.other_apis = [(i, f"<api {name}>") for name, i in api_ids.items() if name != d.MODEL]
        # Who a run acted for: Airflow's triggering user; KFP does not know it ("unverified"). Shown in the
        # table, not compared.
        tag_sets = [
            r["Tags"]
            for kind in ("training_jobs", "models", "endpoint_configs", "endpoints", "ecr", "transform_jobs")
            for r in raw[kind].values()
        ]
        tag_sets += [api.get("tags", {}) for api in raw["apis"].values()]
        for tags in tag_sets:
            if TRIGGERED_BY in tags:
                played.triggered_by.add(tags[TRIGGERED_BY])
                tags[TRIGGERED_BY] = "<user>"
        replacements = ([(api_id, "<api>")] if api_id else []) + self.other_apis + self.replacements
        view = normalize(raw, replacements)
        # object keys sorted again once normalized: two runs' keys (<run 1>, <run 2>) sort by their run keys
        # before, which differ by engine
        view["s3"] = {bucket: sorted(keys) for bucket, keys in view["s3"].items()}
        view["count"] = {
            k: len(view[k]) for k in ("training_jobs", "models", "endpoint_configs", "endpoints", "apis")
        }
        return view, api_id

    def checkpoint(
        self,
        title: str,
        number: int,
        expect: d.Expect,
        outcome: Outcome,
        played: Played,
        before: dict[str, Any] | None = None,
    ) -> Checkpoint:
        view, api_id = self.account_view(played)
        replacements = ([(api_id, "<api>")] if api_id else []) + self.other_apis + self.replacements
        message = outcome.message
        if message and outcome.failed_step and message.startswith(f"{outcome.failed_step}: "):
            # Airflow's role-chain task names itself in its error; the KFP step's log is its own.
            message = message[len(outcome.failed_step) + 2 :]
        if message and message.startswith(f"{RUN_HEADING} "):
            # Airflow's validate heads a conf's refusal; KFP's first component prints the error as raised.
            message = message[len(RUN_HEADING) + 1 :]
        view["outcome"] = normalize(
            {
                "status": outcome.status,
                "failed_step": outcome.failed_step,
                "message": message,
                "invoke_url": outcome.invoke_url,
                "metrics": outcome.metrics,
                "deployments": self.deployments_since_last_checkpoint(),
            },
            replacements,
        )
        return Checkpoint(title, number, expect, outcome, view, api_id, played.engine, before)


# --- checking ------------------------------------------------------------------------------------------
def expectation_problems(point: Checkpoint, earlier: list[Checkpoint]) -> list[str]:
    expect, view = point.expect, point.view
    outcome = view["outcome"]
    problems = []
    step = expect.failed_step_on(point.engine)
    if (outcome["status"], outcome["failed_step"]) != (expect.outcome, step):
        problems.append(
            f"ended {outcome['status']} at {outcome['failed_step']} ({outcome['message']}), "
            f"expected {expect.outcome} at {step}"
        )
    first_line = str(outcome["message"] or "").split("\n", 1)[0]
    if expect.message is not None and not first_line.startswith(expect.message):
        problems.append(
            f"message {outcome['message']!r}, expected its first line to start {expect.message!r}"
        )
    if expect.changes_nothing:
        after = {k: v for k, v in view.items() if k != "outcome"}
        before = {k: v for k, v in (point.before or {}).items() if k != "outcome"}
        problems += [f"the run changed the account: {diff}" for diff in differences(before, after)]
    for path, wanted in expect.state.items():
        got = lookup(view, path)
        if got != wanted:
            problems.append(f"{'/'.join(map(str, path))} is {got!r}, expected {wanted!r}")
    if expect.same_api_as_run is not None:
        first = earlier[expect.same_api_as_run - 1].api_id
        if point.api_id is None or point.api_id != first:
            problems.append(f"API id {point.api_id}, expected run {expect.same_api_as_run}'s {first}")
    if point.number == 10 and expect.outcome == "success":
        for kind in sorted(set(view) - {"count", "outcome", *d.TEARDOWN_KEEPS, *expect.keeps}):
            if view[kind]:
                problems.append(f"teardown left {kind}: {sorted(view[kind])}")
    return problems


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b), key=str):
            found += differences(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{path}/{key}")
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        found = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found += differences(x, y, f"{path}/{i}")
        return found
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def comparable(point: Checkpoint) -> dict[str, Any]:
    view = json.loads(json.dumps(point.view))
    if point.expect.fails_at:  # each engine's own step, checked against the expectation
        view["outcome"]["failed_step"] = "<fails_at>"
    if point.expect.outcome == "failed" and point.expect.message is None:
        # A cancelled run ends the engine's own way (Airflow's wait reports the Stopped job, a terminated
        # KFP step prints nothing): the failed step and the account must agree, not the text.
        view["outcome"]["message"] = "<the engine's own>"
    return view


def _cell(point: Checkpoint) -> str:
    o, seconds = point.view["outcome"], f"{point.outcome.seconds:.0f} s"
    if o["status"] == "success":
        return f"success, {seconds}"
    how = point.outcome.cancelled or (f"{point.outcome.attempts} tries" if point.outcome.attempts > 1 else "")
    return f"failed: {o['failed_step']}{f' ({how})' if how else ''}, {seconds}"


def table_rows(airflow: Played, kfp: Played, problems: list[list[str]]) -> list[str]:
    rows = []
    for (a, k), found in zip(zip(airflow.checkpoints, kfp.checkpoints, strict=True), problems, strict=True):
        verdict = "yes" if not found else f"NO ({len(found)} problems)"
        rows.append(f"{a.number:>2}  {a.title[:44]:<44}  {_cell(a):<38}  {_cell(k):<38}  {verdict}")
        for message in sorted({a.view["outcome"]["message"], k.view["outcome"]["message"]} - {None}):
            rows.append(f"{'':>2}  {'':<44}  -> {message[:140]}")
    airflow_users, kfp_users = ",".join(sorted(airflow.triggered_by)), ",".join(sorted(kfp.triggered_by))
    rows.append(
        f"{'':>2}  {'(wall time; sagelift:triggered-by)':<44}  {f'{airflow.seconds:.0f} s; {airflow_users}':<38}  "
        f"{f'{kfp.seconds:.0f} s; {kfp_users}':<38}"
    )
    return rows


# --- fixtures and the test -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def admin(local_aws_server: LocalAws) -> AdminView:
    return AdminView(local_aws_server)


@pytest.fixture(scope="module")
def dags(airflow_db: Path) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return {dag_id: bag.get_dag(dag_id) for dag_id in (AirflowEngine.dag_id, TEARDOWN_DAG)}


@pytest.fixture(scope="module")
def kfp_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KfpRunner]:
    tmp = tmp_path_factory.mktemp("kfp-runner")
    runner = KfpRunner(tmp / "runner.log", tmp / "pipeline-root")
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def oci_images(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Images]:
    built: list[Images] = []

    def get() -> Images:
        if not built:
            from tests.support.oci_images import build_single_platform_image

            tmp = tmp_path_factory.mktemp("images")
            trainer = build_single_platform_image(tmp / "trainer", "2.0", [4096, 65536], seed=7)
            server = build_single_platform_image(tmp / "server", "2.0", [4096, 32768], seed=8)
            built.append(Images(trainer, server))
        return built[0]

    return get


@pytest.mark.parametrize(
    "scenario", d.SCENARIOS, ids=[f"{s.runs[0].number}-" + re.sub(r"\W+", "-", s.name) for s in d.SCENARIOS]
)
def test_scenario_ends_the_same_on_both_engines(
    scenario: d.Scenario,
    admin: AdminView,
    dags: dict[str, Any],
    kfp_runner: KfpRunner,
    oci_images: Callable[[], Images],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    record_property: Callable[[str, Any], None],
) -> None:
    airflow_engine = AirflowEngine(dags, capfd)
    on_airflow = Play(scenario, admin, tmp_path / "airflow", oci_images)
    on_airflow.world(monkeypatch)
    airflow = on_airflow.play(airflow_engine)
    on_kfp = Play(scenario, admin, tmp_path / "kfp", oci_images)
    kfp = on_kfp.play(KfpEngine(kfp_runner, on_kfp.world(monkeypatch), airflow_engine))

    problems: list[list[str]] = []
    for a, k in zip(airflow.checkpoints, kfp.checkpoints, strict=True):
        found = [f"Airflow: {p}" for p in expectation_problems(a, airflow.checkpoints)]
        found += [f"KFP: {p}" for p in expectation_problems(k, kfp.checkpoints)]
        found += [f"Airflow vs KFP {diff}" for diff in differences(comparable(a), comparable(k))]
        problems.append([f"{a.title}: {p}" for p in found])
    record_property("summary_table", [TABLE_TITLE, TABLE_HEADER, table_rows(airflow, kfp, problems)])
    found = [p for ps in problems for p in ps]
    assert not found, "\n".join(found[:40])
